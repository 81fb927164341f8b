#include "models/set_transformer.h"

#include "autograd/functions.h"
#include "tensor/error.h"

namespace ncl::models {

nlohmann::json SetTransformerConfig::to_json() const {
  return {{"dim_input", dim_input}, {"dim", dim},           {"heads", heads},
          {"inducing", inducing},   {"clusters", clusters}, {"isab_layers", isab_layers},
          {"sab_layers", sab_layers}, {"layer_norm", layer_norm}, {"min_stddev", min_stddev}};
}

SetTransformerConfig SetTransformerConfig::from_json(const nlohmann::json& j) {
  NCL_CHECK(j.is_object(), "set-transformer config must be a JSON object, got ", j.dump());
  SetTransformerConfig c;
  for (const auto& [key, value] : j.items()) {
    if (key == "min_stddev") {
      NCL_CHECK(value.is_number() && value.get<double>() >= 0.0,
                "set-transformer config: min_stddev must be a number >= 0, got ", value.dump());
      c.min_stddev = value.get<double>();
      continue;
    }
    if (key == "layer_norm") {
      NCL_CHECK(value.is_boolean(), "set-transformer config: layer_norm must be true or false");
      c.layer_norm = value.get<bool>();
      continue;
    }
    int64_t* field = key == "dim_input"     ? &c.dim_input
                     : key == "dim"         ? &c.dim
                     : key == "heads"       ? &c.heads
                     : key == "inducing"    ? &c.inducing
                     : key == "clusters"    ? &c.clusters
                     : key == "isab_layers" ? &c.isab_layers
                     : key == "sab_layers"  ? &c.sab_layers
                                            : nullptr;
    NCL_CHECK(field != nullptr, "set-transformer config: unknown key '", key, "'");
    NCL_CHECK(value.is_number_integer() && value.get<int64_t>() >= 0 &&
                  value.get<int64_t>() <= config_ceiling(key),
              "set-transformer config: ", key, " must be an integer from 0 to ",
              config_ceiling(key), ", got ", value.dump());
    *field = value.get<int64_t>();
  }
  NCL_CHECK(c.dim_input >= 1 && c.dim >= 1 && c.heads >= 1 && c.dim % c.heads == 0 &&
                c.inducing >= 1 && c.clusters >= 1 && c.isab_layers >= 1,
            "set-transformer config is invalid: ", c.to_json().dump(),
            " (dim must be a multiple of heads; dim_input, inducing, clusters, isab_layers >= 1)");
  return c;
}

SetTransformer::SetTransformer(const SetTransformerConfig& config, Rng& rng) : config_(config) {
  const auto& c = config_;
  for (int64_t i = 0; i < c.isab_layers; ++i) {
    isabs_.push_back(std::make_unique<nn::ISAB>(i == 0 ? c.dim_input : c.dim, c.dim, c.heads,
                                                c.inducing, c.layer_norm, rng));
    register_module("isab" + std::to_string(i), *isabs_.back());
  }
  pma_ = std::make_unique<nn::PMA>(c.dim, c.heads, c.clusters, c.layer_norm, rng);
  register_module("pma", *pma_);
  for (int64_t i = 0; i < c.sab_layers; ++i) {
    sabs_.push_back(std::make_unique<nn::SAB>(c.dim, c.dim, c.heads, c.layer_norm, rng));
    register_module("sab" + std::to_string(i), *sabs_.back());
  }
  head_ = std::make_unique<nn::Linear>(c.dim, 1 + 2 * c.dim_input, rng);
  register_module("head", *head_);
}

MixtureOutput SetTransformer::forward(const Variable& points) const {
  NCL_CHECK(points.rank() == 3 && points.dim(2) == config_.dim_input, "set-transformer: points ",
            points.shape(), " must be (B, N, ", config_.dim_input, ")");
  Variable H = points;
  for (const auto& isab : isabs_) H = isab->forward(H);  // (B, N, dim)
  Variable S = pma_->forward(H);                          // (B, K, dim)
  for (const auto& sab : sabs_) S = sab->forward(S);      // (B, K, dim)
  Variable out = head_->forward(S);                       // (B, K, 1 + 2D)
  const int64_t B = out.dim(0), K = out.dim(1), D = config_.dim_input;
  return {reshape(slice(out, 2, 0, 1), {B, K}), slice(out, 2, 1, 1 + D),
          add_scalar(softplus(slice(out, 2, 1 + D, 1 + 2 * D)), config_.min_stddev)};
}

Variable mixture_log_likelihood(const Variable& points, const MixtureOutput& mixture) {
  const int64_t B = points.dim(0), N = points.dim(1), D = points.dim(2);
  const int64_t K = mixture.logits.dim(1);
  Variable x = reshape(points, {B, N, 1, D});
  Variable log_density = gaussian_log_density(x, reshape(mixture.means, {B, 1, K, D}),
                                              reshape(mixture.stddevs, {B, 1, K, D}));  // (B, N, K)
  Variable log_weights = log(add_scalar(softmax(mixture.logits), 1e-10));             // (B, K)
  return logsumexp(log_density + reshape(log_weights, {B, 1, K}));                    // (B, N)
}

data::GaussianMixture to_gaussian_mixture(const MixtureOutput& mixture, int64_t b) {
  const int64_t K = mixture.means.dim(1), D = mixture.means.dim(2);
  std::vector<double> logits = mixture.logits.value().to_vector();
  std::vector<double> means = mixture.means.value().to_vector();
  std::vector<double> stddevs = mixture.stddevs.value().to_vector();
  data::GaussianMixture out{D, std::vector<double>(K), {}, {}};
  double max_logit = logits[b * K], total = 0.0;
  for (int64_t k = 1; k < K; ++k) max_logit = std::max(max_logit, logits[b * K + k]);
  for (int64_t k = 0; k < K; ++k) total += out.weights[k] = std::exp(logits[b * K + k] - max_logit);
  for (double& w : out.weights) w /= total;
  out.means.assign(means.begin() + b * K * D, means.begin() + (b + 1) * K * D);
  out.stddevs.assign(stddevs.begin() + b * K * D, stddevs.begin() + (b + 1) * K * D);
  return out;
}

Variable SetTransformer::loss(const data::Batch& batch, Rng&) const {
  Variable points(batch.points.to(device()));
  return neg(mean_all(mixture_log_likelihood(points, forward(points))));
}

ClusterResult SetTransformer::cluster(const std::vector<double>& points,
                                      const InferenceOptions&) const {
  const int64_t D = config_.dim_input, N = int64_t(points.size()) / D;
  NCL_CHECK(N >= 1 && int64_t(points.size()) == N * D, "set-transformer: ", points.size(),
            " values do not form points of dimension ", D);
  NoGradGuard no_grad;
  Tensor x = Tensor::from_vector(points, {1, N, D}, DType::F32).to(device());
  ClusterResult result;
  result.mixture = to_gaussian_mixture(forward(Variable(x)), 0);
  result.clusters = result.mixture->clusters();
  result.membership = data::responsibilities(*result.mixture, points, 1e-10);
  result.labels = data::hard_labels(result.membership, result.clusters);
  result.log_likelihood = data::mean_log_likelihood(*result.mixture, points, 1e-10);
  data::GaussianMixture refined = data::em_step(*result.mixture, points, 1e-10);
  result.log_likelihood_em = data::mean_log_likelihood(refined, points, 1e-10);
  return result;
}

}  // namespace ncl::models

#include "models/dac.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "autograd/functions.h"
#include "tensor/error.h"

namespace ncl::models {

nlohmann::json DacConfig::to_json() const {
  return {{"dim_input", dim_input},     {"dim", dim},         {"heads", heads},
          {"inducing", inducing},       {"blocks", blocks},   {"tied", tied},
          {"density", density},         {"loss", loss},       {"flow_blocks", flow_blocks},
          {"flow_hidden", flow_hidden}, {"min_stddev", min_stddev}};
}

DacConfig DacConfig::from_json(const nlohmann::json& j) {
  NCL_CHECK(j.is_object(), "dac config must be a JSON object, got ", j.dump());
  DacConfig c;
  for (const auto& [key, value] : j.items()) {
    if (key == "density" || key == "loss") {
      const bool density = key == "density";
      NCL_CHECK(value.is_string() && (density ? value == "gaussian" || value == "maf"
                                              : value == "min" || value == "anc"),
                "dac config: ", key, " must be ", density ? "\"gaussian\" or \"maf\"" : "\"min\" or \"anc\"",
                ", got ", value.dump());
      (density ? c.density : c.loss) = value.get<std::string>();
      continue;
    }
    if (key == "tied") {
      NCL_CHECK(value.is_boolean(), "dac config: tied must be true or false");
      c.tied = value.get<bool>();
      continue;
    }
    if (key == "min_stddev") {
      NCL_CHECK(value.is_number() && value.get<double>() >= 0.0,
                "dac config: min_stddev must be a number >= 0, got ", value.dump());
      c.min_stddev = value.get<double>();
      continue;
    }
    int64_t* field = key == "dim_input"     ? &c.dim_input
                     : key == "dim"         ? &c.dim
                     : key == "heads"       ? &c.heads
                     : key == "inducing"    ? &c.inducing
                     : key == "blocks"      ? &c.blocks
                     : key == "flow_blocks" ? &c.flow_blocks
                     : key == "flow_hidden" ? &c.flow_hidden
                                            : nullptr;
    NCL_CHECK(field != nullptr, "dac config: unknown key '", key, "'");
    NCL_CHECK(value.is_number_integer() && value.get<int64_t>() >= 1,
              "dac config: ", key, " must be a positive integer, got ", value.dump());
    *field = value.get<int64_t>();
  }
  NCL_CHECK(c.dim % c.heads == 0, "dac config: dim ", c.dim, " must be a multiple of heads ",
            c.heads);
  return c;
}

Dac::Dac(const DacConfig& config, Rng& rng) : config_(config) {
  const auto& c = config_;
  const bool anchored = c.loss == "anc", maf = c.density == "maf";
  if (anchored) {
    anchor_ = std::make_unique<nn::MAB>(c.dim_input, c.dim_input, c.dim, c.heads, false, rng);
    register_module("anchor", *anchor_);
  }
  encoder_ = std::make_unique<nn::StackedISAB>(anchored ? c.dim : c.dim_input, c.dim, c.heads,
                                               c.inducing, c.blocks, c.tied, rng);
  register_module("encoder", *encoder_);
  pool_ = std::make_unique<nn::PMA>(c.dim, c.heads, 1, false, rng);
  register_module("pool", *pool_);
  // DAC-py's seed is a (1, dim) matrix: Xavier bound √(6 / (dim + 1)) (0.216 for dim 128).
  pool_->S.set_value(nn::init_xavier_uniform(rng, {1, c.dim}).reshape({1, 1, c.dim}));
  theta_ = std::make_unique<nn::Linear>(c.dim, maf ? c.dim : 2 * c.dim_input, rng);
  register_module("theta", *theta_);
  if (maf) {
    flow_ = std::make_unique<nn::MAF>(c.dim_input, c.dim, rng, c.flow_blocks, c.flow_hidden);
    register_module("flow", *flow_);
  }
  join_ = std::make_unique<nn::MAB>(c.dim, c.dim, c.dim, c.heads, false, rng);
  register_module("join", *join_);
  decoder_ = std::make_unique<nn::StackedISAB>(c.dim, c.dim, c.heads, c.inducing, c.blocks,
                                               c.tied, rng);
  register_module("decoder", *decoder_);
  logit_ = std::make_unique<nn::Linear>(c.dim, 1, rng);
  register_module("logit", *logit_);
}

TrainingRecipe Dac::recipe() const {
  TrainingRecipe r;
  r.steps = config_.density == "maf" ? 40000 : 20000;
  r.batch = 100;
  r.lr = 5e-4;
  r.decay_at = 0.0;
  r.clip_norm = 10.0;
  r.cosine = true;
  r.micro_batch = 2;  // ncl_bench: 0.76× the whole batch's time on 2 cores, 1/30 of its memory
  return r;
}

data::EpisodeOptions Dac::episodes() {
  data::EpisodeOptions e;
  e.clusters_min = 1;
  e.clusters_max = 4;
  e.points_min = 300;
  e.points_max = 999;
  return e;
}

Variable Dac::log_density(const Variable& points, const Variable& theta) const {
  const int64_t B = points.dim(0), N = points.dim(1), D = config_.dim_input;
  if (flow_) return reshape(flow_->log_prob(reshape(points, {B * N, D}), theta), {B, N});
  Variable mean = reshape(slice(theta, 1, 0, D), {B, 1, D});
  Variable stddev = reshape(slice(theta, 1, D, 2 * D), {B, 1, D});
  return gaussian_log_density(points, mean, stddev);  // (B, N)
}

FilterOutput Dac::forward(const Variable& points, const Tensor& key_mask,
                          const std::vector<int64_t>& anchors, bool with_density) const {
  const int64_t D = config_.dim_input, W = config_.dim;
  NCL_CHECK(points.rank() == 3 && points.dim(2) == D, name(), ": points ", points.shape(),
            " must be (B, N, ", D, ")");
  const int64_t B = points.dim(0), N = points.dim(1);
  Variable H = points;
  if (anchor_) {
    NCL_CHECK(int64_t(anchors.size()) == B, name(), ": the anchored model needs one anchor per "
              "dataset, got ", anchors.size(), " for ", B);
    // x_anchor = a one-hot row times the points: differentiable like any other use of them.
    std::vector<double> onehot(B * N, 0.0);
    for (int64_t b = 0; b < B; ++b) {
      NCL_CHECK(anchors[b] >= 0 && anchors[b] < N, name(), ": anchor ", anchors[b],
                " is not a point index below ", N);
      onehot[b * N + anchors[b]] = 1.0;
    }
    Variable select(Tensor::from_vector(onehot, {B, 1, N}, points.value().dtype())
                        .to(points.value().device()));
    H = anchor_->forward(points, matmul(select, points));  // (B, N, W); never masked
  }
  H = encoder_->forward(H, key_mask);                  // (B, N, W)
  Variable cluster = pool_->forward(H, key_mask);      // (B, 1, W)
  Variable raw = theta_->forward(reshape(cluster, {B, W}));  // (B, P)
  Variable theta = flow_ ? raw
                         : concat({slice(raw, 1, 0, D),
                                   add_scalar(softplus(slice(raw, 1, D, 2 * D)), config_.min_stddev)},
                                  1);
  Variable member = decoder_->forward(join_->forward(H, cluster), key_mask);  // (B, N, W)
  return {reshape(logit_->forward(member), {B, N}),
          with_density ? log_density(points, theta) : Variable(), theta};
}

Variable Dac::loss(const data::Batch& batch, Rng& rng) const {
  const int64_t B = batch.points.dim(0), N = batch.points.dim(1);
  NCL_CHECK(int64_t(batch.labels.size()) == B, name(), ": the batch has ", batch.labels.size(),
            " label lists for ", B, " datasets");
  Variable points(batch.points.to(device()));
  const DType dtype = batch.points.dtype();
  auto constant = [&](const std::vector<double>& v, const Shape& shape) {
    return Variable(Tensor::from_vector(v, shape, dtype).to(device()));
  };

  if (anchor_) {
    std::vector<int64_t> anchors(B);
    std::vector<double> target(B * N), weight(B * N);
    for (int64_t b = 0; b < B; ++b) {
      anchors[b] = rng.randint(0, N);
      const int anchor_label = batch.labels[b][anchors[b]];
      double members = 0.0;
      for (int64_t n = 0; n < N; ++n) members += target[b * N + n] = batch.labels[b][n] == anchor_label;
      for (int64_t n = 0; n < N; ++n) weight[b * N + n] = target[b * N + n] / (members + 1e-8);
    }
    FilterOutput out = forward(points, {}, anchors);
    Variable bce = mean_all(bce_with_logits(out.logits, constant(target, {B, N})));
    Variable members_ll = sum_all(out.log_density * constant(weight, {B, N}));
    return bce - members_ll * (1.0 / double(B));
  }

  int64_t K = 1;
  for (const auto& labels : batch.labels)
    for (int label : labels) K = std::max<int64_t>(K, label + 1);
  std::vector<double> onehot(B * N * K, 0.0), counts(B * K, 0.0), inverse(B * K);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      const int label = batch.labels[b][n];
      onehot[(b * N + n) * K + label] = 1.0;
      counts[b * K + label] += 1.0;
    }
  for (int64_t i = 0; i < B * K; ++i) inverse[i] = 1.0 / (counts[i] + 1e-8);
  FilterOutput out = forward(points);
  Variable Y = constant(onehot, {B, N, K});
  // Per candidate cluster k: mean_n softplus(ℓ_n) − (1/N) Σ_{n in k} ℓ_n − mean_{n in k} ll_n.
  Variable softplus_mean = mean(softplus(out.logits), 1, /*keepdim=*/true);                // (B, 1)
  Variable logit_sum = reshape(matmul(reshape(out.logits, {B, 1, N}), Y), {B, K});         // (B, K)
  Variable ll_sum = reshape(matmul(reshape(out.log_density, {B, 1, N}), Y), {B, K});       // (B, K)
  Variable candidate = softplus_mean - logit_sum * (1.0 / double(N)) -
                       ll_sum * constant(inverse, {B, K});                                // (B, K)
  // min over the non-empty candidates: a constant selection, so only the minimum gets gradient.
  std::vector<double> values = candidate.value().to_vector(), select(B * K, 0.0);
  std::vector<int64_t> best(B, -1);
  int64_t used = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t k = 0; k < K; ++k)
      if (counts[b * K + k] > 0 && (best[b] < 0 || values[b * K + k] < values[b * K + best[b]]))
        best[b] = k;
    used += best[b] >= 0;
  }
  NCL_CHECK(used > 0, name(), ": no dataset of the batch has a non-empty cluster");
  for (int64_t b = 0; b < B; ++b)
    if (best[b] >= 0) select[b * K + best[b]] = 1.0 / double(used);
  return sum_all(candidate * constant(select, {B, K}));
}

std::vector<double> Dac::densities(const std::vector<double>& points, const Tensor& theta) const {
  const int64_t D = config_.dim_input, N = int64_t(points.size()) / D, K = theta.dim(0);
  std::vector<double> out(K * N);
  if (!flow_) {
    std::vector<double> t = theta.to_vector();
    const double half_log_2pi = 0.5 * std::log(2.0 * std::numbers::pi);
    for (int64_t k = 0; k < K; ++k) {
      const double* mean = &t[k * 2 * D];
      const double* stddev = mean + D;
      for (int64_t n = 0; n < N; ++n) {
        double ll = 0.0;
        for (int64_t d = 0; d < D; ++d) {
          double z = (points[n * D + d] - mean[d]) / stddev[d];
          ll -= 0.5 * z * z + std::log(stddev[d]) + half_log_2pi;
        }
        out[k * N + n] = ll;
      }
    }
    return out;
  }
  // The flow: every point under every cluster's context, K groups of N rows.
  std::vector<double> tiled;
  tiled.reserve(K * N * D);
  for (int64_t k = 0; k < K; ++k) tiled.insert(tiled.end(), points.begin(), points.end());
  Variable x(Tensor::from_vector(tiled, {K * N, D}, DType::F32).to(device()));
  return flow_->log_prob(x, Variable(theta.to(device()))).value().to_vector();
}

ClusterResult Dac::cluster(const std::vector<double>& points, const InferenceOptions& options) const {
  const int64_t D = config_.dim_input, N = int64_t(points.size()) / D;
  NCL_CHECK(N >= 1 && int64_t(points.size()) == N * D, name(), ": ", points.size(),
            " values do not form points of dimension ", D);
  NCL_CHECK(options.max_passes >= 1, name(), ": max_passes must be >= 1");
  NoGradGuard no_grad;
  Rng rng(options.seed);
  std::vector<int> labels(N, -1);
  std::vector<int64_t> remaining(N);
  for (int64_t n = 0; n < N; ++n) remaining[n] = n;
  std::vector<std::vector<double>> thetas;  // θ (P) of every cluster found
  std::vector<double> unused;  // θ of a last pass that claimed nothing (run on `remaining`)
  ClusterResult result;

  // One pass over the remaining points: their logits and the proposed θ.
  auto run_pass = [&](std::vector<double>& logits, int64_t& anchor) {
    const int64_t n = int64_t(remaining.size());
    std::vector<double> x(n * D);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(points.begin() + remaining[i] * D, D, x.begin() + i * D);
    Variable input(Tensor::from_vector(x, {1, n, D}, DType::F32).to(device()));
    anchor = anchor_ ? rng.randint(0, n) : -1;
    FilterOutput out = forward(input, {}, anchor_ ? std::vector<int64_t>{anchor} : std::vector<int64_t>{},
                               /*with_density=*/false);
    ++result.passes;
    logits = out.logits.value().to_vector();
    return out.theta.value().to_vector();
  };

  while (!remaining.empty() && result.passes < options.max_passes) {
    std::vector<double> logits;
    int64_t anchor = -1;
    std::vector<double> theta = run_pass(logits, anchor);
    std::vector<int64_t> unclaimed;
    const int cluster = int(thetas.size());
    for (int64_t i = 0; i < int64_t(remaining.size()); ++i) {
      if (logits[i] > 0.0 || i == anchor) labels[remaining[i]] = cluster;
      else unclaimed.push_back(remaining[i]);
    }
    if (unclaimed.size() == remaining.size()) {  // claimed nothing: the next pass would too
      unused = std::move(theta);
      break;
    }
    thetas.push_back(std::move(theta));
    remaining = std::move(unclaimed);
  }

  result.leftovers = int64_t(remaining.size());
  const bool own = !remaining.empty() && (thetas.empty() || options.leftovers == Leftovers::Own);
  if (own) {  // a pass on the leftovers (the last one, if it ran on them) makes their cluster
    std::vector<double> logits;
    int64_t anchor = -1;
    thetas.push_back(unused.empty() ? run_pass(logits, anchor) : unused);
    for (int64_t n : remaining) labels[n] = int(thetas.size()) - 1;
  } else if (!remaining.empty() && options.leftovers == Leftovers::First) {
    for (int64_t n : remaining) labels[n] = 0;
  }
  const int64_t K = int64_t(thetas.size()), P = int64_t(thetas.front().size());
  std::vector<double> theta_values;
  for (const auto& t : thetas) theta_values.insert(theta_values.end(), t.begin(), t.end());
  Tensor theta = Tensor::from_vector(theta_values, {K, P}, DType::F32);
  std::vector<double> ll = densities(points, theta);  // (K, N)

  std::vector<double> counts(K, 0.0);
  for (int label : labels)
    if (label >= 0) counts[label] += 1.0;
  auto log_weights = [&](const std::vector<double>& c, double total) {
    std::vector<double> w(K);
    for (int64_t k = 0; k < K; ++k) w[k] = std::log(c[k] / total + 1e-10);
    return w;
  };
  if (!remaining.empty() && options.leftovers == Leftovers::Nearest) {
    // Weights from the claimed points only, then each leftover to its most likely cluster.
    std::vector<double> lw = log_weights(counts, double(N - int64_t(remaining.size())));
    for (int64_t n : remaining) {
      int64_t best = 0;
      for (int64_t k = 1; k < K; ++k)
        if (ll[k * N + n] + lw[k] > ll[best * N + n] + lw[best]) best = k;
      labels[n] = int(best);
      counts[best] += 1.0;
    }
  }

  // The mixture of the clusters' densities with their shares of the points as weights.
  std::vector<double> lw = log_weights(counts, double(N));
  result.clusters = K;
  result.labels = labels;
  result.membership.resize(N * K);
  double total_ll = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < K; ++k) top = std::max(top, ll[k * N + n] + lw[k]);
    double sum = 0.0;
    for (int64_t k = 0; k < K; ++k) sum += result.membership[n * K + k] = std::exp(ll[k * N + n] + lw[k] - top);
    for (int64_t k = 0; k < K; ++k) result.membership[n * K + k] /= sum;
    total_ll += top + std::log(sum);
  }
  result.log_likelihood = total_ll / double(N);
  if (!flow_) {
    data::GaussianMixture mixture{D, std::vector<double>(K), {}, {}};
    for (int64_t k = 0; k < K; ++k) {
      mixture.weights[k] = counts[k] / double(N);
      for (int64_t d = 0; d < D; ++d) {
        mixture.means.push_back(theta_values[k * P + d]);
        mixture.stddevs.push_back(theta_values[k * P + D + d]);
      }
    }
    result.mixture = mixture;
  } else {
    // The flow mixture's density for plots (valid while this model is alive).
    result.log_density = [this, theta, lw, K](const std::vector<double>& at) {
      const int64_t M = int64_t(at.size()) / config_.dim_input;
      std::vector<double> per_cluster = densities(at, theta), out(M);
      for (int64_t m = 0; m < M; ++m) {
        double top = -std::numeric_limits<double>::infinity(), sum = 0.0;
        for (int64_t k = 0; k < K; ++k) top = std::max(top, per_cluster[k * M + m] + lw[k]);
        for (int64_t k = 0; k < K; ++k) sum += std::exp(per_cluster[k * M + m] + lw[k] - top);
        out[m] = top + std::log(sum);
      }
      return out;
    };
  }
  return result;
}

}  // namespace ncl::models

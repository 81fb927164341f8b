#include "models/dac.h"

#include <algorithm>

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
    NCL_CHECK(value.is_number_integer() && value.get<int64_t>() >= 1 &&
                  value.get<int64_t>() <= config_ceiling(key),
              "dac config: ", key, " must be an integer from 1 to ", config_ceiling(key), ", got ",
              value.dump());
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
  r.micro_batch = 2;  // ncl_bench, 2 cores: 0.6× the whole batch's time, 1/20 of its memory
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

Dac::Proposal Dac::propose(const Variable& points, const Tensor& key_mask,
                           const std::vector<int64_t>& anchors) const {
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
  return {H, cluster, theta};
}

Variable Dac::propose_theta(const Variable& points, const Tensor& key_mask,
                            const std::vector<int64_t>& anchors) const {
  return propose(points, key_mask, anchors).theta;
}

FilterOutput Dac::forward(const Variable& points, const Tensor& key_mask,
                          const std::vector<int64_t>& anchors, bool with_density) const {
  Proposal p = propose(points, key_mask, anchors);
  const int64_t B = points.dim(0), N = points.dim(1);
  Variable member = decoder_->forward(join_->forward(p.H, p.cluster), key_mask);  // (B, N, W)
  return {reshape(logit_->forward(member), {B, N}),
          with_density ? log_density(points, p.theta) : Variable(), p.theta};
}

std::vector<int64_t> Dac::draw_anchors(const data::Batch& batch, Rng& rng) {
  std::vector<int64_t> anchors(size_t(batch.points.dim(0)));
  for (int64_t& anchor : anchors) anchor = rng.randint(0, batch.points.dim(1));
  return anchors;
}

Variable Dac::anchored_loss(const data::Batch& batch, const std::vector<int64_t>& anchors) const {
  const int64_t B = batch.points.dim(0), N = batch.points.dim(1);
  NCL_CHECK(int64_t(batch.labels.size()) == B && int64_t(anchors.size()) == B, name(),
            ": the batch has ", batch.labels.size(), " label lists and ", anchors.size(),
            " anchors for ", B, " datasets");
  std::vector<double> target(B * N), weight(B * N);
  for (int64_t b = 0; b < B; ++b) {
    const int anchor_label = batch.labels[b][anchors[b]];
    double members = 0.0;
    for (int64_t n = 0; n < N; ++n) members += target[b * N + n] = batch.labels[b][n] == anchor_label;
    for (int64_t n = 0; n < N; ++n) weight[b * N + n] = target[b * N + n] / (members + 1e-8);
  }
  const DType dtype = batch.points.dtype();
  auto constant = [&](const std::vector<double>& v) {
    return Variable(Tensor::from_vector(v, {B, N}, dtype).to(device()));
  };
  FilterOutput out = forward(Variable(batch.points.to(device())), {}, anchors);
  Variable bce = mean_all(bce_with_logits(out.logits, constant(target)));
  Variable members_ll = sum_all(out.log_density * constant(weight));
  return bce - members_ll * (1.0 / double(B));
}

StepReport Dac::backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const {
  if (!anchor_) return ClusteringModel::backward(batch, micro_batch, rng);
  // Chunk by chunk, loss() would draw the same anchors in the same order: the run is unchanged.
  const std::vector<int64_t> anchors = draw_anchors(batch, rng);
  const Chunks chunks = device() == Device::CPU ? Chunks::OnThreads : Chunks::InOrder;
  auto loss_of = [&](const data::Batch& part, int64_t first) {
    const auto begin = anchors.begin() + first;
    return anchored_loss(part, std::vector<int64_t>(begin, begin + part.points.dim(0)));
  };
  return {backward_in_chunks(batch, micro_batch, chunks, loss_of), std::nullopt};
}

Variable Dac::loss(const data::Batch& batch, Rng& rng) const {
  const int64_t B = batch.points.dim(0), N = batch.points.dim(1);
  NCL_CHECK(int64_t(batch.labels.size()) == B, name(), ": the batch has ", batch.labels.size(),
            " label lists for ", B, " datasets");
  if (anchor_) return anchored_loss(batch, draw_anchors(batch, rng));
  Variable points(batch.points.to(device()));
  const DType dtype = batch.points.dtype();
  auto constant = [&](const std::vector<double>& v, const Shape& shape) {
    return Variable(Tensor::from_vector(v, shape, dtype).to(device()));
  };

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

}  // namespace ncl::models

#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/functions.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace ncl::models {

int64_t config_ceiling(const std::string& key) {
  const bool depth = key.ends_with("layers") || key.ends_with("blocks") || key == "orders";
  return depth ? kMaxConfigDepth : kMaxConfigWidth;
}

void require_finite(const ClusterResult& r, const std::string& source) {
  auto finite = [](const std::vector<double>& values) {
    return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
  };
  bool ok = finite(r.membership);
  if (r.mixture) ok = ok && finite(r.mixture->weights) && finite(r.mixture->means) &&
                      finite(r.mixture->stddevs);
  for (const std::optional<double>& ll : {r.log_likelihood, r.log_likelihood_em})
    ok = ok && (!ll || std::isfinite(*ll));
  for (const ClusterResult::Clustering& c : r.posterior) ok = ok && std::isfinite(c.nll);
  NCL_CHECK(ok, source, ": the clustering's numbers are not finite (float32 overflow); HINT: "
            "points far beyond what the model was trained on (rescale them), or a damaged "
            "checkpoint");
}

double backward_in_chunks(const data::Batch& batch, int64_t micro_batch, Chunks chunks,
                          const std::function<Variable(const data::Batch&, int64_t)>& loss) {
  const int64_t B = batch.points.dim(0);
  const int64_t size = micro_batch > 0 ? std::min(micro_batch, B) : B;
  std::vector<data::Batch> parts;
  std::vector<double> weights;
  std::vector<int64_t> firsts;
  for (int64_t start = 0; start < B; start += size) {
    const int64_t end = std::min(B, start + size);
    data::Batch& part = parts.emplace_back();
    part.points = end - start == B ? batch.points : ops::slice(batch.points, 0, start, end);
    part.labels.assign(batch.labels.begin() + start, batch.labels.begin() + end);
    if (!batch.truth.empty()) part.truth.assign(batch.truth.begin() + start, batch.truth.begin() + end);
    weights.push_back(double(end - start) / double(B));
    firsts.push_back(start);
  }
  const int64_t C = int64_t(parts.size());
  // Chunk c's loss into values[c], then its backward; false (and no backward) when it is not
  // finite. Chunks a thread never ran keep NaN, and always follow a non-finite one.
  std::vector<double> values(size_t(C), std::numeric_limits<double>::quiet_NaN());
  auto run = [&](int64_t c) {
    Variable value = loss(parts[size_t(c)], firsts[size_t(c)]);
    const double v = values[size_t(c)] = value.value().item();
    if (!std::isfinite(v)) return false;
    (weights[size_t(c)] == 1.0 ? value : value * weights[size_t(c)]).backward();
    return true;
  };
  // On threads only when every thread gets a chunk: with fewer chunks than threads (2 halves of
  // a batch on 16 cores) the kernels split over all the threads use more of them.
  const int threads = ops::cpu_threads();
  if (chunks == Chunks::OnThreads && threads >= 2 && C >= threads) {
    std::vector<GradientSink> sinks(static_cast<size_t>(threads));
    ops::run_cpu_groups(C, [&](int group, int64_t begin, int64_t end) {
      CollectGradients collect(sinks[size_t(group)]);
      for (int64_t c = begin; c < end; ++c)
        if (!run(c)) break;
    });
    GradientSink::merge_all(sinks);
  } else {
    for (int64_t c = 0; c < C; ++c)
      if (!run(c)) break;
  }
  double total = 0.0;  // or the first non-finite chunk loss: the caller stops before any update
  for (int64_t c = 0; c < C; ++c) {
    if (!std::isfinite(values[size_t(c)])) return values[size_t(c)];
    total += weights[size_t(c)] * values[size_t(c)];
  }
  return total;
}

double backward_in_chunks(const ClusteringModel& model, const data::Batch& batch,
                          int64_t micro_batch, Rng& rng) {
  const bool on_threads = model.device() == Device::CPU && !model.loss_draws();
  return backward_in_chunks(batch, micro_batch, on_threads ? Chunks::OnThreads : Chunks::InOrder,
                            [&](const data::Batch& part, int64_t) { return model.loss(part, rng); });
}

StepReport ClusteringModel::backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const {
  return {backward_in_chunks(*this, batch, micro_batch, rng), std::nullopt};
}

}  // namespace ncl::models

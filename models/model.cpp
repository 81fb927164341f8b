#include "models/model.h"

#include <algorithm>
#include <cmath>

#include "autograd/functions.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace ncl::models {

double backward_in_chunks(const data::Batch& batch, int64_t micro_batch,
                          const std::function<Variable(const data::Batch&)>& loss) {
  const int64_t B = batch.points.dim(0);
  const int64_t chunk = micro_batch > 0 ? std::min(micro_batch, B) : B;
  double total = 0.0;
  for (int64_t start = 0; start < B; start += chunk) {
    const int64_t end = std::min(B, start + chunk);
    data::Batch part;
    part.points = end - start == B ? batch.points : ops::slice(batch.points, 0, start, end);
    part.labels.assign(batch.labels.begin() + start, batch.labels.begin() + end);
    if (!batch.truth.empty()) part.truth.assign(batch.truth.begin() + start, batch.truth.begin() + end);
    const double weight = double(end - start) / double(B);
    Variable value = loss(part);
    const double v = value.value().item();
    total += weight * v;
    if (!std::isfinite(v)) return v;  // the caller stops before any update
    (weight == 1.0 ? value : value * weight).backward();
  }
  return total;
}

double backward_in_chunks(const ClusteringModel& model, const data::Batch& batch,
                          int64_t micro_batch, Rng& rng) {
  return backward_in_chunks(batch, micro_batch,
                            [&](const data::Batch& part) { return model.loss(part, rng); });
}

StepReport ClusteringModel::backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const {
  return {backward_in_chunks(*this, batch, micro_batch, rng), std::nullopt};
}

}  // namespace ncl::models

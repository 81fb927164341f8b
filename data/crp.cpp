#include "data/crp.h"

#include <algorithm>

#include "tensor/error.h"

namespace ncl::data {

namespace {

// numpy's median: the middle value, or the mean of the two middle values when n is even.
double median(std::vector<double> v) {
  const size_t n = v.size(), mid = n / 2;
  std::nth_element(v.begin(), v.begin() + long(mid), v.end());
  if (n % 2 == 1) return v[mid];
  const double upper = v[mid];
  return 0.5 * (upper + *std::max_element(v.begin(), v.begin() + long(mid)));
}

}  // namespace

std::vector<int> sample_crp(int64_t n, double alpha, Rng& rng) {
  std::vector<int> labels;
  std::vector<double> tables;  // seated per cluster, then α for a new one
  for (int64_t i = 0; i < n; ++i) {
    tables.push_back(alpha);
    const int k = int(rng.categorical(tables));  // categorical normalises by α + i
    tables.pop_back();
    if (k == int(tables.size())) tables.push_back(0.0);
    tables[size_t(k)] += 1.0;
    labels.push_back(k);
  }
  return labels;
}

CrpMog::CrpMog(CrpMogOptions options) : options_(options) {
  NCL_CHECK(options_.alpha > 0 && options_.n_min >= 1 && options_.n_max > options_.n_min,
            "crp-mog: needs alpha > 0 and 1 <= n_min < n_max");
}

Batch CrpMog::sample(int64_t batch, Rng& rng) const {
  const int64_t D = 2, N = rng.randint(options_.n_min, options_.n_max);
  const std::vector<int> labels = sample_crp(N, options_.alpha, rng);
  const int64_t K = *std::max_element(labels.begin(), labels.end()) + 1;
  Batch out;
  out.points = Tensor::empty({batch, N, D});  // (B, N, D)
  float* x = out.points.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    GaussianMixture truth{D, std::vector<double>(size_t(K), 0.0), {}, {}};
    for (int64_t i = 0; i < K * D; ++i) truth.means.push_back(options_.lambda * rng.normal());
    truth.stddevs.assign(size_t(K * D), options_.sigma);
    std::vector<double> points(size_t(N * D));
    for (int64_t n = 0; n < N; ++n) {
      truth.weights[size_t(labels[size_t(n)])] += 1.0 / double(N);
      for (int64_t d = 0; d < D; ++d)
        points[size_t(n * D + d)] =
            truth.means[size_t(labels[size_t(n)] * D + d)] + options_.sigma * rng.normal();
    }
    for (int64_t d = 0; d < D; ++d) {
      std::vector<double> column(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; ++n) column[size_t(n)] = points[size_t(n * D + d)];
      const double m = median(std::move(column));
      for (int64_t n = 0; n < N; ++n) x[(b * N + n) * D + d] = float(points[size_t(n * D + d)] - m);
      for (int64_t k = 0; k < K; ++k) truth.means[size_t(k * D + d)] -= m;
    }
    out.labels.push_back(labels);
    out.truth.push_back(std::move(truth));
  }
  return out;
}

}  // namespace ncl::data

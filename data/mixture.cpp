#include "data/mixture.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/error.h"

namespace ncl::data {

namespace {

void check_points(const GaussianMixture& mixture, const std::vector<double>& points) {
  NCL_CHECK(mixture.dim > 0 && mixture.clusters() > 0, "empty mixture");
  NCL_CHECK(int64_t(mixture.means.size()) == mixture.clusters() * mixture.dim &&
                mixture.stddevs.size() == mixture.means.size(),
            "mixture has ", mixture.clusters(), " weights but ", mixture.means.size(),
            " means and ", mixture.stddevs.size(), " stddevs for D = ", mixture.dim);
  NCL_CHECK(!points.empty() && int64_t(points.size()) % mixture.dim == 0, "points (",
            points.size(), " values) do not form rows of D = ", mixture.dim);
}

// log Σ_k exp(row_k), stable.
double log_sum_exp(const double* row, int64_t K) {
  double m = *std::max_element(row, row + K);
  if (!std::isfinite(m)) return m;
  double s = 0.0;
  for (int64_t k = 0; k < K; ++k) s += std::exp(row[k] - m);
  return m + std::log(s);
}

}  // namespace

std::vector<double> joint_log_density(const GaussianMixture& mixture, const std::vector<double>& points,
                                      double weight_floor) {
  check_points(mixture, points);
  const int64_t K = mixture.clusters(), D = mixture.dim, N = int64_t(points.size()) / D;
  const double half_log_2pi = 0.5 * std::log(2.0 * std::numbers::pi);
  // Per cluster: log π_k − Σ_d (log σ_kd + ½ log 2π), the part that does not depend on x.
  std::vector<double> offset(K);
  for (int64_t k = 0; k < K; ++k) {
    offset[k] = std::log(mixture.weights[k] + weight_floor);
    for (int64_t d = 0; d < D; ++d) offset[k] -= std::log(mixture.stddevs[k * D + d]) + half_log_2pi;
  }
  std::vector<double> out(N * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      double t = offset[k];
      for (int64_t d = 0; d < D; ++d) {
        double z = (points[n * D + d] - mixture.means[k * D + d]) / mixture.stddevs[k * D + d];
        t -= 0.5 * z * z;
      }
      out[n * K + k] = t;
    }
  return out;
}

double mean_log_likelihood(const GaussianMixture& mixture, const std::vector<double>& points,
                           double weight_floor) {
  std::vector<double> joint = joint_log_density(mixture, points, weight_floor);
  const int64_t K = mixture.clusters(), N = int64_t(joint.size()) / K;
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += log_sum_exp(&joint[n * K], K);
  return total / double(N);
}

std::vector<double> responsibilities(const GaussianMixture& mixture, const std::vector<double>& points,
                                     double weight_floor) {
  std::vector<double> r = joint_log_density(mixture, points, weight_floor);
  const int64_t K = mixture.clusters(), N = int64_t(r.size()) / K;
  for (int64_t n = 0; n < N; ++n) {
    double lse = log_sum_exp(&r[n * K], K);
    for (int64_t k = 0; k < K; ++k) r[n * K + k] = std::exp(r[n * K + k] - lse);
  }
  return r;
}

std::vector<int> hard_labels(const std::vector<double>& responsibilities, int64_t clusters) {
  const int64_t N = int64_t(responsibilities.size()) / clusters;
  std::vector<int> labels(N);
  for (int64_t n = 0; n < N; ++n) {
    const double* row = &responsibilities[n * clusters];
    labels[n] = int(std::max_element(row, row + clusters) - row);
  }
  return labels;
}

GaussianMixture em_step(const GaussianMixture& mixture, const std::vector<double>& points,
                        double weight_floor) {
  std::vector<double> r = responsibilities(mixture, points, weight_floor);
  const int64_t K = mixture.clusters(), D = mixture.dim, N = int64_t(points.size()) / D;
  GaussianMixture next{D, std::vector<double>(K, 0.0), std::vector<double>(K * D, 0.0),
                       std::vector<double>(K * D, 0.0)};
  for (int64_t k = 0; k < K; ++k) {
    double nk = 1e-10;
    for (int64_t n = 0; n < N; ++n) nk += r[n * K + k];
    next.weights[k] = nk / double(N);
    for (int64_t d = 0; d < D; ++d) {
      double mu = 0.0;
      for (int64_t n = 0; n < N; ++n) mu += r[n * K + k] * points[n * D + d];
      mu /= nk;
      double var = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        double e = points[n * D + d] - mu;
        var += r[n * K + k] * e * e;
      }
      next.means[k * D + d] = mu;
      next.stddevs[k * D + d] = std::sqrt(var / nk + 1e-10);
    }
  }
  return next;
}

}  // namespace ncl::data

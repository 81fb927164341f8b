#include "data/standardize.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace ncl::data {

namespace {
// Feature d's standard deviation for values whose squares overflow (|x| ~ 1e155 and beyond):
// computed on x / max|x|, then scaled back.
double scaled_std(const std::vector<double>& points, int64_t dim, int64_t d, double mean) {
  const int64_t N = int64_t(points.size()) / dim;
  double largest = 0.0;
  for (int64_t n = 0; n < N; ++n) largest = std::max(largest, std::abs(points[n * dim + d]));
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const double e = points[n * dim + d] / largest - mean / largest;
    sum += e * e / double(N);
  }
  return largest * std::sqrt(sum);
}
}  // namespace

Standardizer Standardizer::fit(const std::vector<double>& points, int64_t dim) {
  const int64_t N = int64_t(points.size()) / dim;
  NCL_CHECK(N >= 1, "cannot standardise an empty point set");
  Standardizer s{std::vector<double>(dim, 0.0), std::vector<double>(dim, 0.0)};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < dim; ++d) s.mean[d] += points[n * dim + d] / double(N);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < dim; ++d) {
      double e = points[n * dim + d] - s.mean[d];
      s.std[d] += e * e / double(N);
    }
  // A constant feature gets std 1 (and its exact value as mean): the rounding error of the
  // mean would otherwise leave a std of ~1e-16 that blows up the feature and log_scale().
  for (int64_t d = 0; d < dim; ++d) {
    bool constant = true;
    for (int64_t n = 1; n < N && constant; ++n) constant = points[n * dim + d] == points[d];
    if (constant) s.mean[d] = points[d];
    s.std[d] = constant ? 1.0 : std::sqrt(s.std[d]);
    if (!std::isfinite(s.std[d])) s.std[d] = scaled_std(points, dim, d, s.mean[d]);
  }
  return s;
}

void Standardizer::apply(std::vector<double>& points) const {
  if (identity()) return;
  const size_t D = mean.size();
  NCL_CHECK(points.size() % D == 0, "standardise: ", points.size(), " values are not rows of ", D);
  for (size_t i = 0; i < points.size(); ++i) {
    const double x = points[i], m = mean[i % D], s = std[i % D];
    points[i] = (x - m) / s;
    if (!std::isfinite(points[i])) points[i] = x / s - m / s;  // x − m overflowed (|x| ~ 1e308)
  }
}

GaussianMixture Standardizer::unapply(const GaussianMixture& mixture) const {
  if (identity()) return mixture;
  GaussianMixture out = mixture;
  const size_t D = mean.size();
  for (size_t i = 0; i < out.means.size(); ++i) {
    out.means[i] = out.means[i] * std[i % D] + mean[i % D];
    out.stddevs[i] *= std[i % D];
  }
  return out;
}

double Standardizer::log_scale() const {
  double s = 0.0;
  for (double v : std) s += std::log(v);
  return s;
}

nlohmann::json Standardizer::to_json() const { return {{"mean", mean}, {"std", std}}; }

Standardizer Standardizer::from_json(const nlohmann::json& j) {
  NCL_CHECK(j.is_object() && j.contains("mean") && j.contains("std") && j["mean"].is_array() &&
                j["std"].is_array() && j["mean"].size() == j["std"].size(),
            "malformed standardisation record: ", j.dump());
  Standardizer s;
  for (const auto& v : j["mean"]) {
    NCL_CHECK(v.is_number(), "standardisation mean holds a non-number: ", v.dump());
    s.mean.push_back(v.get<double>());
  }
  for (const auto& v : j["std"]) {
    NCL_CHECK(v.is_number() && v.get<double>() > 0.0, "standardisation std must be > 0: ", v.dump());
    s.std.push_back(v.get<double>());
  }
  return s;
}

}  // namespace ncl::data

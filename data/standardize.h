// Feature standardisation: x' = (x − mean) / std per feature, fitted on a training file and
// stored in the checkpoint (metadata "standardize") so clustering applies the same transform.
// An empty Standardizer is the identity (models trained on a generator see raw points).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/mixture.h"

namespace ncl::data {

struct Standardizer {
  std::vector<double> mean, std;  // (D) each; empty = identity

  bool identity() const { return mean.empty(); }
  // Per-feature mean and std of points (N, D); a constant feature gets std 1.
  static Standardizer fit(const std::vector<double>& points, int64_t dim);
  void apply(std::vector<double>& points) const;  // in place, (N, D)
  // A mixture fitted in standardised units, expressed in the original units.
  GaussianMixture unapply(const GaussianMixture& mixture) const;
  // Σ_d log std_d: a density in standardised units is this much higher per point.
  double log_scale() const;

  nlohmann::json to_json() const;
  static Standardizer from_json(const nlohmann::json& j);  // throws on malformed input
};

}  // namespace ncl::data

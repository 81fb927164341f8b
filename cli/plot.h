// An SVG picture of a clustering: points coloured by cluster, and each fitted Gaussian component
// drawn as its 1σ and 2σ ellipses (axis-aligned: the components are diagonal) with its mean
// marked. Uses the first two features; throws for 1-D points.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/mixture.h"

namespace ncl::cli {

// points (N, D) row-major in the user's units, labels (N), components in the same units.
std::string render_svg(const std::vector<double>& points, int64_t dim, const std::vector<int>& labels,
                       const std::optional<data::GaussianMixture>& components,
                       const std::string& title);

}  // namespace ncl::cli

// An SVG picture of a clustering: points coloured by cluster, and each fitted Gaussian component
// drawn as its 1σ and 2σ ellipses (axis-aligned: the components are diagonal) with its mean
// marked, or, for a density that is not Gaussian (DAC's flows), contour lines of the mixture's
// log-density at 1, 3 and 6 nats below its highest value on a grid over the picture. Uses the
// first two features; throws for 1-D points.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/mixture.h"

namespace ncl::cli {

// A log-density over 2-D points ((M, 2) row-major → M values), in the user's units.
using LogDensity = std::function<std::vector<double>(const std::vector<double>&)>;

// points (N, D) row-major in the user's units, labels (N), components in the same units;
// log_density (2-D data only) may be empty.
std::string render_svg(const std::vector<double>& points, int64_t dim, const std::vector<int>& labels,
                       const std::optional<data::GaussianMixture>& components,
                       const std::string& title, const LogDensity& log_density = {});

}  // namespace ncl::cli

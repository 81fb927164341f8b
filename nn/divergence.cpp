#include "nn/divergence.h"

#include <algorithm>
#include <cmath>

#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace ncl::nn {
namespace {

constexpr double kNoiseFrozenZ = 2;  // above this score a step's deviation is not "noise"

}  // namespace

bool DivergenceMonitor::update(double loss) {
  NCL_CHECK(std::isfinite(loss), "DivergenceMonitor: loss ", loss, " is not finite");
  if (seen_ == 0) {
    fast_ = loss;
  } else {
    // Running means whose window grows to its size (1/n weights first, then exponential).
    if (score_ < kNoiseFrozenZ)
      noise_ += (std::abs(loss - fast_) - noise_) / std::min<double>(double(seen_), kNoiseWindow);
    fast_ += (loss - fast_) / std::min<double>(double(seen_ + 1), kFastWindow);
  }
  ++seen_;
  if (seen_ >= kWarmup) {
    best_ = std::min(best_, fast_);
    score_ = (fast_ - best_) / std::max(noise_, 1e-9 * (1.0 + std::abs(best_)));
  }
  return diverged();
}

void DivergenceMonitor::to_metadata(std::map<std::string, std::string>& meta) const {
  meta["divergence.fast"] = exact_decimal(fast_);
  meta["divergence.noise"] = exact_decimal(noise_);
  meta["divergence.best"] = exact_decimal(best_);  // "inf" during warm-up
  meta["divergence.score"] = exact_decimal(score_);
  meta["divergence.seen"] = std::to_string(seen_);
}

void DivergenceMonitor::from_metadata(const std::map<std::string, std::string>& meta,
                                      const std::string& path) {
  *this = DivergenceMonitor();
  if (meta.count("divergence.seen") == 0) return;
  auto number = [&](const char* key, bool allow_inf) {
    auto it = meta.find(key);
    NCL_CHECK(it != meta.end(), path, ": checkpoint lacks '", key, "' metadata");
    return metadata_number(it->second, key, path, allow_inf);
  };
  fast_ = number("divergence.fast", false);
  noise_ = number("divergence.noise", false);
  best_ = number("divergence.best", true);
  score_ = number("divergence.score", false);
  double seen = number("divergence.seen", false);
  NCL_CHECK(seen >= 0 && seen == std::floor(seen), path, ": checkpoint metadata 'divergence.seen' is not a count");
  seen_ = int64_t(seen);
}

}  // namespace ncl::nn

#include "nn/divergence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tensor/error.h"

namespace ncl::nn {
namespace {

constexpr double kNoiseFrozenZ = 2;  // above this score a step's deviation is not "noise"

std::string exact_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

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
  meta["divergence.fast"] = exact_text(fast_);
  meta["divergence.noise"] = exact_text(noise_);
  meta["divergence.best"] = exact_text(best_);  // "inf" during warm-up
  meta["divergence.score"] = exact_text(score_);
  meta["divergence.seen"] = std::to_string(seen_);
}

void DivergenceMonitor::from_metadata(const std::map<std::string, std::string>& meta,
                                      const std::string& path) {
  *this = DivergenceMonitor();
  if (meta.count("divergence.seen") == 0) return;
  auto number = [&](const char* key, bool allow_inf) {
    auto it = meta.find(key);
    NCL_CHECK(it != meta.end(), path, ": checkpoint lacks '", key, "' metadata");
    const std::string& text = it->second;
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    NCL_CHECK(!text.empty() && end == text.c_str() + text.size() && !std::isnan(v) &&
                  (allow_inf || std::isfinite(v)),
              path, ": checkpoint metadata '", key, "' is not a number: '", text, "'");
    return v;
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

// DivergenceMonitor: notices a training run whose loss is drifting away, so `ncl train` can
// roll back to its last healthy checkpoint instead of finishing with a ruined model.
//
// Why: with the published recipe (Adam 1e-3, no clipping) both full Set Transformer runs left
// their minimum near step 35,000 (one ended in NaN, one at ARI 0.006). Resumed at lr 1e-3
// from the trained model, its loss rose from 1.6 to 10 over 200 steps and then blew up (a
// mixture component collapsing onto a point); the weights never recovered.
//
// How: `fast` is a running average of the loss over about kFastWindow steps, `noise` the
// running mean absolute deviation of single steps from it (over about kNoiseWindow steps,
// updated only while healthy), `best` the lowest `fast` since warm-up. The run has diverged
// when (fast − best) / noise exceeds kDivergedZ; a healthy run stays below 3 (measured: 0.9
// over the first 3,000 steps of the Set Transformer, 2.8 over 1,350 healthy steps of the
// resumed run above, 0.5 on DAC), and that run's drift scored 6 at loss 2.2 and 9 at 5. Checkpoints are written only while
// the score is below kHealthyZ, so the last one is always a state worth returning to.
// Losses may be negative (DAC's is BCE − LL): the score is shift- and scale-free.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>

namespace ncl::nn {

class DivergenceMonitor {
 public:
  static constexpr double kFastWindow = 50, kNoiseWindow = 500;
  static constexpr int64_t kWarmup = 200;  // steps before `best` is tracked
  static constexpr double kDivergedZ = 8, kHealthyZ = 3;

  // Feeds one step's loss (finite); returns true when the run has diverged.
  bool update(double loss);
  // The current score (fast − best) / noise; 0 during warm-up.
  double score() const { return score_; }
  bool diverged() const { return score_ > kDivergedZ; }
  bool healthy() const { return score_ < kHealthyZ; }
  double fast() const { return fast_; }
  double best() const { return best_; }

  // The state as checkpoint metadata ("divergence.*" keys, exact decimal text), and back.
  // from_metadata starts afresh when the keys are absent (checkpoints from before the monitor)
  // and throws ncl::Error naming the key when one is malformed.
  void to_metadata(std::map<std::string, std::string>& meta) const;
  void from_metadata(const std::map<std::string, std::string>& meta, const std::string& path);

 private:
  double fast_ = 0, noise_ = 0, best_ = std::numeric_limits<double>::infinity(), score_ = 0;
  int64_t seen_ = 0;
};

}  // namespace ncl::nn

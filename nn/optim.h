// Adam / AdamW, global-norm gradient clipping, and learning-rate schedules.
#pragma once

#include <string>
#include <vector>

#include "nn/module.h"

namespace ncl::nn {

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = false;  // false: coupled L2 (torch.optim.Adam); true: AdamW
};

// Adam over a fixed list of named parameters (usually module.named_parameters()).
// step() updates every parameter that has a gradient, with the current lr.
class Adam {
 public:
  Adam(std::vector<NamedParameter> params, AdamOptions options);

  void step();
  void zero_grad();
  void set_lr(double lr) { options_.lr = lr; }
  // Starts afresh, as a newly built optimiser would: moments zeroed, step count 0.
  void restart();
  double lr() const { return options_.lr; }
  int64_t steps_taken() const { return step_; }
  const AdamOptions& options() const { return options_; }

  // State for checkpoints: "adam.m.<param>", "adam.v.<param>"; and the step count.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores m and v (every name must be present with the right shape) and the step count.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t step);

 private:
  std::vector<NamedParameter> params_;
  std::vector<Tensor> m_, v_;  // first and second moments, one per parameter
  AdamOptions options_;
  int64_t step_ = 0;
};

// The global L2 norm of all gradients (parameters without a gradient count as zero); NaN or
// inf when any gradient element is not finite.
double grad_norm(const std::vector<Variable>& params);

// Rescales all gradients so that their global L2 norm is at most max_norm (PyTorch's
// clip_grad_norm_: factor max_norm / (norm + 1e-6) when norm exceeds it). Returns the norm
// before clipping.
double clip_grad_norm(const std::vector<Variable>& params, double max_norm);

// lr(step) = base · gamma^(number of milestones <= step)   (torch MultiStepLR)
struct StepSchedule {
  double base;
  std::vector<int64_t> milestones;
  double gamma = 0.1;
  double lr(int64_t step) const;
};

// lr(step) = min + (base - min) · (1 + cos(π · step / total)) / 2, held at min after total
// (torch CosineAnnealingLR).
struct CosineSchedule {
  double base;
  int64_t total;
  double min = 0.0;
  double lr(int64_t step) const;
};

}  // namespace ncl::nn

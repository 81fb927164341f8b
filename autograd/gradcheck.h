// gradcheck: compare a function's backward pass with central finite differences, in F64.
//
// Protocol (dlib's test_layer and flashlight's Jacobian tests, without retries):
//   L(x) = Σ r ⊙ f(x) with a fixed random r, so one backward gives every input's gradient;
//   every tensor allocated during the analytic pass is NaN-filled (PoisonGuard), so an
//   element a kernel forgets to write shows up; a second forward+backward without zeroing
//   must give exactly twice the gradient (accumulation); numeric dL/dx_i uses
//   (L(x + h e_i) - L(x - h e_i)) / 2h. Pass: |num - ana| <= atol + rtol·|num| everywhere.
// A parameter that receives no gradient (one the function does not use, as a Linear layer's
// bias that only shifts scores a softmax then removes) counts as gradient zero, so it passes
// only when its numerical gradient is zero too; an input that receives none fails.
// Tests and model authors call it on ops, blocks and whole models (keep them small).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace ncl {

struct GradcheckOptions {
  double step = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 0;
  // Which inputs to differentiate (empty: all). Others are passed without requires_grad and
  // must then receive no gradient.
  std::vector<bool> wrt;
  // Extra leaves (e.g. a module's parameters, already F64) whose gradients are checked too.
  std::vector<Variable> params;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;       // first failure, or a summary line
  double max_abs_error = 0;  // over every checked element
  int64_t checked = 0;       // number of elements compared
};

using GradcheckFn = std::function<Variable(const std::vector<Variable>&)>;

// inputs must be F64 CPU tensors. The function must be deterministic.
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace ncl

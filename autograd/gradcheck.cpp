#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/functions.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace ncl {
namespace {

// One analytic pass: L = Σ r ⊙ f(x), backward; returns the gradient of every leaf.
std::vector<Tensor> analytic_pass(const GradcheckFn& fn, const std::vector<Variable>& inputs,
                                  const std::vector<Variable>& params, Tensor& r, uint64_t seed) {
  PoisonGuard poison;
  Variable y = fn(inputs);
  NCL_CHECK(y.dtype() == DType::F64, "gradcheck: the function returned ", y.dtype(),
            "; gradcheck runs in F64");
  if (!r.defined()) {
    Rng rng(seed);
    r = rng.normal_tensor(y.shape(), 0.0, 1.0, DType::F64);
  }
  Variable loss = sum_all(y * Variable(r));
  loss.backward();
  std::vector<Tensor> grads;
  for (const Variable& v : inputs) grads.push_back(v.grad());
  for (const Variable& p : params) grads.push_back(p.grad());
  return grads;
}

double loss_at(const GradcheckFn& fn, const std::vector<Variable>& inputs, const Tensor& r) {
  NoGradGuard no_grad;
  Variable y = fn(inputs);
  return ops::sum_all(ops::mul(y.value(), r)).item();
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  GradcheckResult result;
  std::vector<bool> wrt = options.wrt.empty() ? std::vector<bool>(inputs.size(), true) : options.wrt;
  NCL_CHECK(wrt.size() == inputs.size(), "gradcheck: wrt has ", wrt.size(), " entries for ",
            inputs.size(), " inputs");
  std::vector<Variable> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    NCL_CHECK(inputs[i].dtype() == DType::F64 && inputs[i].device() == Device::CPU,
              "gradcheck: input ", i, " is ", inputs[i].dtype(), " on ", inputs[i].device(),
              "; HINT: gradcheck needs F64 CPU tensors");
    leaves.emplace_back(inputs[i].clone(), bool(wrt[i]));
  }
  for (const Variable& p : options.params) {
    NCL_CHECK(p.dtype() == DType::F64 && p.is_leaf() && p.requires_grad(),
              "gradcheck: params must be F64 leaves that require gradients");
    const_cast<Variable&>(p).zero_grad();
  }

  // Analytic gradients, twice: the second pass must exactly double them (accumulation).
  Tensor r;
  std::vector<Tensor> first = analytic_pass(fn, leaves, options.params, r, options.seed);
  for (size_t i = 0; i < first.size(); ++i) if (first[i].defined()) first[i] = first[i].clone();
  std::vector<Tensor> second = analytic_pass(fn, leaves, options.params, r, options.seed);

  std::vector<Variable> all = leaves;
  all.insert(all.end(), options.params.begin(), options.params.end());
  auto fail = [&](const std::string& message) {
    if (result.ok) result.message = message;
    result.ok = false;
  };
  for (size_t i = 0; i < all.size(); ++i) {
    bool differentiated = i >= leaves.size() || wrt[i];
    std::string name = i < leaves.size() ? detail::str("input ", i)
                                         : detail::str("param ", i - leaves.size());
    if (!differentiated) {
      if (first[i].defined()) fail(name + " does not require a gradient but received one");
      continue;
    }
    if (!first[i].defined()) {
      if (i < leaves.size()) {
        fail(name + " received no gradient");
        continue;
      }
      // A parameter the function does not depend on (the finite differences must agree).
      first[i] = second[i] = Tensor::zeros(all[i].shape(), DType::F64);
    }
    std::vector<double> g1 = first[i].to_vector(), g2 = second[i].to_vector();
    for (size_t j = 0; j < g1.size(); ++j)
      if (!std::isfinite(g1[j]) || std::abs(g2[j] - 2 * g1[j]) > 1e-12 * (1 + std::abs(g1[j]))) {
        fail(detail::str(name, " element ", j, ": gradient ", g1[j], " after one backward, ",
                         g2[j], " after two (expected double; NaN means an unwritten element)"));
        break;
      }

    // Central differences, one element at a time, perturbing the leaf's data in place.
    Tensor value = all[i].value();
    double* x = value.data<double>();
    for (int64_t j = 0; j < value.numel(); ++j) {
      double saved = x[j];
      x[j] = saved + options.step;
      double plus = loss_at(fn, leaves, r);
      x[j] = saved - options.step;
      double minus = loss_at(fn, leaves, r);
      x[j] = saved;
      double numeric = (plus - minus) / (2 * options.step);
      double error = std::abs(numeric - g1[size_t(j)]);
      result.max_abs_error = std::max(result.max_abs_error, error);
      result.checked++;
      if (!(error <= options.atol + options.rtol * std::abs(numeric)))
        fail(detail::str(name, " ", value.shape(), " element ", j, ": analytic ", g1[size_t(j)],
                         " numeric ", numeric, " (|diff| ", error, ", seed ", options.seed, ")"));
    }
  }
  for (const Variable& p : options.params) const_cast<Variable&>(p).zero_grad();
  if (result.ok)
    result.message = detail::str("gradcheck ok: ", result.checked, " elements, max |diff| ",
                                 result.max_abs_error);
  return result;
}

}  // namespace ncl

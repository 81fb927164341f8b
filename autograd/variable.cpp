#include "autograd/variable.h"

namespace ncl {
namespace {
thread_local bool grad_mode = true;
}  // namespace

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }
bool grad_enabled() { return grad_mode; }

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<Impl>()) {
  NCL_CHECK(value.defined(), "Variable: value is undefined");
  NCL_CHECK(!requires_grad || is_floating(value.dtype()),
            "Variable: only floating-point leaves can require gradients, got ", value.dtype());
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

// A Node owns its inputs' Impls, which own their Nodes: left to the default destructor, a graph
// that never ran backward (backward releases it as it goes) is freed by one nested call per op,
// and a long chain overflows the stack. Instead, each Node this Impl is the last owner of gives
// up its edges one by one; an input Impl about to die first hands its Node to `pending`, so
// every destructor called inside this loop is shallow.
Variable::Impl::~Impl() {
  std::vector<std::shared_ptr<Node>> pending;
  if (node) pending.push_back(std::move(node));
  while (!pending.empty()) {
    std::shared_ptr<Node> current = std::move(pending.back());
    pending.pop_back();
    if (current.use_count() != 1) continue;  // someone else still holds it
    for (Variable& input : current->inputs) {
      if (input.impl_ && input.impl_.use_count() == 1 && input.impl_->node)
        pending.push_back(std::move(input.impl_->node));
      input.impl_.reset();  // one reference less (an input used twice dies on its second edge)
    }
  }
}

const Tensor& Variable::value() const {
  NCL_CHECK(defined(), "Variable: undefined");
  return impl_->value;
}

void Variable::set_value(Tensor value) {
  NCL_CHECK(defined() && is_leaf(), "Variable::set_value: only leaves can be overwritten");
  impl_->value = std::move(value);
}

const Tensor& Variable::grad() const {
  NCL_CHECK(defined(), "Variable: undefined");
  return impl_->grad;
}

void Variable::set_grad(Tensor grad) {
  NCL_CHECK(defined(), "Variable: undefined");
  NCL_CHECK(!grad.defined() || grad.shape() == shape(), "Variable::set_grad: gradient ",
            grad.shape(), " for a value of shape ", shape());
  impl_->grad = std::move(grad);
}

void Variable::zero_grad() {
  if (defined()) impl_->grad = Tensor();
}

bool Variable::requires_grad() const {
  return defined() && (impl_->requires_grad || impl_->node != nullptr);
}

bool Variable::is_leaf() const { return defined() && impl_->node == nullptr; }

Node* Variable::node() const { return defined() ? impl_->node.get() : nullptr; }

void Variable::backward(const Tensor& seed) const { run_backward(*this, seed); }

Variable make_result(const char* name, Tensor value, std::vector<Variable> inputs,
                     BackwardFn backward) {
  Variable out(std::move(value));
  if (!grad_mode) return out;
  std::vector<bool> needs(inputs.size());
  bool any = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    needs[i] = inputs[i].requires_grad();
    any = any || needs[i];
  }
  if (!any) return out;
  NCL_CHECK(backward != nullptr, name, ": no backward function given");
  out.impl_->node = std::make_shared<Node>(
      Node{name, std::move(inputs), std::move(needs), std::move(backward)});
  return out;
}

Variable detach(const Variable& x) { return Variable(x.value()); }

}  // namespace ncl

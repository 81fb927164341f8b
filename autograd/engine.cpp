// The backward engine: topological order by an explicit-stack DFS, one backward call per node
// in reverse order, shape-checked accumulation, and release of the graph as it goes. Leaf
// gradients go to the leaves, or to the thread's GradientSink while one collects them.
#include <unordered_set>

#include "autograd/variable.h"
#include "tensor/ops.h"

namespace ncl {
namespace {
thread_local GradientSink* current_sink = nullptr;  // this thread's, if any

// a + b, written into whichever of the two no other tensor shares (a new tensor when both
// are shared): accumulating in place saves a pass that writes fresh memory.
Tensor sum_of(Tensor a, Tensor b) {
  if (a.unshared()) return ops::add_(a, b), a;
  if (b.unshared()) return ops::add_(b, a), b;
  return ops::add(a, b);
}
}  // namespace

CollectGradients::CollectGradients(GradientSink& sink) : previous_(current_sink) {
  current_sink = &sink;
}
CollectGradients::~CollectGradients() { current_sink = previous_; }

void GradientSink::add(Impl* leaf, Tensor g) {
  auto [it, is_new] = index_.try_emplace(leaf, grads_.size());
  if (is_new) grads_.emplace_back(leaf, g.unshared() ? std::move(g) : g.clone());
  else grads_[it->second].second = sum_of(std::move(grads_[it->second].second), std::move(g));
}

void GradientSink::add_to_leaf(Impl* leaf, Tensor g) {
  leaf->grad = leaf->grad.defined() ? sum_of(std::move(leaf->grad), std::move(g)) : std::move(g);
}

void GradientSink::merge() {
  for (auto& [leaf, g] : grads_) add_to_leaf(leaf, std::move(g));
  grads_.clear();
  index_.clear();
}

void GradientSink::merge_all(std::vector<GradientSink>& sinks) {
  std::vector<Impl*> leaves;  // first-reached order over the sinks in turn
  std::vector<int64_t> sizes;
  std::unordered_set<Impl*> seen;
  bool cpu = true;
  for (GradientSink& sink : sinks)
    for (auto& [leaf, g] : sink.grads_)
      if (seen.insert(leaf).second) {
        leaves.push_back(leaf);
        sizes.push_back(leaf->value.numel());
        cpu = cpu && g.device() == Device::CPU;
      }
  auto merge_leaf = [&](size_t i) {
    Impl* leaf = leaves[i];
    for (GradientSink& sink : sinks) {
      auto it = sink.index_.find(leaf);
      if (it == sink.index_.end()) continue;
      add_to_leaf(leaf, std::move(sink.grads_[it->second].second));
    }
  };
  // Leaves of 32k elements and more are added one by one, split over the threads by the add.
  if (cpu) ops::run_cpu_shares(sizes, 32768, merge_leaf);
  else
    for (size_t i = 0; i < leaves.size(); ++i) merge_leaf(i);
  for (GradientSink& sink : sinks) {
    sink.grads_.clear();
    sink.index_.clear();
  }
}

void run_backward(const Variable& root, const Tensor& seed) {
  using Impl = decltype(root.impl_)::element_type;
  NCL_CHECK(root.requires_grad(), "backward: the output does not require a gradient; HINT: was "
            "it computed under NoGradGuard, or from inputs without requires_grad?");
  Tensor dout = seed;
  if (!dout.defined()) {
    NCL_CHECK(root.numel() == 1, "backward: output has shape ", root.shape(),
              "; pass a seed gradient for a non-scalar output");
    dout = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  }
  NCL_CHECK(dout.shape() == root.shape() && dout.dtype() == root.dtype(), "backward: seed ",
            dout.shape(), " ", dout.dtype(), " for an output ", root.shape(), " ", root.dtype());

  // Adds g to impl's gradient. Leaves get their own copy unless no other tensor shares g (so
  // an optimizer may scale it in place), or this thread's GradientSink takes it; intermediate
  // gradients may alias the tensors backward returned.
  auto accumulate = [](Impl* impl, Tensor g, const char* from) {
    NCL_CHECK(g.shape() == impl->value.shape() && g.dtype() == impl->value.dtype(), "backward of ",
              from, ": gradient ", g.shape(), " ", g.dtype(), " for an input of shape ",
              impl->value.shape(), " ", impl->value.dtype());
    bool leaf = impl->node == nullptr;
    if (leaf && current_sink) return current_sink->add(impl, std::move(g));
    if (!impl->grad.defined()) impl->grad = leaf && !g.unshared() ? g.clone() : std::move(g);
    else impl->grad = sum_of(std::move(impl->grad), std::move(g));
  };

  if (root.is_leaf()) {
    accumulate(root.impl_.get(), dout, "backward seed");
    return;
  }

  // Post-order DFS: every node appears after the nodes of its inputs. `order` holds owning
  // pointers so clearing a node's inputs below never frees a vertex we still need.
  std::vector<std::shared_ptr<Impl>> order;
  std::unordered_set<Impl*> visited{root.impl_.get()};
  std::vector<std::pair<std::shared_ptr<Impl>, size_t>> stack{{root.impl_, 0}};
  while (!stack.empty()) {
    auto& [impl, next] = stack.back();
    const Node& node = *impl->node;
    if (next < node.inputs.size()) {
      const auto& child = node.inputs[next++].impl_;
      if (child && child->node && visited.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(impl);
      stack.pop_back();
    }
  }

  root.impl_->grad = dout;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Impl* impl = it->get();
    Node& node = *impl->node;
    NCL_CHECK(node.backward != nullptr, "backward: the graph through '", node.name,
              "' was already released by an earlier backward; HINT: run the forward again");
    Tensor g = std::move(impl->grad);  // intermediate gradients are not kept
    impl->grad = Tensor();
    if (g.defined()) {
      std::vector<Tensor> grads = node.backward(g, node.needs_grad);
      NCL_CHECK(grads.size() == node.inputs.size(), "backward of ", node.name, ": returned ",
                grads.size(), " gradients for ", node.inputs.size(), " inputs");
      for (size_t i = 0; i < grads.size(); ++i) {
        if (!node.needs_grad[i]) continue;
        NCL_CHECK(grads[i].defined(), "backward of ", node.name, ": no gradient for input ", i);
        accumulate(node.inputs[i].impl_.get(), std::move(grads[i]), node.name);
      }
    }
    // Release: the closure's saved tensors and the edges. Inputs stay alive through `order`,
    // so this never recurses; `order` then frees the vertices one by one.
    node.backward = nullptr;
    node.inputs.clear();
  }
}

}  // namespace ncl

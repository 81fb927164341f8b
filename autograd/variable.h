// Variable and Node: the reverse-mode autodiff graph.
//
// A Variable wraps a Tensor value, its gradient and, when it is the result of an op that needs
// gradients, the Node that made it. A Node keeps the op's name, its inputs in order (never a
// set: accumulation order must not vary between runs), which inputs need a gradient, and the
// backward closure. The engine (engine.cpp), not each op, checks and accumulates gradients.
//
// Closure rules (every function in autograd/functions_*.cpp follows them):
//   - capture saved Tensors by value and by name ([x, y]); never [&] or [=];
//   - never capture the output Variable (a shared_ptr cycle that leaks); capture its Tensor;
//   - capture only what backward reads, so the rest is freed after the forward.
// Second-order gradients are a non-goal.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"

namespace ncl {

class Variable;

// Backward closure: given dL/d(output) and which inputs need a gradient, returns one Tensor per
// input (an undefined Tensor where none is needed).
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& dout, const std::vector<bool>& needs_grad)>;

struct Node {
  const char* name;            // the op, for error messages and graph dumps
  std::vector<Variable> inputs;
  std::vector<bool> needs_grad;
  BackwardFn backward;         // null once the graph has been released by a backward pass
};

class Variable {
 public:
  Variable() = default;
  // A leaf. Parameters are leaves with requires_grad = true; their grad persists until zeroed.
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const;
  void set_value(Tensor value);  // replace the data of a leaf (optimizers, checkpoint loading)
  const Tensor& grad() const;    // undefined until a backward pass reaches this leaf
  void set_grad(Tensor grad);
  void zero_grad();              // drops the gradient (the next backward assigns a fresh one)

  // True for a leaf that asked for gradients and for the result of an op that needs them.
  bool requires_grad() const;
  bool is_leaf() const;
  Node* node() const;

  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  int rank() const { return value().rank(); }
  int64_t dim(int axis) const { return value().dim(axis); }
  int64_t numel() const { return value().numel(); }

  // Reverse-mode pass from this Variable. seed = dL/d(this); undefined means 1 and requires a
  // one-element output. Gradients add to the leaves' grad; the graph is released afterwards.
  void backward(const Tensor& seed = {}) const;

  bool is(const Variable& other) const { return impl_ == other.impl_; }  // same graph vertex

 private:
  struct Impl {
    Tensor value;
    Tensor grad;
    bool requires_grad = false;
    std::shared_ptr<Node> node;
    ~Impl();  // frees a chain of Nodes iteratively (variable.cpp)
  };
  std::shared_ptr<Impl> impl_;

  friend Variable make_result(const char*, Tensor, std::vector<Variable>, BackwardFn);
  friend void run_backward(const Variable&, const Tensor&);
  friend class GradientSink;
};

// Wraps an op's output. Builds a Node only when grad mode is on and some input requires a
// gradient; otherwise returns a plain leaf (no graph during inference).
Variable make_result(const char* name, Tensor value, std::vector<Variable> inputs,
                     BackwardFn backward);

// The engine (engine.cpp); Variable::backward calls it.
void run_backward(const Variable& root, const Tensor& seed);

// While alive, ops build no graph on this thread (inference, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};
bool grad_enabled();

// Gradients held back from the leaves: while a CollectGradients guard names it on a thread, the
// backward passes run there add their leaves' gradients to the sink instead of to the leaves;
// merge() then adds them to the leaves (in the order the leaves were first reached) and empties
// the sink. Threads with sinks of their own can backpropagate at the same time through graphs
// that share parameters (models/model.cpp runs micro-batches on the CPU threads so). The
// leaves must outlive merge().
class GradientSink {
 public:
  GradientSink() = default;
  GradientSink(const GradientSink&) = delete;
  GradientSink& operator=(const GradientSink&) = delete;
  void merge();
  // merge() of every sink in turn, with the leaves shared out over the CPU threads by size
  // (each leaf's gradients are added in sink order, as the merges one after another add them).
  static void merge_all(std::vector<GradientSink>& sinks);

 private:
  using Impl = Variable::Impl;
  void add(Impl* leaf, Tensor g);  // keeps g itself when no other tensor shares it
  static void add_to_leaf(Impl* leaf, Tensor g);  // a merged gradient to the leaf's own
  std::vector<std::pair<Impl*, Tensor>> grads_;  // in first-reached order
  std::unordered_map<Impl*, size_t> index_;
  friend void run_backward(const Variable&, const Tensor&);
};

// While alive, this thread's backward passes add leaf gradients to `sink` (see GradientSink).
class CollectGradients {
 public:
  explicit CollectGradients(GradientSink& sink);
  ~CollectGradients();
  CollectGradients(const CollectGradients&) = delete;
  CollectGradients& operator=(const CollectGradients&) = delete;

 private:
  GradientSink* previous_;
};

// The same value as a new leaf with no history: gradients stop here.
Variable detach(const Variable& x);

}  // namespace ncl

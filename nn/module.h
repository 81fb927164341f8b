// Module: a named tree of parameters, the base of every layer and model.
//
// A module registers its parameters and child modules by name in its constructor; names join
// with dots ("isab0.mab1.fc_q.weight"), which is also how checkpoints store them, so a name
// here, in a checkpoint and in a PyTorch state_dict line up. Modules are neither copyable nor
// movable (children are registered by address).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "tensor/random.h"

namespace ncl::nn {

using NamedParameter = std::pair<std::string, Variable>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, depth first in registration order.
  std::vector<NamedParameter> named_parameters() const;
  std::vector<Variable> parameters() const;
  int64_t parameter_count() const;
  void zero_grad();
  // Converts every parameter (F32 for training, F64 for gradient checks) or moves it.
  void to(DType dtype);
  void to(Device device);

 protected:
  // Registers a leaf that requires gradients and returns it (store it in a member).
  Variable register_parameter(const std::string& name, Tensor value);
  void register_module(const std::string& name, Module& child);

 private:
  std::vector<NamedParameter> parameters_;
  std::vector<std::pair<std::string, Module*>> children_;
};

// PyTorch's default initialisations, drawn from the caller's Rng.
// U(-1/√fan_in, 1/√fan_in): nn.Linear weights and biases.
Tensor init_fan_in_uniform(Rng& rng, const Shape& shape, int64_t fan_in);
// Xavier-uniform with PyTorch's fans: fan_in = dim1·Π dims[2:], fan_out = dim0·Π dims[2:].
Tensor init_xavier_uniform(Rng& rng, const Shape& shape);

}  // namespace ncl::nn

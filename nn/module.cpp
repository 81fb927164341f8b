#include "nn/module.h"

#include <cmath>

namespace ncl::nn {

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> out = parameters_;
  for (const auto& [name, child] : children_)
    for (auto& [child_name, param] : child->named_parameters())
      out.emplace_back(name + "." + child_name, param);
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, param] : named_parameters()) out.push_back(param);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Variable& p : parameters()) n += p.numel();
  return n;
}

void Module::zero_grad() {
  for (Variable& p : parameters()) p.zero_grad();
}

void Module::to(DType dtype) {
  for (Variable& p : parameters()) {
    p.set_value(p.value().to(dtype));
    p.zero_grad();
  }
}

void Module::to(Device device) {
  for (Variable& p : parameters()) {
    p.set_value(p.value().to(device));
    p.zero_grad();
  }
}

Variable Module::register_parameter(const std::string& name, Tensor value) {
  for (const auto& [existing, param] : parameters_)
    NCL_CHECK(existing != name, "Module: parameter '", name, "' registered twice");
  Variable v(std::move(value), /*requires_grad=*/true);
  parameters_.emplace_back(name, v);
  return v;
}

void Module::register_module(const std::string& name, Module& child) {
  for (const auto& [existing, module] : children_)
    NCL_CHECK(existing != name, "Module: child '", name, "' registered twice");
  children_.emplace_back(name, &child);
}

Tensor init_fan_in_uniform(Rng& rng, const Shape& shape, int64_t fan_in) {
  double bound = 1.0 / std::sqrt(double(fan_in));
  return rng.uniform_tensor(shape, -bound, bound);
}

Tensor init_xavier_uniform(Rng& rng, const Shape& shape) {
  NCL_CHECK(shape.rank() >= 2, "init_xavier_uniform: needs rank >= 2, got ", shape);
  int64_t receptive = 1;
  for (int i = 2; i < shape.rank(); ++i) receptive *= shape[i];
  int64_t fan_in = shape[1] * receptive, fan_out = shape[0] * receptive;
  double bound = std::sqrt(6.0 / double(fan_in + fan_out));
  return rng.uniform_tensor(shape, -bound, bound);
}

}  // namespace ncl::nn

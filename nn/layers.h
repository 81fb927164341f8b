// Linear, MLP and LayerNorm: the dense layers every model stacks.
#pragma once

#include <vector>

#include "nn/module.h"

namespace ncl::nn {

// y = x Wᵀ + b for x (..., in) -> (..., out). W is stored (out, in), as PyTorch stores it.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Rng& rng, bool bias = true);
  Variable forward(const Variable& x) const;

  Variable weight;  // (out, in)
  Variable bias;    // (out), undefined when constructed without a bias
};

enum class Activation { ReLU, PReLU, ELU };

// Linear layers of the given widths {in, h1, ..., out} with the activation between them (none
// after the last). PReLU has one learned slope per activation (init 0.25, as PyTorch).
class MLP : public Module {
 public:
  MLP(const std::vector<int64_t>& widths, Activation activation, Rng& rng,
      bool final_bias = true);
  Variable forward(const Variable& x) const;
  // For models that compute a layer's product in parts or fold two layers into one product
  // (NCP, models/ncp.h): layer(i), the rest of the MLP from the first layer's output
  // y1 = layer(0).forward(x), and the MLP up to its last layer.
  const Linear& layer(size_t i) const { return *layers_.at(i); }
  size_t depth() const { return layers_.size(); }  // Linear layers
  Variable forward_after_first(const Variable& y1) const;
  // The activations that enter the last layer (forward(x) = layer(depth() - 1) of them).
  Variable forward_hidden(const Variable& x) const;

 private:
  Variable activate(const Variable& y, size_t i) const;  // the activation after layer i

  Activation activation_;
  std::vector<std::unique_ptr<Linear>> layers_;
  std::vector<Variable> slopes_;  // PReLU only: one (1) parameter per hidden activation
};

// Layer norm over the last axis with learned weight (init 1) and bias (init 0), eps 1e-5.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5);
  Variable forward(const Variable& x) const;

  Variable weight, bias;  // (dim)

 private:
  double eps_;
};

}  // namespace ncl::nn

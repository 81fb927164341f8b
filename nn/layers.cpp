#include "nn/layers.h"

#include "autograd/functions.h"

namespace ncl::nn {

Linear::Linear(int64_t in, int64_t out, Rng& rng, bool with_bias) {
  weight = register_parameter("weight", init_fan_in_uniform(rng, {out, in}, in));
  if (with_bias) bias = register_parameter("bias", init_fan_in_uniform(rng, {out}, in));
}

Variable Linear::forward(const Variable& x) const {
  NCL_CHECK(x.rank() >= 1 && x.dim(-1) == weight.dim(1), "Linear: input ", x.shape(),
            " does not end in ", weight.dim(1), " features");
  // (..., in) as rows of one GEMM against the shared (out, in) weight, transposed in place.
  Variable x2 = x.rank() == 2 ? x : reshape(x, {x.numel() / x.dim(-1), x.dim(-1)});
  Variable y = linear(x2, weight, bias);  // (rows, out)
  return x.rank() == 2 ? y : reshape(y, x.shape().with(-1, weight.dim(0)));
}

MLP::MLP(const std::vector<int64_t>& widths, Activation activation, Rng& rng, bool final_bias)
    : activation_(activation) {
  NCL_CHECK(widths.size() >= 2, "MLP: needs at least input and output widths");
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    bool last = i + 2 == widths.size();
    layers_.push_back(std::make_unique<Linear>(widths[i], widths[i + 1], rng, !last || final_bias));
    register_module("layers." + std::to_string(i), *layers_.back());
    if (activation == Activation::PReLU && !last)
      slopes_.push_back(register_parameter("prelu." + std::to_string(i),
                                           Tensor::full({1}, 0.25)));
  }
}

Variable MLP::forward(const Variable& x) const { return forward_after_first(layers_[0]->forward(x)); }

Variable MLP::forward_hidden(const Variable& x) const {
  NCL_CHECK(layers_.size() >= 2, "MLP::forward_hidden: the MLP has no hidden layer");
  Variable h = x;
  for (size_t i = 0; i + 1 < layers_.size(); ++i) h = activate(layers_[i]->forward(h), i);
  return h;
}

Variable MLP::activate(const Variable& y, size_t i) const {
  switch (activation_) {
    case Activation::ReLU: return relu(y);
    case Activation::PReLU: return prelu(y, slopes_[i]);
    case Activation::ELU: return elu(y);
  }
  return y;
}

Variable MLP::forward_after_first(const Variable& y1) const {
  Variable h = y1;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (i > 0) h = layers_[i]->forward(h);
    if (i + 1 < layers_.size()) h = activate(h, i);
  }
  return h;
}

LayerNorm::LayerNorm(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", Tensor::full({dim}, 1.0));
  bias = register_parameter("bias", Tensor::zeros({dim}));
}

Variable LayerNorm::forward(const Variable& x) const { return layer_norm(x, weight, bias, eps_); }

}  // namespace ncl::nn

#include "nn/flows.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/functions.h"

namespace ncl::nn {

namespace {

// mask[o][i] = 1 where output unit o may see input unit i: degree_out[o] >= degree_in[i]
// (hidden layers) or > (the output layer, `strict`). (out, in) as the weight it masks.
Tensor degree_mask(const std::vector<int64_t>& degree_in, const std::vector<int64_t>& degree_out,
                   bool strict) {
  std::vector<double> values;
  values.reserve(degree_out.size() * degree_in.size());
  for (int64_t out : degree_out)
    for (int64_t in : degree_in) values.push_back((strict ? out > in : out >= in) ? 1.0 : 0.0);
  return Tensor::from_vector(values, {int64_t(degree_out.size()), int64_t(degree_in.size())});
}

// x (R, D) with its columns in reverse order.
Variable reverse_coordinates(const Variable& x) {
  std::vector<Variable> columns;
  for (int64_t d = x.dim(1) - 1; d >= 0; --d) columns.push_back(slice(x, 1, d, d + 1));
  return columns.size() == 1 ? columns[0] : concat(columns, 1);
}

}  // namespace

MaskedLinear::MaskedLinear(int64_t in, int64_t out, Tensor mask, Rng& rng)
    : mask_(std::move(mask)) {
  NCL_CHECK(mask_.shape() == Shape({out, in}), "MaskedLinear: mask ", mask_.shape(),
            " does not match the weight (", out, ", ", in, ")");
  weight = register_parameter("weight", init_fan_in_uniform(rng, {out, in}, in));
  bias = register_parameter("bias", init_fan_in_uniform(rng, {out}, in));
}

Variable MaskedLinear::forward(const Variable& x) const {
  NCL_CHECK(x.rank() == 2 && x.dim(1) == weight.dim(1), "MaskedLinear: input ", x.shape(),
            " is not (rows, ", weight.dim(1), ")");
  // The product W ⊙ M is part of the graph, so dW = M ⊙ (dy)ᵀx: masked weights get zero.
  Variable mask(mask_.to(weight.dtype()).to(weight.device()));
  return linear(x, weight * mask, bias);  // (R, out)
}

MADE::MADE(int64_t dim, int64_t hidden, int64_t context_dim, Rng& rng) : dim_(dim) {
  NCL_CHECK(dim >= 1 && hidden >= 1 && context_dim >= 1, "MADE: dim ", dim, ", hidden ", hidden,
            " and context_dim ", context_dim, " must all be positive");
  std::vector<int64_t> degree_x(dim), degree_h(hidden), degree_out(2 * dim);
  for (int64_t d = 0; d < dim; ++d) degree_x[d] = d + 1;
  // Degrees 1..D−1 in turn (all 1 when D <= 2): a unit of degree k sees x_0..x_{k−1}.
  for (int64_t k = 0; k < hidden; ++k) degree_h[k] = 1 + k % std::max<int64_t>(dim - 1, 1);
  for (int64_t o = 0; o < 2 * dim; ++o) degree_out[o] = o % dim + 1;  // [shift | raw scale]

  input_ = std::make_unique<MaskedLinear>(dim, hidden, degree_mask(degree_x, degree_h, false), rng);
  context_ = std::make_unique<Linear>(context_dim, hidden, rng, /*bias=*/false);
  hidden_ =
      std::make_unique<MaskedLinear>(hidden, hidden, degree_mask(degree_h, degree_h, false), rng);
  output_ =
      std::make_unique<MaskedLinear>(hidden, 2 * dim, degree_mask(degree_h, degree_out, true), rng);
  register_module("input", *input_);
  register_module("context", *context_);
  register_module("hidden", *hidden_);
  register_module("output", *output_);
}

ShiftScale MADE::forward(const Variable& x, const Variable& context) const {
  NCL_CHECK(x.rank() == 2 && x.dim(1) == dim_, "MADE: input ", x.shape(), " is not (rows, ", dim_,
            ")");
  const int64_t R = x.dim(0), G = context.rank() == 2 ? context.dim(0) : 0;
  NCL_CHECK(G > 0 && R % G == 0, "MADE: context ", context.shape(),
            " must be (groups, features) with the ", R, " input rows a multiple of the groups");
  Variable h = input_->forward(x);               // (R, H)
  Variable from_context = context_->forward(context);  // (G, H), once per group
  const int64_t H = h.dim(1);
  h = G == R ? h + from_context
             : reshape(reshape(h, {G, R / G, H}) + reshape(from_context, {G, 1, H}), {R, H});
  h = elu(h);                                                         // (R, H)
  h = elu(hidden_->forward(h));                                       // (R, H)
  Variable out = output_->forward(h);                                 // (R, 2D)
  return {slice(out, 1, 0, dim_), add_scalar(softplus(slice(out, 1, dim_, 2 * dim_)), 1e-5)};
}

MAF::MAF(int64_t dim, int64_t context_dim, Rng& rng, int64_t blocks, int64_t hidden) : dim_(dim) {
  NCL_CHECK(blocks >= 1, "MAF: needs at least one block, got ", blocks);
  for (int64_t b = 0; b < blocks; ++b) {
    blocks_.push_back(std::make_unique<MADE>(dim, hidden, context_dim, rng));
    register_module("blocks." + std::to_string(b), *blocks_.back());
  }
}

// Each block: z = (h − shift) / scale, log|det| = −Σ_d log scale_d; then reverse the order so
// the next block conditions the other way round. log N(z; 0, I) = −½ |z|² − (D/2) log 2π.
Variable MAF::log_prob(const Variable& x, const Variable& context) const {
  Variable z = x;    // (R, D)
  Variable log_det;  // (R)
  for (size_t b = 0; b < blocks_.size(); ++b) {
    if (b > 0) z = reverse_coordinates(z);
    ShiftScale affine = blocks_[b]->forward(z, context);
    z = (z - affine.shift) / affine.scale;
    Variable block_log_det = -sum(log(affine.scale), -1);
    log_det = b == 0 ? block_log_det : log_det + block_log_det;
  }
  double log_normaliser = -0.5 * double(dim_) * std::log(2.0 * std::numbers::pi);
  return add_scalar(scale(sum(square(z), -1), -0.5), log_normaliser) + log_det;  // (R)
}

}  // namespace ncl::nn

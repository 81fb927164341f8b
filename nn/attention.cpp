#include "nn/attention.h"

#include <algorithm>
#include <cmath>

#include "autograd/functions.h"

namespace ncl::nn {
namespace {
bool fold_queries = true;
}  // namespace

void set_fold_shared_queries(bool on) { fold_queries = on; }
bool fold_shared_queries() { return fold_queries; }

MAB::MAB(int64_t dim_q, int64_t dim_k, int64_t dim, int64_t heads, bool ln, Rng& rng)
    : dim_(dim),
      heads_(heads),
      fc_q_(dim_q, dim, rng),
      fc_k_(dim_k, dim, rng),
      fc_v_(dim_k, dim, rng),
      fc_o_(dim, dim, rng) {
  NCL_CHECK(heads > 0 && dim % heads == 0, "MAB: width ", dim, " is not divisible by ", heads,
            " heads");
  register_module("fc_q", fc_q_);
  register_module("fc_k", fc_k_);
  register_module("fc_v", fc_v_);
  register_module("fc_o", fc_o_);
  if (ln) {
    ln0_ = std::make_unique<LayerNorm>(dim);
    ln1_ = std::make_unique<LayerNorm>(dim);
    register_module("ln0", *ln0_);
    register_module("ln1", *ln1_);
  }
}

Variable MAB::forward(const Variable& X, const Variable& Y, const Tensor& key_mask) const {
  NCL_CHECK(X.rank() == 3 && Y.rank() == 3 && (X.dim(0) == Y.dim(0) || X.dim(0) == 1), "MAB: X ",
            X.shape(), " and Y ", Y.shape(), " must be (B, N, D) with the same B, or X (1, N, D)");
  NCL_CHECK(!key_mask.defined() || key_mask.shape() == Shape({Y.dim(0), Y.dim(1)}),
            "MAB: key mask ", key_mask.shape(), " must be (B, Nk) = (", Y.dim(0), ", ", Y.dim(1),
            ")");
  // Head h is feature block h of Q, K, V; the products address it in place (no split copies).
  // Learned queries (ISAB's inducing points, PMA's seeds) come as one (1, Nq, D) set: project
  // them once; on the CPU fold the key and value projections into them (see the header), else
  // broadcast the projection over the batch.
  Variable Q = fc_q_.forward(X);  // (B or 1, Nq, D)
  // Scale by the full width D, as the reference code does (see the header).
  const double alpha = 1.0 / std::sqrt(double(dim_));
  Variable O;
  // Shared queries, no more of them over all heads than features (so the folded scores are no
  // wider than K): ISAB's inducing points and PMA's seeds, not a single set's own points.
  if (fold_queries && X.dim(0) == 1 && heads_ * X.dim(1) <= dim_ && Y.device() == Device::CPU) {
    O = attend_shared_queries(Q, Y, key_mask, alpha);
  } else {
    if (Q.dim(0) != Y.dim(0)) Q = broadcast_to(Q, {Y.dim(0), Q.dim(1), Q.dim(2)});
    Variable K = fc_k_.forward(Y);  // (B, Nk, D)
    Variable V = fc_v_.forward(Y);  // (B, Nk, D)
    Variable scores = attention_scores(Q, K, heads_, alpha);
    Variable A = softmax(scores, key_mask);     // (H·B, Nq, Nk); mask row (h·B+b) % B = b
    O = attention_output(A, V, Q, heads_);      // Q + concat_h(A_h V_h): (B, Nq, D)
  }
  if (ln0_) O = ln0_->forward(O);
  O = O + relu(fc_o_.forward(O));
  if (ln1_) O = ln1_->forward(O);
  return O;
}

Variable MAB::attend_shared_queries(const Variable& Q, const Variable& Y, const Tensor& key_mask,
                                    double alpha) const {
  const int64_t B = Y.dim(0), dk = Y.dim(2), Nq = Q.dim(1);
  const int64_t H = heads_, dh = dim_ / heads_;
  // The folded queries α Q_h Wk_h of every head, (H·Nq, dk): row h·Nq + i is query i of head h.
  Variable Qh = permute(reshape(Q, {Nq, H, dh}), {1, 0, 2});          // (H, Nq, dh)
  Variable Wk = reshape(fc_k_.weight, {H, dh, dk});                   // (H, dh, dk)
  Variable folded = reshape(matmul(Qh, Wk, false, false, alpha), {H * Nq, dk});
  // Scores with the keys down the rows, one product over all sets: (B, Nk, H·Nq).
  Variable A = softmax_columns(matmul(Y, folded, false, true), key_mask);
  Variable AY = matmul(A, Y, true, false);                           // (B, H·Nq, dk): A_h Y
  // (A_h Y) Wv_hᵀ with the heads as the batch: (H, B·Nq, dk) · (H, dh, dk)ᵀ -> (B, Nq, D).
  Variable AYh = reshape(permute(reshape(AY, {B, H, Nq, dk}), {1, 0, 2, 3}), {H, B * Nq, dk});
  Variable Oh = matmul(AYh, reshape(fc_v_.weight, {H, dh, dk}), false, true);
  Variable O = reshape(permute(reshape(Oh, {H, B, Nq, dh}), {1, 2, 0, 3}), {B, Nq, dim_});
  if (fc_v_.bias.defined() && Y.dim(1) > 0) {  // + (A_h 1) bv_h; no keys: A_h 1 = 0
    if (!key_mask.defined()) {
      O = O + fc_v_.bias;  // every query has keys: A_h 1 = 1
    } else {
      Variable mass = permute(reshape(sum(A, 1), {B, H, Nq}), {0, 2, 1});  // (B, Nq, H): 1 or 0
      const Shape heads_shape{B, Nq, H, dh};
      Variable bias = broadcast_to(reshape(fc_v_.bias, {H, dh}), heads_shape);
      O = O + reshape(broadcast_to(reshape(mass, {B, Nq, H, 1}), heads_shape) * bias,
                      {B, Nq, dim_});
    }
  }
  return broadcast_to(Q, {B, Nq, dim_}) + O;
}

SAB::SAB(int64_t dim_in, int64_t dim, int64_t heads, bool ln, Rng& rng)
    : mab_(dim_in, dim_in, dim, heads, ln, rng) {
  register_module("mab", mab_);
}

Variable SAB::forward(const Variable& X, const Tensor& key_mask) const {
  return mab_.forward(X, X, key_mask);
}

ISAB::ISAB(int64_t dim_in, int64_t dim, int64_t heads, int64_t inducing, bool ln, Rng& rng)
    : mab0_(dim, dim_in, dim, heads, ln, rng), mab1_(dim_in, dim, dim, heads, ln, rng) {
  register_module("mab0", mab0_);
  register_module("mab1", mab1_);
  I = register_parameter("I", init_xavier_uniform(rng, {1, inducing, dim}));
}

Variable ISAB::forward(const Variable& X, const Tensor& key_mask) const {
  Variable H = mab0_.forward(I, X, key_mask);  // (B, m, D): I (1, m, D) projected once
  return mab1_.forward(X, H);                  // (B, N, D)
}

PMA::PMA(int64_t dim, int64_t heads, int64_t seeds, bool ln, Rng& rng)
    : mab_(dim, dim, dim, heads, ln, rng) {
  register_module("mab", mab_);
  S = register_parameter("S", init_xavier_uniform(rng, {1, seeds, dim}));
}

Variable PMA::forward(const Variable& Z, const Tensor& key_mask) const {
  return mab_.forward(S, Z, key_mask);  // (B, k, D): S (1, k, D) projected once
}

StackedISAB::StackedISAB(int64_t dim_in, int64_t dim, int64_t heads, int64_t inducing,
                         int64_t blocks, bool tied, Rng& rng)
    : blocks_(blocks) {
  NCL_CHECK(blocks >= 1, "StackedISAB: blocks must be >= 1, got ", blocks);
  const int64_t distinct = tied ? std::min<int64_t>(blocks, 2) : blocks;
  for (int64_t i = 0; i < distinct; ++i) {
    isabs_.push_back(std::make_unique<ISAB>(i == 0 ? dim_in : dim, dim, heads, inducing,
                                            /*ln=*/false, rng));
    register_module("isab" + std::to_string(i), *isabs_.back());
    // DAC-py keeps inducing points as (m, dim) matrices: Xavier with that 2-D fan,
    // bound √(6 / (dim + m)) (0.19 for 32 × 128), not the (1, m, dim) fan of the ST code.
    isabs_.back()->I.set_value(init_xavier_uniform(rng, {inducing, dim}).reshape({1, inducing, dim}));
  }
}

Variable StackedISAB::forward(const Variable& X, const Tensor& key_mask) const {
  Variable H = X;
  for (int64_t i = 0; i < blocks_; ++i) {
    const ISAB& block = *isabs_[std::min<size_t>(size_t(i), isabs_.size() - 1)];
    H = block.forward(H, key_mask);
  }
  return H;
}

}  // namespace ncl::nn

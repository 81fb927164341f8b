// The Set Transformer's attention blocks: MAB, SAB, ISAB, PMA.
//
// We follow the reference code (juho-lee/set_transformer, modules.py), because the published
// numbers come from it, not the paper's equations. For X (B, Nq, dim_q), Y (B, Nk, dim_k):
//   Q = X Wqᵀ + bq,  K = Y Wkᵀ + bk,  V = Y Wvᵀ + bv            all (B, N, D)
//   heads are contiguous D/H blocks of the feature axis (addressed in place, not copied out),
//   scores are head-major (h·B + b), and per head A = softmax(Q_h K_hᵀ / √D) — the full width
//   D, not D/H;
//   O = Q + concat_h(A V_h)          residual on the *projected* query, no output projection
//   O = LN0(O) if ln;  O = O + relu(O Woᵀ + bo);  O = LN1(O) if ln.
// key_mask (I32 (B, Nk), 1 = key removed) removes keys only; a query whose keys are all
// removed gets zero attention (O = Q there), never NaN.
//
// Learned queries, the same for every set (ISAB's inducing points I, PMA's seeds S), are
// computed another way on the CPU, with the same result up to rounding (docs/derivations.md):
// the key and value projections fold into the queries. With Wk_h, Wv_h the rows of head h,
//   Q_h K_hᵀ = Q_h (Y Wk_hᵀ + bk_h)ᵀ = (Q_h Wk_h) Yᵀ + (Q_h bk_h) 1ᵀ
// and the last term is one constant per query, which the softmax over the keys removes; and
//   A_h V_h = A_h (Y Wv_hᵀ + 1 bv_hᵀ) = (A_h Y) Wv_hᵀ + (A_h 1) bv_hᵀ,  A_h 1 = 1 (0 for a query
// whose keys are all masked). K and V (B, Nk, D) are never formed: the scores are one product
// of Y with the H·Nq folded queries (keys down the rows, softmax down the columns), then
// A_h Y and a small product per head. PMA's 4 seeds then cost 16 columns instead of two
// 128-wide projections of every point, and ISAB's first attention loses its thin per-head
// products. bk gets no gradient this way (in the reference its gradient is 0 up to rounding).
// set_fold_shared_queries(false) turns the folding off (for comparisons: ncl_bench's
// "unfolded" rows time the reference computation in the same run).
#pragma once

#include <memory>
#include <vector>

#include "nn/layers.h"

namespace ncl::nn {

// Whether MABs on the CPU fold the projections into shared queries (above; default true).
// Not for flipping while another thread runs a forward.
void set_fold_shared_queries(bool on);
bool fold_shared_queries();

class MAB : public Module {
 public:
  MAB(int64_t dim_q, int64_t dim_k, int64_t dim, int64_t heads, bool ln, Rng& rng);
  // X (B, Nq, dim_q), Y (B, Nk, dim_k) -> (B, Nq, dim). X may be (1, Nq, dim_q), the same
  // queries for every set (ISAB's I, PMA's S): Q is then projected once and broadcast.
  Variable forward(const Variable& X, const Variable& Y, const Tensor& key_mask = {}) const;

  int64_t dim() const { return dim_; }

 private:
  // Q (1, Nq, D) projected shared queries, Y (B, Nk, dim_k): Q + concat_h(A_h V_h) with the
  // projections folded into the queries (above). alpha: the score scale.
  Variable attend_shared_queries(const Variable& Q, const Variable& Y, const Tensor& key_mask,
                                 double alpha) const;

  int64_t dim_, heads_;
  Linear fc_q_, fc_k_, fc_v_, fc_o_;
  std::unique_ptr<LayerNorm> ln0_, ln1_;  // null when ln is off
};

// SAB(X) = MAB(X, X): self-attention over the set, O(N²).
class SAB : public Module {
 public:
  SAB(int64_t dim_in, int64_t dim, int64_t heads, bool ln, Rng& rng);
  Variable forward(const Variable& X, const Tensor& key_mask = {}) const;  // (B, N, dim)

 private:
  MAB mab_;
};

// ISAB_m(X) = MAB(X, H) with H = MAB(I, X): attention through m learned inducing points I
// (1, m, dim), O(N·m). The mask removes padded points as keys of the first MAB.
class ISAB : public Module {
 public:
  ISAB(int64_t dim_in, int64_t dim, int64_t heads, int64_t inducing, bool ln, Rng& rng);
  Variable forward(const Variable& X, const Tensor& key_mask = {}) const;  // (B, N, dim)

  Variable I;  // (1, m, dim), Xavier-uniform

 private:
  MAB mab0_, mab1_;
};

// PMA_k(Z) = MAB(S, Z): pools a set into k learned seeds S (1, k, dim). No rFF on Z
// (the reference code omits it too).
class PMA : public Module {
 public:
  PMA(int64_t dim, int64_t heads, int64_t seeds, bool ln, Rng& rng);
  Variable forward(const Variable& Z, const Tensor& key_mask = {}) const;  // (B, k, dim)

  Variable S;  // (1, k, dim), Xavier-uniform

 private:
  MAB mab_;
};

// DAC's StackedISAB: `blocks` ISABs in a row, dim_in → dim, then dim → dim. With `tied` (the
// reference code's behaviour, reference notes §3.2) blocks 2…n are one shared ISAB applied
// n − 1 times, so there are two distinct ISABs ("isab0", "isab1") whatever n is; untied, each
// block has its own ("isab0" … "isab<n−1>"). The key mask reaches every block. Inducing points
// are initialised as DAC-py's (m, dim) matrices (Xavier bound √(6 / (dim + m))).
class StackedISAB : public Module {
 public:
  StackedISAB(int64_t dim_in, int64_t dim, int64_t heads, int64_t inducing, int64_t blocks,
              bool tied, Rng& rng);
  Variable forward(const Variable& X, const Tensor& key_mask = {}) const;  // (B, N, dim)

 private:
  int64_t blocks_;
  std::vector<std::unique_ptr<ISAB>> isabs_;  // 2 when tied (or 1 when blocks = 1), else blocks
};

}  // namespace ncl::nn

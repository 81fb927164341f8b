// The differentiable functions: everything nn/ and models/ compute with.
//
// Each is one free function: forward through tensor/ops.h, then make_result with the backward
// closure right below it, the gradient formula in a comment above (see docs/ops.md for the
// table of ops, kernels and tests). Composite functions (bce_with_logits, ...) are built from
// the primitives and need no backward of their own.
//
// Broadcasting in binary ops follows numpy: shapes align on the right and size-1 axes repeat.
// Masks (I32, 1 = removed) and indices (I32) are plain Tensors: they carry no gradient.
#pragma once

#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "tensor/row_map.h"

namespace ncl {

// ---- elementwise (functions_elementwise.cpp) -----------------------------------------------
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable square(const Variable& x);
Variable relu(const Variable& x);
Variable sigmoid(const Variable& x);
Variable tanh(const Variable& x);
Variable softplus(const Variable& x);
Variable elu(const Variable& x);  // alpha = 1
// PReLU with a learned slope: (1) shared, or (C) one per channel of the last axis.
Variable prelu(const Variable& x, const Variable& slope);
Variable scale(const Variable& x, double s);       // s·x
Variable add_scalar(const Variable& x, double s);  // x + s
Variable pow_scalar(const Variable& x, double p);  // x^p (x > 0 unless p is an integer)
// cond (I32, a's shape) ? a : b; a and b share a shape.
Variable where(const Tensor& cond, const Variable& a, const Variable& b);

Variable operator+(const Variable& a, const Variable& b);
Variable operator-(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, const Variable& b);
Variable operator/(const Variable& a, const Variable& b);
Variable operator-(const Variable& x);
Variable operator*(const Variable& x, double s);
Variable operator*(double s, const Variable& x);
Variable operator+(const Variable& x, double s);
Variable operator-(const Variable& x, double s);
Variable operator/(const Variable& x, double s);

// ---- reductions and products (functions_reduce.cpp) ----------------------------------------
Variable sum(const Variable& x, int axis, bool keepdim = false);
Variable mean(const Variable& x, int axis, bool keepdim = false);
Variable max(const Variable& x, int axis, bool keepdim = false);  // gradient to the first max
Variable sum_all(const Variable& x);   // shape ()
Variable mean_all(const Variable& x);  // shape ()
// See ops::matmul: alpha · a (..., M, K) · b (..., K, N), or b 2-D shared across the batch.
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false,
                double alpha = 1.0);
// x (R, in) · weightᵀ + bias: weight (out, in), bias (out) or undefined -> (R, out). One GEMM
// that accumulates onto the broadcast bias (no separate bias pass, no extra saved tensor).
Variable linear(const Variable& x, const Variable& weight, const Variable& bias);

// ---- layout (functions_layout.cpp) ---------------------------------------------------------
Variable reshape(const Variable& x, const Shape& shape);
Variable permute(const Variable& x, const std::vector<int>& perm);
Variable transpose(const Variable& x, int axis0, int axis1);
Variable broadcast_to(const Variable& x, const Shape& shape);
Variable sum_to(const Variable& x, const Shape& shape);
Variable concat(const std::vector<Variable>& xs, int axis);
Variable slice(const Variable& x, int axis, int64_t start, int64_t end);
Variable index_select(const Variable& x, const Tensor& index);  // rows of axis 0
// Segment sum: out (rows, ...) with out[index[i]] += src[i] (cluster sums).
Variable index_add(const Variable& src, const Tensor& index, int64_t rows);
// Rows combined by a fixed sparse matrix: y (map.rows, ...) = M x (tensor/row_map.h). Gathers,
// segment sums and prefix sums in one op; the gradient is Mᵀ dy.
Variable combine_rows(const Variable& x, std::shared_ptr<const RowMap> map);

// ---- attention heads (functions_attention.cpp; see ops::head_scores) ------------------------
// Per-head scores alpha · Q_h K_hᵀ: q (B, Nq, D), k (B, Nk, D) -> (H·B, Nq, Nk), head-major.
Variable attention_scores(const Variable& q, const Variable& k, int64_t heads, double alpha);
// residual + concat_h(A_h V_h): a (H·B, Nq, Nk), v (B, Nk, D), residual (B, Nq, D) -> (B, Nq, D).
Variable attention_output(const Variable& a, const Variable& v, const Variable& residual,
                          int64_t heads);

// ---- normalisation, softmax, losses (functions_nn.cpp) -------------------------------------
// Last axis; key_mask as in ops::softmax (I32 (Bm, C), 1 = key removed, group g uses row
// g % Bm). Masked entries and fully masked rows give 0 and pass no gradient.
Variable softmax(const Variable& x, const Tensor& key_mask = {});
Variable log_softmax(const Variable& x, const Tensor& key_mask = {});
Variable logsumexp(const Variable& x, const Tensor& key_mask = {});  // drops the last axis
// Down the columns of x (E, R, C), as ops::softmax_columns (key_mask I32 (Bm, R)).
Variable softmax_columns(const Variable& x, const Tensor& key_mask = {});
Variable layer_norm(const Variable& x, const Variable& gamma, const Variable& beta,
                    double eps = 1e-5);
// Elementwise binary cross-entropy of sigmoid(logits) against targets in [0, 1].
Variable bce_with_logits(const Variable& logits, const Variable& targets);
// log N(x; mean, diag(sigma²)) summed over the last axis; x, mean, sigma broadcast together.
// x (…, N, 1, D) against (…, 1, K, D) and x (…, N, D) against (…, 1, D) run as one fused op.
Variable gaussian_log_density(const Variable& x, const Variable& mean, const Variable& sigma);
// Reparameterised sample mean + sigma·eps with eps ~ N(0, I) given (drawn by the caller's Rng).
Variable reparameterize(const Variable& mean, const Variable& sigma, const Tensor& eps);

// ---- gradient flow -------------------------------------------------------------------------
// Identity forward; backward multiplies the gradient by s (s = 0 stops it on this path only).
Variable scale_grad(const Variable& x, double s);

}  // namespace ncl

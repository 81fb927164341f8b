// Argument structs and op enums shared by the dispatcher (ops.cpp) and both backends.
// Kernels see collapsed problem sizes (rows x cols, batch x M x N x K), never N-d shapes.
#pragma once

#include <array>
#include <cstdint>

#include "tensor/shape.h"

namespace ncl {

// out = f(x, alpha). `alpha` is used only by the ops that say so.
enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Abs, Square, Reciprocal,
  Relu, Step,          // Step(x) = 1 if x > 0 else 0 (relu's derivative)
  Sigmoid, Tanh,
  Softplus,            // log(1 + e^x), computed without overflow
  Elu, EluDeriv,       // elu (alpha = 1) and its derivative: 1 if x > 0 else e^x
  Scale,               // alpha * x
  AddScalar,           // x + alpha
  PowScalar,           // x ^ alpha
};

// out = a (op) b, with b broadcast over a's (rows, cols) view as `Broadcast` says.
// ReluGrad: a where b > 0, else 0 (relu's backward: dy where relu's output is positive).
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min, Greater, ReluGrad };
enum class Broadcast {
  None,    // b has a's shape
  Scalar,  // b has one element
  Row,     // b has `cols` elements, repeated for every row (a bias)
  Column,  // b has `rows` elements, each repeated across its row
};

enum class ReduceOp { Sum, Max };

// C[i] = alpha * op(A[i]) op(B[i]) + beta * C[i] for i < batch; op = transpose when asked.
// Shapes before the transpose flag: A is (m, k) or (k, m) when trans_a; B is (k, n) or (n, k).
// Where each matrix lives (row-major, in elements):
//   entry i = (o, j) with o = i / inner and j = i % inner (inner = 0: one level, j = i);
//   A[i] starts at o * outer_stride_a + j * stride_a (stride 0: one A shared by every entry),
//   and its rows are lda apart (0: dense, the stored row length); the same for B and C, with
//   stride_c = 0 meaning m * n. The two levels and leading dimensions let attention address
//   head h of dataset b inside a (B, N, D) tensor without copying it out (ops::head_scores).
struct GemmArgs {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t inner = 0, outer_stride_a = 0, outer_stride_b = 0, outer_stride_c = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  double alpha = 1.0, beta = 0.0;

  // The resolved layout of one entry: where its A, B and C start.
  struct Entry {
    int64_t a, b, c;
  };
  Entry entry(int64_t i) const {
    int64_t o = inner > 0 ? i / inner : 0, j = inner > 0 ? i % inner : i;
    return {o * outer_stride_a + j * stride_a, o * outer_stride_b + j * stride_b,
            o * outer_stride_c + j * (stride_c > 0 ? stride_c : m * n)};
  }
  int64_t ld_a() const { return lda > 0 ? lda : (trans_a ? m : k); }
  int64_t ld_b() const { return ldb > 0 ? ldb : (trans_b ? k : n); }
  int64_t ld_c() const { return ldc > 0 ? ldc : n; }
};

// Softmax over the last axis of x viewed as (rows, cols). Rows come in groups of `group`
// consecutive rows (the queries of one attention matrix); group g uses mask row
// g % mask_rows. Mask entries are I32, 1 = key removed.
struct SoftmaxArgs {
  int64_t rows = 0, cols = 0, group = 1, mask_rows = 0;
  bool log = false;
};

// Softmax down the columns of x viewed as (entries, rows, cols): column c of entry e is one
// distribution over the rows (attention with the keys down the rows, one query per column);
// entry e uses mask row e % mask_rows (mask_rows = 0: no mask), one I32 per row, 1 = removed.
struct ColumnSoftmaxArgs {
  int64_t entries = 0, rows = 0, cols = 0, mask_rows = 0;
};

// A strided copy of `shape` elements: dst[dst_offset + Σ i_d dst_strides[d]] =
// src[src_offset + Σ i_d src_strides[d]]. A zero source stride broadcasts.
struct CopyArgs {
  Shape shape;
  std::array<int64_t, Shape::kMaxRank> src_strides{}, dst_strides{};
  int64_t src_offset = 0, dst_offset = 0;
};

struct AdamArgs {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;  // false: L2 added to the gradient (Adam); true: AdamW
  int64_t step = 1;        // 1-based step number, for bias correction
};

}  // namespace ncl

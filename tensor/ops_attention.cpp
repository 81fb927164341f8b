// Per-head attention products on (B, N, D) tensors, without splitting heads into copies.
//
// Head h of dataset b inside a (B, N, D) tensor is an (N, Dh) matrix that starts at element
// b·N·D + h·Dh with rows D apart. A GEMM batch entry i = h·B + b therefore addresses it with
// outer stride Dh (per head), inner stride N·D (per dataset) and leading dimension D, while a
// per-head (H·B, R, C) tensor is addressed densely. See GemmArgs in kernel_args.h.
#include "tensor/ops.h"
#include "tensor/ops_internal.h"

namespace ncl::ops {
using namespace internal;
namespace {

void check_heads(const char* op, const Tensor& t, int64_t heads, int64_t batch) {
  NCL_CHECK(t.rank() == 3 && t.dim(0) == batch && heads > 0 && t.dim(2) % heads == 0, op, ": ",
            t.shape(), " must be (B = ", batch, ", N, D) with D divisible by ", heads, " heads");
}

// Entry layout of a heads operand (B, N, D): head blocks addressed in place.
void heads_layout(const Tensor& t, int64_t heads, int64_t* outer, int64_t* inner, int64_t* ld) {
  *outer = t.dim(2) / heads;
  *inner = t.dim(1) * t.dim(2);
  *ld = t.dim(2);
}

}  // namespace

Tensor head_scores(const Tensor& x, const Tensor& y, int64_t heads, double alpha) {
  check_float("head_scores", x);
  check_same("head_scores", x, y);
  const int64_t B = x.dim(0);
  check_heads("head_scores", x, heads, B);
  check_heads("head_scores", y, heads, B);
  NCL_CHECK(x.dim(2) == y.dim(2), "head_scores: widths differ: ", x.shape(), " and ", y.shape());
  const int64_t Nx = x.dim(1), Ny = y.dim(1);
  Tensor out = Tensor::empty({heads * B, Nx, Ny}, x.dtype(), x.device());
  GemmArgs g;
  g.batch = heads * B;
  g.inner = B;
  g.m = Nx;
  g.n = Ny;
  g.k = x.dim(2) / heads;
  g.trans_b = true;
  g.alpha = alpha;
  heads_layout(x, heads, &g.outer_stride_a, &g.stride_a, &g.lda);
  heads_layout(y, heads, &g.outer_stride_b, &g.stride_b, &g.ldb);
  g.stride_c = Nx * Ny;
  g.outer_stride_c = B * Nx * Ny;
  if (g.m > 0 && g.n > 0) run_gemm(x, y, out, g);
  return out;
}

void head_apply_into(const Tensor& p, bool trans_p, const Tensor& v, Tensor& out, int64_t heads,
                     double alpha, double beta) {
  check_float("head_apply_into", p);
  check_same("head_apply_into", p, v);
  check_same("head_apply_into", p, out);
  const int64_t B = v.dim(0);
  check_heads("head_apply_into", v, heads, B);
  check_heads("head_apply_into", out, heads, B);
  NCL_CHECK(p.rank() == 3 && p.dim(0) == heads * B, "head_apply_into: p ", p.shape(),
            " must be per-head (H·B = ", heads * B, ", R, C)");
  const int64_t rows = trans_p ? p.dim(2) : p.dim(1), inner = trans_p ? p.dim(1) : p.dim(2);
  NCL_CHECK(inner == v.dim(1) && rows == out.dim(1) && v.dim(2) == out.dim(2), "head_apply_into: p ",
            p.shape(), (trans_p ? "ᵀ" : ""), " times v ", v.shape(), " does not give out ",
            out.shape());
  GemmArgs g;
  g.batch = heads * B;
  g.inner = B;
  g.m = rows;
  g.n = v.dim(2) / heads;
  g.k = inner;
  g.trans_a = trans_p;
  g.alpha = alpha;
  g.beta = beta;
  g.stride_a = p.dim(1) * p.dim(2);
  g.outer_stride_a = B * g.stride_a;
  heads_layout(v, heads, &g.outer_stride_b, &g.stride_b, &g.ldb);
  heads_layout(out, heads, &g.outer_stride_c, &g.stride_c, &g.ldc);
  if (g.m > 0 && g.n > 0) run_gemm(p, v, out, g);
}

}  // namespace ncl::ops

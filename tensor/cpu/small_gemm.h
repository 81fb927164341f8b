// ncl's own float32 GEMM kernel for the thin products of attention (a dimension of 32 — the
// head width or the inducing points — against N ≈ 500 points): OpenBLAS packs both operands
// into its own layout on every call, and at these sizes the packing and the call's set-up cost
// as much as a third of the product (31–101 GFLOP/s against 134 for 1024³ on one core, in the
// Set Transformer's training step). This kernel reads the operands where they lie: 6 rows of
// op(A) are broadcast one element at a time against 16 contiguous columns of op(B), the 6×16
// block of C held in 12 AVX2 registers for a chunk of 128 steps of the inner dimension (whose
// slices of both operands stay in the L1 cache). Only op(B) = Bᵀ is first copied into row order
// (k·n floats, transposed 8×8 at a time in registers).
//
// AVX2 and FMA are checked at run time (the build stays baseline x86-64); without them, for
// shapes outside the rules below, and with NCL_THIN_GEMM=0 in the environment (to compare the
// two: `NCL_THIN_GEMM=0 build/bench/ncl_bench --only gemm`), gemm.cpp calls OpenBLAS.
// The kernel is AVX2 (8 floats a register), so it is used only where OpenBLAS runs its AVX2
// kernels too (openblas_get_corename() Haswell or Zen). On a CPU with AVX-512, OpenBLAS's own
// AVX-512 kernels are about twice as fast (1024³: 249 against 133 GFLOP/s on one core of the
// AMD Zen 5 these notes were measured on, whose environment sets OPENBLAS_CORETYPE=Haswell) and
// beat the kernel even on thin products: there OpenBLAS does every product. NCL_THIN_GEMM=1
// uses the kernel whatever OpenBLAS runs.
#pragma once

#include <cstdint>

namespace ncl::cpu {

// Whether gemm.cpp gives the kernel C (m×n) = op(A) (m×k) · op(B) (k×n): the kernel is on
// (above); the product is thin (C has at most 64 rows or at most 64 columns); C has at least 16
// columns (the kernel's width) and the inner dimension at least 8 steps; and op(B) = Bᵀ is at
// most 2²⁰ floats (it is copied into a per-thread buffer that is kept between calls). Of the
// Linear layers' products (128 or more on every side) the kernel takes the input's gradient
// dY·W (not transposed, 16 to 128 outputs, at most 256 inputs: 1.05× OpenBLAS stand-alone, 1–2 %
// of the Set Transformer's step); the weight's, dYᵀ·X over all the rows, stays with OpenBLAS
// (the kernel ran it at 95 GFLOP/s stand-alone, against OpenBLAS's 122); the forward: below.
bool small_sgemm_takes(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);

// Whether gemm.cpp gives the kernel a Linear layer's forward, y (rows×out) = x·Wᵀ + bias with
// the bias added as each block of y is stored: 16 to 128 inputs and 16 to 256 outputs (Wᵀ,
// at most 32k floats, is copied once per call). There it saves the pass that writes the bias
// rows for OpenBLAS to add to (beta = 1) and runs at 1.0–1.3× OpenBLAS's rate; with more than
// 128 inputs C would be read again for every further 128 (0.85–0.95× at 20,000 rows).
bool small_sgemm_takes_linear(int64_t rows, int64_t out, int64_t in);

// C = alpha·op(A)·op(B) + beta·C (+ bias[j] in every row's column j, when bias is not null),
// row-major with leading dimensions; C is not read when beta == 0. Any shape with trans_b false
// or true (the rules above are not applied: tests use this); false, with nothing written, when
// the CPU lacks AVX2+FMA.
bool small_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc, const float* bias = nullptr);

}  // namespace ncl::cpu

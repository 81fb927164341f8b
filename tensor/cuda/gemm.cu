// Matrix products with cuBLAS (the mirror of cpu/gemm.cpp), honouring every field of GemmArgs.
//
// Row-major to column-major: cuBLAS reads a row-major (r, c) matrix with row stride ld as the
// column-major (c, r) matrix with leading dimension ld, i.e. its transpose. So the row-major
//   C = alpha·op(A)·op(B) + beta·C
// is computed as the column-major
//   Cᵀ = alpha·op(B)ᵀ·op(A)ᵀ + beta·Cᵀ
// by passing B first and A second, with n and m swapped and the transpose flags kept.
//
// Batches: entry i = (o, j), o = i / inner, j = i % inner (GemmArgs). One
// cublas{S,D}gemmStridedBatched call covers the inner level (stride_a, stride_b, stride_c apart;
// a stride of 0 shares one matrix); with a two-level batch there is one call per outer index o,
// its base pointers moved by o·outer_stride. Single-level batches are one call.
//
// Precision: F32 GEMMs use full FP32 arithmetic (CUBLAS_DEFAULT_MATH) unless set_allow_tf32(true)
// lets cuBLAS use TF32 tensor cores (CUBLAS_TF32_TENSOR_OP_MATH); the mode is set on every call.
#include <limits>
#include <type_traits>

#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

// One strided-batched call in cuBLAS's column-major terms (see the header comment).
cublasStatus_t gemm_batched(cublasOperation_t op_first, cublasOperation_t op_second, int rows,
                            int cols, int depth, float alpha, const float* first, int ld_first,
                            int64_t stride_first, const float* second, int ld_second,
                            int64_t stride_second, float beta, float* c, int ldc, int64_t stride_c,
                            int count) {
  return cublas_api().sgemm_strided_batched(cublas(), op_first, op_second, rows, cols, depth,
                                             &alpha, first, ld_first, stride_first, second,
                                             ld_second, stride_second, &beta, c, ldc, stride_c,
                                             count);
}

cublasStatus_t gemm_batched(cublasOperation_t op_first, cublasOperation_t op_second, int rows,
                            int cols, int depth, double alpha, const double* first, int ld_first,
                            int64_t stride_first, const double* second, int ld_second,
                            int64_t stride_second, double beta, double* c, int ldc,
                            int64_t stride_c, int count) {
  return cublas_api().dgemm_strided_batched(cublas(), op_first, op_second, rows, cols, depth,
                                             &alpha, first, ld_first, stride_first, second,
                                             ld_second, stride_second, &beta, c, ldc, stride_c,
                                             count);
}

// C (m, n) rows ldc apart: C = beta·C, or 0 when beta = 0 (NaN in C does not survive).
template <class T>
__global__ void scale_matrix_kernel(T* c, int64_t m, int64_t n, int64_t ldc, T beta) {
  for (int64_t i = flat_index(); i < m * n; i += flat_stride()) {
    T& cij = c[(i / n) * ldc + i % n];
    cij = beta == T(0) ? T(0) : beta * cij;
  }
}

// y (rows, n) = bias (n) in every row.
template <class T>
__global__ void bias_rows_kernel(T* y, const T* bias, int64_t rows, int64_t n) {
  for (int64_t i = flat_index(); i < rows * n; i += flat_stride()) y[i] = bias[i % n];
}

int as_int(int64_t v, const char* what) {
  NCL_CHECK(v <= std::numeric_limits<int>::max(), "cuda::gemm: ", what, " = ", v,
            " exceeds cuBLAS's int range");
  return int(v);
}

}  // namespace

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  dispatch_float(a.dtype(), "gemm", [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* pc = static_cast<T*>(c.raw_data());
    if (g.k == 0) {  // an empty sum: C = beta·C, entry by entry (rare: no cuBLAS call needed)
      for (int64_t i = 0; i < g.batch; ++i) {
        scale_matrix_kernel<T><<<flat_grid(g.m * g.n), kBlock, 0, stream()>>>(
            pc + g.entry(i).c, g.m, g.n, g.ld_c(), T(g.beta));
        CUDA_CHECK_LAUNCH("scale_matrix_kernel");
      }
      return;
    }
    const bool tf32 = allow_tf32() && std::is_same_v<T, float>;
    CUBLAS_CHECK(cublas_api().set_math_mode(
        cublas(), tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int m = as_int(g.m, "m"), n = as_int(g.n, "n"), k = as_int(g.k, "k");
    const int lda = as_int(g.ld_a(), "lda"), ldb = as_int(g.ld_b(), "ldb");
    const int ldc = as_int(g.ld_c(), "ldc");
    const int64_t stride_c = g.stride_c > 0 ? g.stride_c : g.m * g.n;
    // One call per outer index o (its `inner` entries), or one call for a single-level batch.
    const int64_t per_call = g.inner > 0 ? g.inner : g.batch;
    for (int64_t first = 0; first < g.batch; first += per_call) {
      const int64_t o = g.inner > 0 ? first / g.inner : 0;
      const int count = as_int(std::min(per_call, g.batch - first), "batch");
      CUBLAS_CHECK(gemm_batched(op_b, op_a, n, m, k, T(g.alpha), pb + o * g.outer_stride_b, ldb,
                                g.stride_b, pa + o * g.outer_stride_a, lda, g.stride_a, T(g.beta),
                                pc + o * g.outer_stride_c, ldc, stride_c, count));
    }
  });
}

// The bias rows first, then cuBLAS adds the product to them (beta = 1).
void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                    const GemmArgs& args) {
  GemmArgs g = args;
  if (bias.defined() && g.m > 0 && g.n > 0) {
    dispatch_float(x.dtype(), "linear_forward", [&](auto zero) {
      using T = decltype(zero);
      bias_rows_kernel<T><<<flat_grid(g.m * g.n), kBlock, 0, stream()>>>(
          static_cast<T*>(y.raw_data()), static_cast<const T*>(bias.raw_data()), g.m, g.n);
      CUDA_CHECK_LAUNCH("bias_rows_kernel");
    });
    g.beta = 1.0;
  }
  gemm(x, weight, y, g);
}

}  // namespace ncl::cuda

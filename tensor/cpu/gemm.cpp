// Matrix products: OpenBLAS cblas_{s,d}gemm in a loop over the batch, and the naive oracle.
#include <cblas.h>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"

namespace ncl::cpu {
namespace {

void blas_gemm(const float* a, const float* b, float* c, const GemmArgs& g) {
  // Row-major: lda is the stored row length of A (k, or m when A is stored transposed).
  cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
              g.trans_b ? CblasTrans : CblasNoTrans, int(g.m), int(g.n), int(g.k), float(g.alpha),
              a, int(g.trans_a ? g.m : g.k), b, int(g.trans_b ? g.k : g.n), float(g.beta), c,
              int(g.n));
}

void blas_gemm(const double* a, const double* b, double* c, const GemmArgs& g) {
  cblas_dgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
              g.trans_b ? CblasTrans : CblasNoTrans, int(g.m), int(g.n), int(g.k), g.alpha, a,
              int(g.trans_a ? g.m : g.k), b, int(g.trans_b ? g.k : g.n), g.beta, c, int(g.n));
}

}  // namespace

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  dispatch_float(a.dtype(), "gemm", [&](auto zero) {
    using T = decltype(zero);
    for (int64_t i = 0; i < g.batch; ++i) {
      T* ci = c.data<T>() + i * g.m * g.n;
      if (g.k == 0) {  // BLAS leaves C untouched when k = 0; the contract says C = beta·C
        for (int64_t j = 0; j < g.m * g.n; ++j) ci[j] = g.beta == 0 ? T(0) : T(g.beta) * ci[j];
        continue;
      }
      if (g.m == 0 || g.n == 0) continue;
      blas_gemm(a.data<T>() + i * g.stride_a, b.data<T>() + i * g.stride_b, ci, g);
    }
  });
}

void set_blas_threads(int threads) { openblas_set_num_threads(threads); }
int blas_threads() { return openblas_get_num_threads(); }

void gemm_naive(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  dispatch_float(a.dtype(), "gemm_naive", [&](auto zero) {
    using T = decltype(zero);
    for (int64_t bi = 0; bi < g.batch; ++bi) {
      const T* pa = a.data<T>() + bi * g.stride_a;
      const T* pb = b.data<T>() + bi * g.stride_b;
      T* pc = c.data<T>() + bi * g.m * g.n;
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = 0; j < g.n; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < g.k; ++p) {
            T av = g.trans_a ? pa[p * g.m + i] : pa[i * g.k + p];
            T bv = g.trans_b ? pb[j * g.k + p] : pb[p * g.n + j];
            acc += double(av) * double(bv);
          }
          T prev = g.beta == 0 ? T(0) : T(g.beta) * pc[i * g.n + j];
          pc[i * g.n + j] = T(g.alpha * acc) + prev;
        }
    }
  });
}

}  // namespace ncl::cpu

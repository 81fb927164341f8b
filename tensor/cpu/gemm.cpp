// Matrix products: single-threaded OpenBLAS cblas_{s,d}gemm, or for float32's thin products
// ncl's own kernel (small_gemm.h), parallelised by ncl (parallel.h):
// over batch entries when there are several (the attention products: many small GEMMs, where
// BLAS's own threads would mostly wake and wait), else over blocks of C's rows (the Linear
// layers' one large GEMM). A Linear layer's forward with its bias (linear_forward), the thread
// controls (set_threads, threads, run_groups) and the naive oracle.
#include <cblas.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <exception>
#include <mutex>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/small_gemm.h"

namespace ncl::cpu {
namespace {

// Rows [r0, r1) of one product (a, b, c point at the entry's matrices). Row block r0 of op(A)
// starts at row r0 of A, or at column r0 when A is stored transposed.
void blas_gemm(const float* a, const float* b, float* c, const GemmArgs& g, int64_t r0, int64_t r1) {
  const float* ar = g.trans_a ? a + r0 : a + r0 * g.ld_a();
  if (small_sgemm_takes(g.trans_a, g.trans_b, r1 - r0, g.n, g.k) &&
      small_sgemm(g.trans_a, g.trans_b, r1 - r0, g.n, g.k, float(g.alpha), ar, g.ld_a(), b,
                  g.ld_b(), float(g.beta), c + r0 * g.ld_c(), g.ld_c()))
    return;
  cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
              g.trans_b ? CblasTrans : CblasNoTrans, int(r1 - r0), int(g.n), int(g.k),
              float(g.alpha), ar, int(g.ld_a()), b, int(g.ld_b()), float(g.beta),
              c + r0 * g.ld_c(), int(g.ld_c()));
}

void blas_gemm(const double* a, const double* b, double* c, const GemmArgs& g, int64_t r0,
               int64_t r1) {
  const double* ar = g.trans_a ? a + r0 : a + r0 * g.ld_a();
  cblas_dgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
              g.trans_b ? CblasTrans : CblasNoTrans, int(r1 - r0), int(g.n), int(g.k), g.alpha, ar,
              int(g.ld_a()), b, int(g.ld_b()), g.beta, c + r0 * g.ld_c(), int(g.ld_c()));
}

// Denormal floats (below 1.2e-38) cost the CPU a microcode assist per operation: when a nearly
// converged model's gradients underflow into that range (NCP's, after a few hundred steps),
// every GEMM of the backward pass slows down about 3×. Flush them to zero (FTZ: results,
// DAZ: inputs) on the calling thread and on every thread of the OpenMP team; threads the team
// adds later are created by this thread and inherit its floating-point state.
void flush_denormals() {
#if defined(__SSE__)
  auto set = [] { _mm_setcsr(_mm_getcsr() | 0x8040); };  // FTZ (bit 15) | DAZ (bit 6)
  set();
#pragma omp parallel
  set();
#endif
}

// OpenBLAS starts with one thread per core; ncl wants it single-threaded (see parallel.h).
void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    openblas_set_num_threads(1);
    flush_denormals();
  });
}

}  // namespace

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  single_threaded_blas();
  dispatch_float(a.dtype(), "gemm", [&](auto zero) {
    using T = decltype(zero);
    if (g.m == 0 || g.n == 0) return;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    if (g.k == 0) {  // BLAS leaves C untouched when k = 0; the contract says C = beta·C
      for (int64_t i = 0; i < g.batch; ++i)
        for (int64_t r = 0; r < g.m; ++r)
          for (int64_t j = 0; j < g.n; ++j) {
            T& cij = pc[g.entry(i).c + r * g.ld_c() + j];
            cij = g.beta == 0 ? T(0) : T(g.beta) * cij;
          }
      return;
    }
    const int64_t flops = 2 * g.m * g.n * g.k;
    if (g.batch > 1) {
      parallel_for(g.batch, std::max<int64_t>(1, (1 << 20) / flops), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          GemmArgs::Entry e = g.entry(i);
          blas_gemm(pa + e.a, pb + e.b, pc + e.c, g, 0, g.m);
        }
      });
    } else {
      // Row blocks of at least 64 rows and about a million FLOPs each.
      GemmArgs::Entry e = g.entry(0);
      int64_t min_rows = std::max<int64_t>(64, (1 << 20) / std::max<int64_t>(2 * g.n * g.k, 1));
      parallel_for(g.m, min_rows,
                   [&](int64_t r0, int64_t r1) { blas_gemm(pa + e.a, pb + e.b, pc + e.c, g, r0, r1); });
    }
  });
}

// The kernel with the bias in its epilogue where it takes the shape (small_gemm.h); otherwise
// the bias rows are written first and the product added to them (beta = 1).
void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                    const GemmArgs& args) {
  GemmArgs g = args;
  if (bias.defined() && x.dtype() == DType::F32 && small_sgemm_takes_linear(g.m, g.n, g.k)) {
    single_threaded_blas();
    const float* px = x.data<float>();
    const float* pw = weight.data<float>();
    const float* pb = bias.data<float>();
    float* py = y.data<float>();
    // Row blocks of at least 64 rows and about a million FLOPs each, as gemm's below. (The
    // kernel declines only without AVX2+FMA, which small_sgemm_takes_linear rules out.)
    const int64_t min_rows = std::max<int64_t>(64, (1 << 20) / (2 * g.n * g.k));
    parallel_for(g.m, min_rows, [&](int64_t r0, int64_t r1) {
      small_sgemm(false, true, r1 - r0, g.n, g.k, 1.0f, px + r0 * g.k, g.k, pw, g.k, 0.0f,
                  py + r0 * g.n, g.n, pb);
    });
    return;
  }
  if (bias.defined()) {
    dispatch_float(x.dtype(), "linear_forward", [&](auto zero) {
      using T = decltype(zero);
      const T* pb = bias.data<T>();
      T* py = y.data<T>();
      parallel_for(g.m, grain(g.n), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) std::copy_n(pb, g.n, py + r * g.n);
      });
    });
    g.beta = 1.0;
  }
  gemm(x, weight, y, g);
}

void set_threads(int threads) {
  single_threaded_blas();
  omp_set_num_threads(std::max(threads, 1));
}
int threads() { return omp_get_max_threads(); }

int run_groups(int64_t n, const std::function<void(int, int64_t, int64_t)>& f) {
  single_threaded_blas();
  const int groups = int(std::clamp<int64_t>(n, 1, omp_get_max_threads()));
  std::vector<std::exception_ptr> errors(size_t(groups), nullptr);
#pragma omp parallel for num_threads(groups) schedule(static, 1)
  for (int g = 0; g < groups; ++g) {
    try {
      f(g, n * g / groups, n * (g + 1) / groups);
    } catch (...) {
      errors[size_t(g)] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return groups;
}

void gemm_naive(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  dispatch_float(a.dtype(), "gemm_naive", [&](auto zero) {
    using T = decltype(zero);
    const int64_t lda = g.ld_a(), ldb = g.ld_b(), ldc = g.ld_c();
    for (int64_t bi = 0; bi < g.batch; ++bi) {
      GemmArgs::Entry e = g.entry(bi);
      const T* pa = a.data<T>() + e.a;
      const T* pb = b.data<T>() + e.b;
      T* pc = c.data<T>() + e.c;
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = 0; j < g.n; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < g.k; ++p) {
            T av = g.trans_a ? pa[p * lda + i] : pa[i * lda + p];
            T bv = g.trans_b ? pb[j * ldb + p] : pb[p * ldb + j];
            acc += double(av) * double(bv);
          }
          T prev = g.beta == 0 ? T(0) : T(g.beta) * pc[i * ldc + j];
          pc[i * ldc + j] = T(g.alpha * acc) + prev;
        }
    }
  });
}

}  // namespace ncl::cpu

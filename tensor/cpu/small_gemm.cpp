// The thin-product GEMM kernel (small_gemm.h): a 6×16 block of C in 12 registers, the inner
// dimension run through in chunks of 128 steps (C updated after each). Per step p it loads 16
// floats of row p of op(B) (two registers) and broadcasts the 6 elements op(A)(i, p), i in the
// block: 12 FMAs against 8 loads, which keeps the two FMA units busy. Blocks at C's right edge
// (fewer than 16 columns) load op(B) through a lane mask; blocks at its bottom edge use a kernel
// instance with fewer rows. Both go through a small buffer to C; whole blocks are written
// directly. In the thin products, which read op(B) where it lies, each step also fetches the
// row of op(B) 32 steps ahead (kFetchRows).
#include "tensor/cpu/small_gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace ncl::cpu {

#if defined(__x86_64__) && defined(__GNUC__)

namespace {

#define NCL_AVX2 __attribute__((target("avx2,fma")))

constexpr int kRows = 6;   // rows of C per block: op(A) elements broadcast per step
constexpr int kCols = 16;  // columns of C per block: two 8-float registers
constexpr int64_t kMaxCopy = int64_t(1) << 20;  // floats of Bᵀ copied at most: 4 MiB a thread
constexpr int64_t kInner = 128;  // inner-dimension chunk: 6·128 + 128·16 floats, 11 KiB

bool has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// Whether OpenBLAS itself runs AVX2 kernels (its core as OPENBLAS_CORETYPE or its own CPU
// detection chose it): Haswell's, which AMD's Zen also uses. This kernel beats those on thin
// products; OpenBLAS's AVX-512 sets (SkylakeX, Cooperlake, SapphireRapids) run them about twice
// as fast and beat it (small_gemm.h).
bool openblas_runs_avx2() {
  const char* core = openblas_get_corename();
  return core != nullptr && (std::strcmp(core, "Haswell") == 0 || std::strcmp(core, "Zen") == 0);
}

// NCL_THIN_GEMM=0 in the environment sends every product to OpenBLAS, =1 uses the kernel
// whatever OpenBLAS runs (both for comparisons); unset, the kernel is used where OpenBLAS runs
// AVX2 kernels.
bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("NCL_THIN_GEMM");
    if (!has_avx2_fma() || (v && std::strcmp(v, "0") == 0)) return false;
    return (v && std::strcmp(v, "1") == 0) || openblas_runs_avx2();
  }();
  return on;
}

// The operands as the kernel reads them: X(r, p) = x[r·x_row + p·x_step] (op(A), either
// storage order) and Y(p, c) = y[p·ld_y + c] (op(B) in row order). fetch_y: Y's rows are
// fetched ahead (kFetchRows).
struct Operands {
  const float* x;
  int64_t x_row, x_step;
  const float* y;
  int64_t ld_y;
  bool fetch_y;
};

// Rows of Y fetched ahead of the step that reads them: enough to cover a trip to memory.
// The attention products that sum over the N points read Y = K, V or dO in place, rows 512
// bytes apart and often long evicted (the backward's saved activations); without this they ran
// at 85–90 GFLOP/s in the training step, with it 104–107.
constexpr int64_t kFetchRows = 32;

// out[r][c] = Σ_p X(r, p)·Y(p, c) for r < R, c < 16 (columns the mask leaves out read 0).
// kColumns: X is stored by columns (op(A) = Aᵀ, x_row = 1), so each step reads 6 floats of a
// different cache line; the 16 floats after them (the next blocks' rows) are fetched ahead,
// since the hardware's stream detection loses track of k interleaved streams.
template <int R, bool kWhole, bool kColumns>
NCL_AVX2 inline void block(const Operands& o, int64_t k, __m256i mask_lo, __m256i mask_hi,
                           float out[kRows][kCols]) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* yp = o.y + p * o.ld_y;
    const __m256 y_lo = kWhole ? _mm256_loadu_ps(yp) : _mm256_maskload_ps(yp, mask_lo);
    const __m256 y_hi = kWhole ? _mm256_loadu_ps(yp + 8) : _mm256_maskload_ps(yp + 8, mask_hi);
    const float* xp = o.x + p * o.x_step;
    if (kColumns) _mm_prefetch(reinterpret_cast<const char*>(xp + 16), _MM_HINT_T0);
    if (o.fetch_y) {  // an address only (past Y's end in the last rows: a prefetch never faults)
      const uintptr_t ahead = uintptr_t(yp) + uintptr_t(kFetchRows * o.ld_y) * sizeof(float);
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(xp + r * o.x_row);
      lo[r] = _mm256_fmadd_ps(xv, y_lo, lo[r]);
      hi[r] = _mm256_fmadd_ps(xv, y_hi, hi[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(out[r], lo[r]);
    _mm256_storeu_ps(out[r] + 8, hi[r]);
  }
}

template <bool kWhole, bool kColumns>
NCL_AVX2 void block_rows(int rows, const Operands& o, int64_t k, __m256i mask_lo,
                         __m256i mask_hi, float out[kRows][kCols]) {
  switch (rows) {
    case 6: block<6, kWhole, kColumns>(o, k, mask_lo, mask_hi, out); break;
    case 5: block<5, kWhole, kColumns>(o, k, mask_lo, mask_hi, out); break;
    case 4: block<4, kWhole, kColumns>(o, k, mask_lo, mask_hi, out); break;
    case 3: block<3, kWhole, kColumns>(o, k, mask_lo, mask_hi, out); break;
    case 2: block<2, kWhole, kColumns>(o, k, mask_lo, mask_hi, out); break;
    default: block<1, kWhole, kColumns>(o, k, mask_lo, mask_hi, out); break;
  }
}

template <bool kWhole>
NCL_AVX2 void block_rows(int rows, const Operands& o, int64_t k, __m256i mask_lo,
                         __m256i mask_hi, float out[kRows][kCols]) {
  if (o.x_row == 1) block_rows<kWhole, true>(rows, o, k, mask_lo, mask_hi, out);
  else block_rows<kWhole, false>(rows, o, k, mask_lo, mask_hi, out);
}

// out[p·ld_out + j] = b[j·ldb + p] for j < n, p < k (Bᵀ into row order), 8×8 blocks at a time
// through registers: eight rows of B are loaded, interleaved in three rounds of shuffles (pairs
// of floats, pairs of pairs, halves) into eight columns, and stored as rows of the copy.
NCL_AVX2 void copy_transposed(const float* b, int64_t ldb, int64_t n, int64_t k, float* out,
                              int64_t ld_out) {
  int64_t j0 = 0;
  for (; j0 + 8 <= n; j0 += 8) {
    int64_t p0 = 0;
    for (; p0 + 8 <= k; p0 += 8) {
      __m256 r[8], t[8], s[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(b + (j0 + i) * ldb + p0);
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + (p0 + i) * ld_out + j0,
                         _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
        _mm256_storeu_ps(out + (p0 + i + 4) * ld_out + j0,
                         _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
      }
    }
    for (; p0 < k; ++p0)
      for (int64_t j = j0; j < j0 + 8; ++j) out[p0 * ld_out + j] = b[j * ldb + p0];
  }
  for (; j0 < n; ++j0)
    for (int64_t p = 0; p < k; ++p) out[p * ld_out + j0] = b[j0 * ldb + p];
}

// C (m×n) = alpha·X·Y + beta·C (+ bias[j] in column j when bias is not null), block by block.
NCL_AVX2 void run_blocks(const Operands& o, int64_t m, int64_t n, int64_t k, float alpha,
                         float beta, const float* bias, float* c, int64_t ldc) {
  alignas(32) float out[kRows][kCols];
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256i mask_all = _mm256_set1_epi32(-1);
  for (int64_t r0 = 0, rows = 0; r0 < m; r0 += rows) {
    // 7 or 8 rows left: blocks of 4 and 3-4 rows rather than 6 and 1-2. A block of R rows
    // keeps 2R sums in flight; with fewer than 8 the FMAs wait on each other's latency rather
    // than on the two FMA units. The 32 inducing points' products, as 6,6,6,6,4,4 rather than
    // 6,6,6,6,6,2: 4-5 % faster stand-alone.
    rows = m - r0 == 7 || m - r0 == 8 ? 4 : std::min<int64_t>(kRows, m - r0);
    Operands ob = o;
    ob.x += r0 * o.x_row;
    for (int64_t c0 = 0; c0 < n; c0 += kCols) {
      const int cols = int(std::min<int64_t>(kCols, n - c0));
      Operands oc = ob;
      oc.y += c0;
      if (cols == kCols) {
        block_rows<true>(int(rows), oc, k, mask_all, mask_all, out);
      } else {
        alignas(32) int32_t lanes[kCols];
        for (int j = 0; j < kCols; ++j) lanes[j] = j < cols ? -1 : 0;
        const __m256i mask_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
        const __m256i mask_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
        block_rows<false>(int(rows), oc, k, mask_lo, mask_hi, out);
      }
      for (int r = 0; r < rows; ++r) {
        float* cr = c + (r0 + r) * ldc + c0;
        if (cols == kCols) {
          __m256 v_lo = _mm256_mul_ps(va, _mm256_load_ps(out[r]));
          __m256 v_hi = _mm256_mul_ps(va, _mm256_load_ps(out[r] + 8));
          if (beta != 0.0f) {
            v_lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), v_lo);
            v_hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), v_hi);
          }
          if (bias) {
            v_lo = _mm256_add_ps(v_lo, _mm256_loadu_ps(bias + c0));
            v_hi = _mm256_add_ps(v_hi, _mm256_loadu_ps(bias + c0 + 8));
          }
          _mm256_storeu_ps(cr, v_lo);
          _mm256_storeu_ps(cr + 8, v_hi);
        } else {
          for (int j = 0; j < cols; ++j) {
            float v = beta != 0.0f ? alpha * out[r][j] + beta * cr[j] : alpha * out[r][j];
            cr[j] = bias ? v + bias[c0 + j] : v;
          }
        }
      }
    }
  }
}

}  // namespace

bool small_sgemm_takes(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
  if (!enabled() || k < 8) return false;          // a handful of steps per block: OpenBLAS
  if (m > 64 && n > 64)  // not thin: only a Linear layer's dY·W (one inner chunk; C written once)
    return !trans_a && !trans_b && k >= 16 && k <= kInner && n <= 256;
  if (trans_b && k * n > kMaxCopy) return false;  // the copy of Bᵀ is kept per thread
  return n >= kCols;                              // at least one whole block wide
}

bool small_sgemm_takes_linear(int64_t rows, int64_t out, int64_t in) {
  return enabled() && rows > 0 && in >= 16 && in <= kInner && out >= kCols && out <= 256;
}

bool small_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc, const float* bias) {
  if (!has_avx2_fma()) return false;
  // Y's rows are fetched ahead in the thin products only: the Linear layers' dY·W reads a W
  // that every row block has just read.
  Operands o{a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, !trans_b && (m <= 64 || n <= 64)};
  if (trans_b) {  // op(B) = Bᵀ: copy it into row order, k × n
    static thread_local std::vector<float> rows;
    rows.resize(size_t(k * n));
    copy_transposed(b, ldb, n, k, rows.data(), n);
    o.y = rows.data();
    o.ld_y = n;
  }
  // The inner dimension in chunks whose slices of X and Y stay in the L1 cache while every
  // block of C runs over them; the chunks after the first add to C.
  for (int64_t p0 = 0; p0 < k; p0 += kInner) {
    Operands op = o;
    op.x += p0 * o.x_step;
    op.y += p0 * o.ld_y;
    run_blocks(op, m, n, std::min(kInner, k - p0), alpha, p0 == 0 ? beta : 1.0f,
               p0 == 0 ? bias : nullptr, c, ldc);
  }
  return true;
}

#else  // not x86-64 with GCC's target attributes: OpenBLAS does every product

bool small_sgemm_takes(bool, bool, int64_t, int64_t, int64_t) { return false; }
bool small_sgemm_takes_linear(int64_t, int64_t, int64_t) { return false; }
bool small_sgemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                 int64_t, float, float*, int64_t, const float*) {
  return false;
}

#endif

}  // namespace ncl::cpu

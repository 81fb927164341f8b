// exp(x) for 8 floats at once (Cody–Waite reduction, Cephes's expf polynomial):
//   n = round(x / ln 2), r = x − n·ln 2 (ln 2 split in a short high part and a correction, so
//   n·ln2_hi is exact), exp(r) ≈ 1 + r + r²·p(r) with p of degree 5 on |r| ≤ ln 2 / 2, and
//   exp(x) = exp(r)·2ⁿ with 2ⁿ built from its exponent bits — as two factors
//   2^(n/2)·2^(n−n/2), so n = 128 (x up to 88.72) and n = −126 stay representable.
// Relative error below 2^-23 where the result is a normal float (at most 1.01 ulp, measured
// against float64 over the range); x below −87.3365 (results below FLT_MIN, which the backend
// flushes to zero anyway) gives 0, above 88.7228 +inf, NaN stays NaN. Softmax only ever takes
// exp of x − max ≤ 0, where 2ⁿ is one factor and the upper clamp is 0: exp_shifted uses that
// cheaper form (exp8_nonpositive; the same results, 23 % less time on 450-key rows).
//
// Written with GCC's vector extensions inside functions compiled for AVX2+FMA; the callers
// check the CPU once and otherwise use the scalar loops with std::exp.
#include "tensor/cpu/vec_exp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace ncl::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

#if defined(__x86_64__) && defined(__GNUC__)

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

#define NCL_AVX2 __attribute__((target("avx2,fma")))

NCL_AVX2 inline f8 splat(float v) { return f8{} + v; }
NCL_AVX2 inline f8 load(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
NCL_AVX2 inline i8 load(const int32_t* p) {
  i8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr float kLowest = -87.33654f;  // exp of it is FLT_MIN; below: 0
constexpr float kHighest = 88.72283f;  // exp of it is FLT_MAX; above: +inf

// x = n·ln 2 + r for an x already clamped to [kLowest, kHighest]: exp(r) and n.
struct Reduced {
  f8 exp_r;
  i8 n;
};
NCL_AVX2 inline Reduced reduce(f8 x) {
  // Adding 1.5·2²³ rounds to an integer, held in the low mantissa bits of the sum.
  const f8 magic = splat(12582912.0f);
  const f8 t = x * splat(1.44269504088896341f) + magic;
  const f8 n = t - magic;
  const f8 r = (x - n * splat(0.693359375f)) + n * splat(2.12194440e-4f);
  f8 p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  return {p * (r * r) + r + splat(1.0f), (i8)t - (i8)magic};
}

NCL_AVX2 inline f8 exp8(f8 x) {
  const f8 lo = splat(kLowest), hi = splat(kHighest);
  const Reduced q = reduce(x < lo ? lo : (x > hi ? hi : x));
  const i8 half = q.n >> 1;
  const f8 scale1 = (f8)((half + 127) << 23), scale2 = (f8)((q.n - half + 127) << 23);
  const f8 y = q.exp_r * scale1 * scale2;
  return x < lo ? splat(0.0f) : (x > hi ? splat(kInf) : y);
}

// exp8 for x ≤ 0, as softmax's x − max always is (larger x counts as 0; NaN stays NaN): n lies
// in [−126, 0], so 2ⁿ is one normal float and one product, and nothing can overflow. The same
// results as exp8 there, in about 20 vector operations instead of 30.
NCL_AVX2 inline f8 exp8_nonpositive(f8 x) {
  const f8 lo = splat(kLowest);
  const Reduced q = reduce(x > 0.0f ? splat(0.0f) : (x < lo ? lo : x));
  return x < lo ? splat(0.0f) : q.exp_r * (f8)((q.n + 127) << 23);
}

// The sum and the maximum of a register's 8 lanes, in three rounds that each fold the upper
// half of the lanes onto the lower (a chain of 3 operations rather than 7; on the 32-key rows
// of attention the chain of 7 was a fifth of softmax's time).
NCL_AVX2 inline float horizontal_sum(f8 v) {
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
  v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
  return v[0];
}
NCL_AVX2 inline f8 lane_max(f8 a, f8 b) { return b > a ? b : a; }
NCL_AVX2 inline float horizontal_max(f8 v) {
  v = lane_max(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));
  v = lane_max(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5));
  v = lane_max(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6));
  return v[0];
}

NCL_AVX2 float row_max_avx2(const float* x, const int32_t* mask, int64_t n) {
  f8 m = splat(-kInf);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f8 v = load(x + i);
    if (mask) v = load(mask + i) != 0 ? splat(-kInf) : v;
    m = lane_max(m, v);
  }
  float out = horizontal_max(m);
  for (; i < n; ++i)
    if ((!mask || !mask[i]) && x[i] > out) out = x[i];
  return out;
}

NCL_AVX2 float exp_shifted_avx2(const float* x, const int32_t* mask, float shift, float* y,
                                int64_t n) {
  const f8 s = splat(shift);
  f8 sum = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f8 e = exp8_nonpositive(load(x + i) - s);
    if (mask) e = load(mask + i) != 0 ? splat(0.0f) : e;
    if (y) std::memcpy(y + i, &e, sizeof e);
    sum += e;
  }
  if (i < n) {  // the last partial group, padded with masked lanes
    float xt[8], yt[8];
    int32_t mt[8];
    for (int k = 0; k < 8; ++k) {
      const bool in = i + k < n;
      xt[k] = in ? x[i + k] : shift;
      mt[k] = in ? (mask ? mask[i + k] : 0) : 1;
    }
    f8 e = exp8_nonpositive(load(xt) - s);
    e = load(mt) != 0 ? splat(0.0f) : e;
    std::memcpy(yt, &e, sizeof e);
    if (y) std::copy_n(yt, n - i, y + i);
    sum += e;
  }
  return horizontal_sum(sum);
}

NCL_AVX2 void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const f8 e = exp8(load(x + i));
    std::memcpy(y + i, &e, sizeof e);
  }
  if (i < n) {  // the last partial group, padded with zeros
    float xt[8] = {}, yt[8];
    std::copy_n(x + i, n - i, xt);
    const f8 e = exp8(load(xt));
    std::memcpy(yt, &e, sizeof e);
    std::copy_n(yt, n - i, y + i);
  }
}

NCL_AVX2 void scale_row_avx2(float* y, float s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    f8 v = load(y + i) * splat(s);
    std::memcpy(y + i, &v, sizeof v);
  }
  for (; i < n; ++i) y[i] *= s;
}

// A row of V·8 entries without a mask, held in V registers from one load to one store: on the
// 32-key rows of attention the three passes of the general path cost half as much again.
template <int V>
NCL_AVX2 void softmax_short_row(const float* x, float* y) {
  f8 v[V];
  f8 m = splat(-kInf);
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) m = lane_max(m, v[j] = load(x + 8 * j));
  const float mx = horizontal_max(m);
  if (mx == -kInf) {
    std::fill_n(y, 8 * V, 0.0f);
    return;
  }
  f8 sum = {};
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) sum += v[j] = exp8_nonpositive(v[j] - mx);
  const f8 inv = splat(1.0f / horizontal_sum(sum));
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) {
    const f8 out = v[j] * inv;
    std::memcpy(y + 8 * j, &out, sizeof out);
  }
}

NCL_AVX2 void softmax_row_avx2(const float* x, const int32_t* mask, float* y, int64_t n) {
  if (!mask) switch (n) {
      case 8: return softmax_short_row<1>(x, y);
      case 16: return softmax_short_row<2>(x, y);
      case 24: return softmax_short_row<3>(x, y);
      case 32: return softmax_short_row<4>(x, y);
      case 40: return softmax_short_row<5>(x, y);
      case 48: return softmax_short_row<6>(x, y);
      case 56: return softmax_short_row<7>(x, y);
      case 64: return softmax_short_row<8>(x, y);
      default: break;
    }
  const float mx = row_max_avx2(x, mask, n);
  if (mx == -kInf) {
    std::fill_n(y, n, 0.0f);
    return;
  }
  scale_row_avx2(y, 1.0f / exp_shifted_avx2(x, mask, mx, y, n), n);
}

NCL_AVX2 void softmax_backward_row_avx2(const float* y, const float* dy, float* dx, int64_t n) {
  f8 s0 = {}, s1 = {};  // two running sums: one would chain every FMA on the previous one
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 += load(dy + i) * load(y + i);
    s1 += load(dy + i + 8) * load(y + i + 8);
  }
  if (i + 8 <= n) {
    s0 += load(dy + i) * load(y + i);
    i += 8;
  }
  float dot = horizontal_sum(s0 + s1);
  for (; i < n; ++i) dot += dy[i] * y[i];
  const f8 d = splat(dot);
  for (i = 0; i + 8 <= n; i += 8) {
    const f8 v = load(y + i) * (load(dy + i) - d);
    std::memcpy(dx + i, &v, sizeof v);
  }
  for (; i < n; ++i) dx[i] = y[i] * (dy[i] - dot);
}

// Softmax down a strip of V·8 columns: the strip's maxima and sums stay in 2V registers over
// three passes down the rows (maximum; exp and sum; scaling).
template <int V>
NCL_AVX2 void softmax_column_strip(const float* x, const int32_t* mask, float* y, int64_t rows,
                                   int64_t ld) {
  f8 mx[V], sum[V], inv[V];
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) mx[j] = splat(-kInf), sum[j] = f8{};
  for (int64_t r = 0; r < rows; ++r) {
    if (mask && mask[r]) continue;
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) mx[j] = lane_max(mx[j], load(x + r * ld + 8 * j));
  }
  // A column without an unmasked maximum (every row masked) takes +inf as its shift: each of its
  // exps is then exp(−inf) = 0 rather than exp(x + inf).
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) mx[j] = mx[j] == -kInf ? splat(kInf) : mx[j];
  for (int64_t r = 0; r < rows; ++r) {
    if (mask && mask[r]) {
      std::fill_n(y + r * ld, 8 * V, 0.0f);
      continue;
    }
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) {
      const f8 e = exp8_nonpositive(load(x + r * ld + 8 * j) - mx[j]);
      std::memcpy(y + r * ld + 8 * j, &e, sizeof e);
      sum[j] += e;
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) inv[j] = sum[j] > 0.0f ? splat(1.0f) / sum[j] : splat(0.0f);
  for (int64_t r = 0; r < rows; ++r) {
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) {
      const f8 v = load(y + r * ld + 8 * j) * inv[j];
      std::memcpy(y + r * ld + 8 * j, &v, sizeof v);
    }
  }
}

// The backward on a strip of V·8 columns: column dot products in V registers, then dx.
template <int V>
NCL_AVX2 void softmax_column_strip_backward(const float* y, const float* dy, float* dx,
                                            int64_t rows, int64_t ld) {
  f8 dot[V];
#pragma GCC unroll 8
  for (int j = 0; j < V; ++j) dot[j] = f8{};
  for (int64_t r = 0; r < rows; ++r) {
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) dot[j] += load(dy + r * ld + 8 * j) * load(y + r * ld + 8 * j);
  }
  for (int64_t r = 0; r < rows; ++r) {
#pragma GCC unroll 8
    for (int j = 0; j < V; ++j) {
      const f8 v = load(y + r * ld + 8 * j) * (load(dy + r * ld + 8 * j) - dot[j]);
      std::memcpy(dx + r * ld + 8 * j, &v, sizeof v);
    }
  }
}

// Whole strips of 32 columns, then one of 8–24; returns the columns done (a multiple of 8).
NCL_AVX2 int64_t softmax_columns_avx2(const float* x, const int32_t* mask, float* y,
                                      int64_t rows, int64_t cols, int64_t ld) {
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) softmax_column_strip<4>(x + c, mask, y + c, rows, ld);
  switch ((cols - c) / 8) {
    case 3: softmax_column_strip<3>(x + c, mask, y + c, rows, ld); return c + 24;
    case 2: softmax_column_strip<2>(x + c, mask, y + c, rows, ld); return c + 16;
    case 1: softmax_column_strip<1>(x + c, mask, y + c, rows, ld); return c + 8;
    default: return c;
  }
}

NCL_AVX2 int64_t softmax_columns_backward_avx2(const float* y, const float* dy, float* dx,
                                               int64_t rows, int64_t cols, int64_t ld) {
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32)
    softmax_column_strip_backward<4>(y + c, dy + c, dx + c, rows, ld);
  switch ((cols - c) / 8) {
    case 3: softmax_column_strip_backward<3>(y + c, dy + c, dx + c, rows, ld); return c + 24;
    case 2: softmax_column_strip_backward<2>(y + c, dy + c, dx + c, rows, ld); return c + 16;
    case 1: softmax_column_strip_backward<1>(y + c, dy + c, dx + c, rows, ld); return c + 8;
    default: return c;
  }
}

bool has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

#else

bool has_avx2() { return false; }
float row_max_avx2(const float*, const int32_t*, int64_t) { return 0.0f; }
float exp_shifted_avx2(const float*, const int32_t*, float, float*, int64_t) { return 0.0f; }
void exp_avx2(const float*, float*, int64_t) {}
void scale_row_avx2(float*, float, int64_t) {}
void softmax_row_avx2(const float*, const int32_t*, float*, int64_t) {}
void softmax_backward_row_avx2(const float*, const float*, float*, int64_t) {}
int64_t softmax_columns_avx2(const float*, const int32_t*, float*, int64_t, int64_t, int64_t) {
  return 0;
}
int64_t softmax_columns_backward_avx2(const float*, const float*, float*, int64_t, int64_t,
                                      int64_t) {
  return 0;
}

#endif

}  // namespace

float row_max(const float* x, const int32_t* mask, int64_t n) {
  if (has_avx2()) return row_max_avx2(x, mask, n);
  float out = -kInf;
  for (int64_t i = 0; i < n; ++i)
    if ((!mask || !mask[i]) && x[i] > out) out = x[i];
  return out;
}

float exp_shifted(const float* x, const int32_t* mask, float shift, float* y, int64_t n) {
  if (has_avx2()) return exp_shifted_avx2(x, mask, shift, y, n);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float e = (mask && mask[i]) ? 0.0f : std::exp(x[i] - shift);
    if (y) y[i] = e;
    sum += e;
  }
  return sum;
}

void softmax_row(const float* x, const int32_t* mask, float* y, int64_t n) {
  if (has_avx2()) return softmax_row_avx2(x, mask, y, n);
  const float mx = row_max(x, mask, n);
  if (mx == -kInf) {
    std::fill_n(y, n, 0.0f);
    return;
  }
  const float inv = 1.0f / exp_shifted(x, mask, mx, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n) {
  if (has_avx2()) return softmax_backward_row_avx2(y, dy, dx, n);
  float dot = 0.0f;
  for (int64_t i = 0; i < n; ++i) dot += dy[i] * y[i];
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (dy[i] - dot);
}

void softmax_columns(const float* x, const int32_t* row_mask, float* y, int64_t rows, int64_t cols,
                     int64_t ld) {
  const int64_t done = has_avx2() ? softmax_columns_avx2(x, row_mask, y, rows, cols, ld) : 0;
  for (int64_t c = done; c < cols; ++c) {  // the columns left, one at a time
    float mx = -kInf, sum = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      if ((!row_mask || !row_mask[r]) && x[r * ld + c] > mx) mx = x[r * ld + c];
    for (int64_t r = 0; r < rows; ++r) {
      const bool zero = (row_mask && row_mask[r]) || mx == -kInf;
      sum += y[r * ld + c] = zero ? 0.0f : std::exp(x[r * ld + c] - mx);
    }
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int64_t r = 0; r < rows; ++r) y[r * ld + c] *= inv;
  }
}

void softmax_columns_backward(const float* y, const float* dy, float* dx, int64_t rows,
                              int64_t cols, int64_t ld) {
  const int64_t done = has_avx2() ? softmax_columns_backward_avx2(y, dy, dx, rows, cols, ld) : 0;
  for (int64_t c = done; c < cols; ++c) {
    float dot = 0.0f;
    for (int64_t r = 0; r < rows; ++r) dot += dy[r * ld + c] * y[r * ld + c];
    for (int64_t r = 0; r < rows; ++r) dx[r * ld + c] = y[r * ld + c] * (dy[r * ld + c] - dot);
  }
}

bool exp_vector(const float* x, float* y, int64_t n) {
  if (!has_avx2()) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
    return false;
  }
  exp_avx2(x, y, n);
  return true;
}

}  // namespace ncl::cpu

// Row softmax / log-softmax / logsumexp with an optional key mask (1 = key removed), the mirror
// of cpu/softmax.cpp: one warp per row, 8 rows per block; the lanes stride over the columns and
// meet in warp-shuffle reductions (max, then Σ exp(x - max)), so any row length works.
//
// Stability: subtract the row maximum over unmasked entries before exp. A fully masked row
// yields 0 everywhere (never NaN) and zero gradient; its logsumexp is -inf. Softmax down the
// columns (attention with the keys down the rows): one thread per column.
#include <cmath>

#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

template <class T>
__device__ T minus_infinity() {
  return -T(INFINITY);
}

// This warp's row and lane; the row is >= rows for the idle warps of the last block.
__device__ inline int64_t warp_row() {
  return int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
}
__device__ inline int warp_lane() { return int(threadIdx.x % kWarp); }

// The mask row for x's row r, or nullptr when there is no mask.
__device__ inline const int32_t* mask_row(const int32_t* mask, const SoftmaxArgs& a, int64_t r) {
  return mask ? mask + ((r / a.group) % a.mask_rows) * a.cols : nullptr;
}

// Over the unmasked entries of one row: the maximum, Σ exp(x - max) and their count. Every
// lane of the warp receives all three.
template <class T>
struct RowStats {
  T max, sum;
  int count;
};

template <class T>
__device__ RowStats<T> row_stats(const T* x, const int32_t* m, int64_t cols, int lane) {
  T mx = minus_infinity<T>();
  int count = 0;
  for (int64_t c = lane; c < cols; c += kWarp)
    if (!m || !m[c]) {
      mx = x[c] > mx ? x[c] : mx;
      ++count;
    }
  mx = warp_max(mx);
  count = warp_sum(count);
  T sum = 0;
  if (count > 0)
    for (int64_t c = lane; c < cols; c += kWarp)
      if (!m || !m[c]) sum += exp(x[c] - mx);
  return {mx, warp_sum(sum), count};
}

// softmax:     y = exp(x - max) / Σ exp(x - max)
// log_softmax: y = x - max - log Σ exp(x - max)
template <class T>
__global__ void softmax_forward_kernel(const T* x, const int32_t* mask, T* y, SoftmaxArgs a) {
  const int64_t r = warp_row();
  if (r >= a.rows) return;  // whole warps leave together
  const int lane = warp_lane();
  const T* xr = x + r * a.cols;
  T* yr = y + r * a.cols;
  const int32_t* m = mask_row(mask, a, r);
  RowStats<T> s = row_stats(xr, m, a.cols, lane);
  if (a.log) {
    T log_sum = log(s.sum);
    for (int64_t c = lane; c < a.cols; c += kWarp)
      yr[c] = (s.count == 0 || (m && m[c])) ? T(0) : xr[c] - s.max - log_sum;
  } else {
    bool empty = s.max == minus_infinity<T>();  // fully masked, as the CPU decides it
    T inv = T(1) / s.sum;
    for (int64_t c = lane; c < a.cols; c += kWarp)
      yr[c] = (empty || (m && m[c])) ? T(0) : exp(xr[c] - s.max) * inv;
  }
}

// softmax:     dx_c = y_c (dy_c - Σ_j dy_j y_j)
// log_softmax: dx_c = dy_c - exp(y_c) Σ_j dy_j          (sums over unmasked j)
template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* dy, const int32_t* mask, T* dx,
                                        SoftmaxArgs a) {
  const int64_t r = warp_row();
  if (r >= a.rows) return;
  const int lane = warp_lane();
  const T* yr = y + r * a.cols;
  const T* gr = dy + r * a.cols;
  T* dr = dx + r * a.cols;
  const int32_t* m = mask_row(mask, a, r);
  T dot = 0;
  int count = 0;
  for (int64_t c = lane; c < a.cols; c += kWarp)
    if (!m || !m[c]) {
      dot += a.log ? gr[c] : gr[c] * yr[c];
      ++count;
    }
  dot = warp_sum(dot);
  count = warp_sum(count);
  for (int64_t c = lane; c < a.cols; c += kWarp) {
    if (count == 0 || (m && m[c]))
      dr[c] = T(0);
    else if (a.log)
      dr[c] = gr[c] - exp(yr[c]) * dot;
    else
      dr[c] = yr[c] * (gr[c] - dot);
  }
}

// out[r] = max + log Σ exp(x - max), or -inf for a fully masked row.
template <class T>
__global__ void logsumexp_kernel(const T* x, const int32_t* mask, T* out, SoftmaxArgs a) {
  const int64_t r = warp_row();
  if (r >= a.rows) return;
  const int lane = warp_lane();
  RowStats<T> s = row_stats(x + r * a.cols, mask_row(mask, a, r), a.cols, lane);
  if (lane == 0) out[r] = s.count == 0 ? minus_infinity<T>() : s.max + log(s.sum);
}

// Softmax down one column c of entry e: three passes down the rows.
template <class T>
__device__ void softmax_column(const T* x, const int32_t* mask, T* y, const ColumnSoftmaxArgs& a,
                               int64_t e, int64_t c) {
  const T* xc = x + e * a.rows * a.cols + c;
  T* yc = y + e * a.rows * a.cols + c;
  const int32_t* m = a.mask_rows > 0 ? mask + (e % a.mask_rows) * a.rows : nullptr;
  T mx = minus_infinity<T>();
  for (int64_t r = 0; r < a.rows; ++r)
    if (!m || !m[r]) mx = xc[r * a.cols] > mx ? xc[r * a.cols] : mx;
  const bool empty = mx == minus_infinity<T>();  // fully masked, as the CPU decides it
  T sum = 0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const T v = (empty || (m && m[r])) ? T(0) : exp(xc[r * a.cols] - mx);
    yc[r * a.cols] = v;
    sum += v;
  }
  const T inv = sum > T(0) ? T(1) / sum : T(0);
  for (int64_t r = 0; r < a.rows; ++r) yc[r * a.cols] *= inv;
}

// One thread per (entry, column), neighbouring threads on neighbouring columns, so that each
// row's loads coalesce.
template <class T>
__global__ void softmax_columns_kernel(const T* x, const int32_t* mask, T* y,
                                       ColumnSoftmaxArgs a) {
  for (int64_t i = flat_index(); i < a.entries * a.cols; i += flat_stride())
    softmax_column(x, mask, y, a, i / a.cols, i % a.cols);
}

// dx = y ⊙ (dy − Σ_rows dy ⊙ y), one thread per (entry, column).
template <class T>
__global__ void softmax_columns_backward_kernel(const T* y, const T* dy, T* dx,
                                                ColumnSoftmaxArgs a) {
  for (int64_t i = flat_index(); i < a.entries * a.cols; i += flat_stride()) {
    const int64_t start = (i / a.cols) * a.rows * a.cols + i % a.cols;
    T dot = 0;
    for (int64_t r = 0; r < a.rows; ++r) dot += dy[start + r * a.cols] * y[start + r * a.cols];
    for (int64_t r = 0; r < a.rows; ++r) {
      const int64_t j = start + r * a.cols;
      dx[j] = y[j] * (dy[j] - dot);
    }
  }
}

const int32_t* mask_data(const Tensor& mask) {
  return mask.defined() ? static_cast<const int32_t*>(mask.raw_data()) : nullptr;
}

}  // namespace

void softmax_forward(const Tensor& x, const Tensor& mask, Tensor& y, const SoftmaxArgs& a) {
  if (a.rows == 0 || a.cols == 0) return;
  dispatch_float(x.dtype(), "softmax_forward", [&](auto zero) {
    using T = decltype(zero);
    softmax_forward_kernel<T><<<row_grid(a.rows), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), mask_data(mask), static_cast<T*>(y.raw_data()), a);
    CUDA_CHECK_LAUNCH("softmax_forward_kernel");
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& mask, Tensor& dx,
                      const SoftmaxArgs& a) {
  if (a.rows == 0 || a.cols == 0) return;
  dispatch_float(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_kernel<T><<<row_grid(a.rows), kBlock, 0, stream()>>>(
        static_cast<const T*>(y.raw_data()), static_cast<const T*>(dy.raw_data()), mask_data(mask),
        static_cast<T*>(dx.raw_data()), a);
    CUDA_CHECK_LAUNCH("softmax_backward_kernel");
  });
}

void logsumexp_forward(const Tensor& x, const Tensor& mask, Tensor& out, const SoftmaxArgs& a) {
  if (a.rows == 0) return;
  dispatch_float(x.dtype(), "logsumexp_forward", [&](auto zero) {
    using T = decltype(zero);
    logsumexp_kernel<T><<<row_grid(a.rows), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), mask_data(mask), static_cast<T*>(out.raw_data()), a);
    CUDA_CHECK_LAUNCH("logsumexp_kernel");
  });
}

void softmax_columns_forward(const Tensor& x, const Tensor& mask, Tensor& y,
                             const ColumnSoftmaxArgs& a) {
  if (a.entries * a.rows * a.cols == 0) return;
  dispatch_float(x.dtype(), "softmax_columns_forward", [&](auto zero) {
    using T = decltype(zero);
    softmax_columns_kernel<T><<<flat_grid(a.entries * a.cols), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), mask_data(mask), static_cast<T*>(y.raw_data()), a);
    CUDA_CHECK_LAUNCH("softmax_columns_kernel");
  });
}

void softmax_columns_backward(const Tensor& y, const Tensor& dy, Tensor& dx,
                              const ColumnSoftmaxArgs& a) {
  if (a.entries * a.rows * a.cols == 0) return;
  dispatch_float(y.dtype(), "softmax_columns_backward", [&](auto zero) {
    using T = decltype(zero);
    softmax_columns_backward_kernel<T><<<flat_grid(a.entries * a.cols), kBlock, 0, stream()>>>(
        static_cast<const T*>(y.raw_data()), static_cast<const T*>(dy.raw_data()),
        static_cast<T*>(dx.raw_data()), a);
    CUDA_CHECK_LAUNCH("softmax_columns_backward_kernel");
  });
}

}  // namespace ncl::cuda

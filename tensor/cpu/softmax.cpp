// Row softmax / log-softmax / logsumexp with an optional key mask (1 = key removed), and
// softmax down the columns (attention with the keys down the rows).
//
// Stability: subtract the row maximum over unmasked entries before exp, so ±1e4 inputs work.
// A fully masked row has no maximum; it yields 0 everywhere (never NaN) and zero gradient.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_exp.h"

namespace ncl::cpu {
namespace {

// The mask row for x's row r, or nullptr when there is no mask.
const int32_t* mask_row(const Tensor& mask, const SoftmaxArgs& a, int64_t r) {
  if (!mask.defined()) return nullptr;
  return mask.data<int32_t>() + ((r / a.group) % a.mask_rows) * a.cols;
}

// Σ x[c]·y[c] (y == nullptr: Σ x[c]) over c < n in eight running sums: one sum would chain
// every addition on the previous one (the compiler may not reorder float additions), and on
// the attention rows of softmax's backward that chain cost more than the rest of the pass.
template <class T>
T dot(const T* x, const T* y, int64_t n) {
  T s[8] = {};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int j = 0; j < 8; ++j) s[j] += y ? x[c + j] * y[c + j] : x[c + j];
  T tail = 0;
  for (; c < n; ++c) tail += y ? x[c] * y[c] : x[c];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

// Max and log Σ exp(x - max) over the unmasked entries of one row; count = unmasked entries.
// F32 rows use the vectorised primitives of vec_exp.h.
template <class T>
void row_stats(const T* x, const int32_t* m, int64_t cols, T* max_out, T* log_sum, int64_t* count) {
  *count = m ? std::count(m, m + cols, 0) : cols;
  if constexpr (std::is_same_v<T, float>) {
    *max_out = row_max(x, m, cols);
    *log_sum = std::log(exp_shifted(x, m, *max_out, nullptr, cols));
  } else {
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < cols; ++c)
      if (!m || !m[c]) mx = std::max(mx, x[c]);
    T s = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (!m || !m[c]) s += std::exp(x[c] - mx);
    *max_out = mx;
    *log_sum = std::log(s);
  }
}

// One softmax row, y = exp(x − max) / Σ exp(x − max) over the unmasked entries, one exp per
// entry; masked entries and fully masked rows give 0.
template <class T>
void softmax_of_row(const T* x, const int32_t* m, int64_t cols, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    softmax_row(x, m, y, cols);
  } else {
    T mx = -std::numeric_limits<T>::infinity();
    if (m) {
      for (int64_t c = 0; c < cols; ++c)
        if (!m[c]) mx = std::max(mx, x[c]);
    } else {  // no mask (attention in training): branch-free loops
      for (int64_t c = 0; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
    }
    if (mx == -std::numeric_limits<T>::infinity()) {
      std::fill_n(y, cols, T(0));
      return;
    }
    T sum = 0;
    if (m) {
      for (int64_t c = 0; c < cols; ++c) {
        T e = m[c] ? T(0) : std::exp(x[c] - mx);
        y[c] = e;
        sum += e;
      }
    } else {
      for (int64_t c = 0; c < cols; ++c) sum += y[c] = std::exp(x[c] - mx);
    }
    T inv = T(1) / sum;
    for (int64_t c = 0; c < cols; ++c) y[c] *= inv;
  }
}

// Softmax down the columns of one entry (rows × cols): float32 on vec_exp.h's vector path,
// float64 here, with the same rules for masked rows and empty columns.
template <class T>
void softmax_columns_of(const T* x, const int32_t* m, T* y, int64_t rows, int64_t cols) {
  if constexpr (std::is_same_v<T, float>) {
    softmax_columns(x, m, y, rows, cols, cols);
  } else {
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    std::vector<T> mx(size_t(cols), kNegInf), sum(size_t(cols), T(0));
    for (int64_t r = 0; r < rows; ++r)
      if (!m || !m[r])
        for (int64_t c = 0; c < cols; ++c) mx[c] = std::max(mx[c], x[r * cols + c]);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const bool zero = (m && m[r]) || mx[c] == kNegInf;
        sum[c] += y[r * cols + c] = zero ? T(0) : std::exp(x[r * cols + c] - mx[c]);
      }
    for (int64_t c = 0; c < cols; ++c) sum[c] = sum[c] > T(0) ? T(1) / sum[c] : T(0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) y[r * cols + c] *= sum[c];
  }
}

template <class T>
void softmax_columns_backward_of(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  if constexpr (std::is_same_v<T, float>) {
    softmax_columns_backward(y, dy, dx, rows, cols, cols);
  } else {
    std::vector<T> dot(size_t(cols), T(0));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) dot[c] += dy[r * cols + c] * y[r * cols + c];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot[c]);
  }
}

}  // namespace

void softmax_forward(const Tensor& x, const Tensor& mask, Tensor& y, const SoftmaxArgs& a) {
  dispatch_float(x.dtype(), "softmax_forward", [&](auto zero) {
    using T = decltype(zero);
    parallel_for(a.rows, grain(4 * a.cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x.data<T>() + r * a.cols;
        T* yr = y.data<T>() + r * a.cols;
        const int32_t* m = mask_row(mask, a, r);
        if (a.log) {
          T mx, log_sum;
          int64_t count;
          row_stats(xr, m, a.cols, &mx, &log_sum, &count);
          for (int64_t c = 0; c < a.cols; ++c)
            yr[c] = (count == 0 || (m && m[c])) ? T(0) : xr[c] - mx - log_sum;
          continue;
        }
        softmax_of_row(xr, m, a.cols, yr);
      }
    });
  });
}

// softmax:     dx_c = y_c (dy_c - Σ_j dy_j y_j)
// log_softmax: dx_c = dy_c - exp(y_c) Σ_j dy_j          (sums over unmasked j)
void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& mask, Tensor& dx,
                      const SoftmaxArgs& a) {
  dispatch_float(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    parallel_for(a.rows, grain(2 * a.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* yr = y.data<T>() + r * a.cols;
      const T* gr = dy.data<T>() + r * a.cols;
      T* dr = dx.data<T>() + r * a.cols;
      const int32_t* m = mask_row(mask, a, r);
      if (!m) {  // no mask: every entry counts; branch-free loops
        if (a.log) {
          const T total = dot<T>(gr, nullptr, a.cols);
          for (int64_t c = 0; c < a.cols; ++c) dr[c] = gr[c] - std::exp(yr[c]) * total;
        } else if constexpr (std::is_same_v<T, float>) {
          softmax_backward_row(yr, gr, dr, a.cols);
        } else {
          const T total = dot(gr, yr, a.cols);
          for (int64_t c = 0; c < a.cols; ++c) dr[c] = yr[c] * (gr[c] - total);
        }
        continue;
      }
      int64_t count = 0;
      T dot = 0;
      for (int64_t c = 0; c < a.cols; ++c)
        if (!m[c]) {
          dot += a.log ? gr[c] : gr[c] * yr[c];
          ++count;
        }
      for (int64_t c = 0; c < a.cols; ++c) {
        if (count == 0 || m[c]) dr[c] = T(0);
        else if (a.log) dr[c] = gr[c] - std::exp(yr[c]) * dot;
        else dr[c] = yr[c] * (gr[c] - dot);
      }
    }
    });
  });
}

void logsumexp_forward(const Tensor& x, const Tensor& mask, Tensor& out, const SoftmaxArgs& a) {
  dispatch_float(x.dtype(), "logsumexp_forward", [&](auto zero) {
    using T = decltype(zero);
    parallel_for(a.rows, grain(4 * a.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T mx, log_sum;
      int64_t count;
      row_stats(x.data<T>() + r * a.cols, mask_row(mask, a, r), a.cols, &mx, &log_sum, &count);
      out.data<T>()[r] = count == 0 ? -std::numeric_limits<T>::infinity() : mx + log_sum;
    }
    });
  });
}

void softmax_columns_forward(const Tensor& x, const Tensor& mask, Tensor& y,
                             const ColumnSoftmaxArgs& a) {
  const int64_t size = a.rows * a.cols;
  dispatch_float(x.dtype(), "softmax_columns_forward", [&](auto zero) {
    using T = decltype(zero);
    parallel_for(a.entries, grain(4 * size), [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) {
        const int32_t* m = a.mask_rows > 0 ? mask.data<int32_t>() + (e % a.mask_rows) * a.rows
                                           : nullptr;
        softmax_columns_of(x.data<T>() + e * size, m, y.data<T>() + e * size, a.rows, a.cols);
      }
    });
  });
}

void softmax_columns_backward(const Tensor& y, const Tensor& dy, Tensor& dx,
                              const ColumnSoftmaxArgs& a) {
  const int64_t size = a.rows * a.cols;
  dispatch_float(y.dtype(), "softmax_columns_backward", [&](auto zero) {
    using T = decltype(zero);
    parallel_for(a.entries, grain(2 * size), [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e)
        softmax_columns_backward_of(y.data<T>() + e * size, dy.data<T>() + e * size,
                                    dx.data<T>() + e * size, a.rows, a.cols);
    });
  });
}

}  // namespace ncl::cpu

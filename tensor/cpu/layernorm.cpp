// Layer norm over the last axis, forward and backward (llm.c's layout: mean and rstd saved).
#include <cmath>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"

namespace ncl::cpu {

void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                        Tensor& mean, Tensor& rstd, int64_t rows, int64_t cols, double eps) {
  dispatch_float(x.dtype(), "layer_norm_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* g = gamma.data<T>();
    const T* b = beta.data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x.data<T>() + r * cols;
      T* yr = y.data<T>() + r * cols;
      T m = 0;
      for (int64_t c = 0; c < cols; ++c) m += xr[c];
      m /= T(cols);
      T var = 0;  // biased variance, as PyTorch's LayerNorm
      for (int64_t c = 0; c < cols; ++c) var += (xr[c] - m) * (xr[c] - m);
      var /= T(cols);
      T s = T(1) / std::sqrt(var + T(eps));
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * s * g[c] + b[c];
      mean.data<T>()[r] = m;
      rstd.data<T>()[r] = s;
    }
  });
}

// With x̂ = (x - mean)·rstd and ĝ = dy·gamma (per element of a row of length C):
//   dx = rstd · (ĝ - mean_c(ĝ) - x̂ · mean_c(ĝ·x̂))     term 1 - term 2 - term 3
//   dgamma = Σ_rows dy·x̂,   dbeta = Σ_rows dy
void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                         Tensor& dbeta, int64_t rows, int64_t cols) {
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* g = gamma.data<T>();
    T* dg = dgamma.data<T>();
    T* db = dbeta.data<T>();
    for (int64_t c = 0; c < cols; ++c) dg[c] = db[c] = T(0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x.data<T>() + r * cols;
      const T* gr = dy.data<T>() + r * cols;
      T* dr = dx.data<T>() + r * cols;
      T m = mean.data<T>()[r], s = rstd.data<T>()[r];
      T mean_g = 0, mean_gx = 0;
      for (int64_t c = 0; c < cols; ++c) {
        T xhat = (xr[c] - m) * s;
        T ghat = gr[c] * g[c];
        mean_g += ghat;
        mean_gx += ghat * xhat;
        dg[c] += gr[c] * xhat;
        db[c] += gr[c];
      }
      mean_g /= T(cols);
      mean_gx /= T(cols);
      for (int64_t c = 0; c < cols; ++c) {
        T xhat = (xr[c] - m) * s;
        dr[c] = s * (gr[c] * g[c] - mean_g - xhat * mean_gx);
      }
    }
  });
}

}  // namespace ncl::cpu

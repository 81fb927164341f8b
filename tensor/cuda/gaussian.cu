// Diagonal Gaussian log-densities, forward and backward (the mirror of cpu/gaussian.cpp). One
// thread per output: (g, n, k) for the densities, (g, n, d) for dx summing over the K
// components, (g, k, d) for dmean and dsigma summing over the N points. Flat grids.
#include <cmath>
#include <numbers>

#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

// out[g,n,k] = Σ_d -½ z² - log σ - ½ log 2π,  z = (x[g,n,d] - μ[g,k,d]) / σ[g,k,d]
template <class T>
__global__ void density_kernel(const T* x, const T* mean, const T* sigma, T* out, int64_t G,
                               int64_t N, int64_t K, int64_t D, T half_log_2pi) {
  for (int64_t i = flat_index(); i < G * N * K; i += flat_stride()) {
    const int64_t k = i % K, gn = i / K, g = gn / N;
    const T* xn = x + gn * D;
    const T* mu = mean + (g * K + k) * D;
    const T* sd = sigma + (g * K + k) * D;
    T sum = 0, offset = 0;
    for (int64_t d = 0; d < D; ++d) {
      const T z = (xn[d] - mu[d]) / sd[d];
      sum += z * z;
      offset -= log(sd[d]) + half_log_2pi;
    }
    out[i] = T(-0.5) * sum + offset;
  }
}

// dx[g,n,d] = -Σ_k t·z/σ with t = dout[g,n,k]
template <class T>
__global__ void dx_kernel(const T* x, const T* mean, const T* sigma, const T* dout, T* dx,
                          int64_t G, int64_t N, int64_t K, int64_t D) {
  for (int64_t i = flat_index(); i < G * N * D; i += flat_stride()) {
    const int64_t d = i % D, gn = i / D, g = gn / N;
    T acc = 0;
    for (int64_t k = 0; k < K; ++k) {
      const T s = sigma[(g * K + k) * D + d];
      const T z = (x[i] - mean[(g * K + k) * D + d]) / s;
      acc -= dout[gn * K + k] * z / s;
    }
    dx[i] = acc;
  }
}

// dμ[g,k,d] = Σ_n t·z/σ,  dσ[g,k,d] = Σ_n t·(z² - 1)/σ
template <class T>
__global__ void dparams_kernel(const T* x, const T* mean, const T* sigma, const T* dout,
                               T* dmean, T* dsigma, int64_t G, int64_t N, int64_t K, int64_t D) {
  for (int64_t i = flat_index(); i < G * K * D; i += flat_stride()) {
    const int64_t d = i % D, gk = i / D, k = gk % K, g = gk / K;
    const T mu = mean[i], s = sigma[i];
    T dm = 0, ds = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T z = (x[(g * N + n) * D + d] - mu) / s;
      const T t = dout[(g * N + n) * K + k];
      dm += t * z / s;
      ds += t * (z * z - T(1)) / s;
    }
    dmean[i] = dm;
    dsigma[i] = ds;
  }
}

}  // namespace

void gaussian_log_density_forward(const Tensor& x, const Tensor& mean, const Tensor& sigma,
                                  Tensor& out, int64_t groups, int64_t points,
                                  int64_t components, int64_t dim) {
  const int64_t n = groups * points * components;
  if (n == 0) return;
  dispatch_float(x.dtype(), "gaussian_log_density_forward", [&](auto zero) {
    using T = decltype(zero);
    density_kernel<T><<<flat_grid(n), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(mean.raw_data()),
        static_cast<const T*>(sigma.raw_data()), static_cast<T*>(out.raw_data()), groups,
        points, components, dim, T(0.5 * std::log(2.0 * std::numbers::pi)));
    CUDA_CHECK_LAUNCH("gaussian density_kernel");
  });
}

void gaussian_log_density_backward(const Tensor& x, const Tensor& mean, const Tensor& sigma,
                                   const Tensor& dout, Tensor& dx, Tensor& dmean, Tensor& dsigma,
                                   int64_t groups, int64_t points, int64_t components,
                                   int64_t dim) {
  dispatch_float(x.dtype(), "gaussian_log_density_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pm = static_cast<const T*>(mean.raw_data());
    const T* ps = static_cast<const T*>(sigma.raw_data());
    const T* pd = static_cast<const T*>(dout.raw_data());
    if (const int64_t n = groups * points * dim; n > 0) {
      dx_kernel<T><<<flat_grid(n), kBlock, 0, stream()>>>(px, pm, ps, pd,
                                                           static_cast<T*>(dx.raw_data()), groups,
                                                           points, components, dim);
      CUDA_CHECK_LAUNCH("gaussian dx_kernel");
    }
    if (const int64_t n = groups * components * dim; n > 0) {
      dparams_kernel<T><<<flat_grid(n), kBlock, 0, stream()>>>(
          px, pm, ps, pd, static_cast<T*>(dmean.raw_data()), static_cast<T*>(dsigma.raw_data()),
          groups, points, components, dim);
      CUDA_CHECK_LAUNCH("gaussian dparams_kernel");
    }
  });
}

}  // namespace ncl::cuda

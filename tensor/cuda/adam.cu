// One fused Adam / AdamW update (the mirror of cpu/adam.cpp): one thread per parameter, flat grid.
#include <cmath>

#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

// The per-call constants, in the parameter's type (bias corrections computed on the host in
// double, exactly as the CPU does).
template <class T>
struct AdamScalars {
  T lr, beta1, beta2, eps, weight_decay, inv_c1, inv_sqrt_c2;
  bool decoupled;
};

// g' = g + wd·p (Adam, coupled L2)     or    p ← p - lr·wd·p (AdamW, decoupled)
// m ← β1 m + (1-β1) g';  v ← β2 v + (1-β2) g'²
// p ← p - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)
template <class T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, int64_t n, AdamScalars<T> a) {
  for (int64_t i = flat_index(); i < n; i += flat_stride()) {
    T gi = g[i], pi = p[i];
    if (a.decoupled)
      pi -= a.lr * a.weight_decay * pi;
    else
      gi += a.weight_decay * pi;
    T mi = a.beta1 * m[i] + (T(1) - a.beta1) * gi;
    T vi = a.beta2 * v[i] + (T(1) - a.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - a.lr * (mi * a.inv_c1) / (sqrt(vi) * a.inv_sqrt_c2 + a.eps);
  }
}

}  // namespace

void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamArgs& a) {
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_float(param.dtype(), "adam_step", [&](auto zero) {
    using T = decltype(zero);
    double c1 = 1.0 - std::pow(a.beta1, double(a.step));
    double c2 = 1.0 - std::pow(a.beta2, double(a.step));
    AdamScalars<T> s{T(a.lr),
                     T(a.beta1),
                     T(a.beta2),
                     T(a.eps),
                     T(a.weight_decay),
                     T(1.0 / c1),
                     T(1.0 / std::sqrt(c2)),
                     a.decoupled};
    adam_kernel<T><<<flat_grid(n), kBlock, 0, stream()>>>(
        static_cast<T*>(param.raw_data()), static_cast<const T*>(grad.raw_data()),
        static_cast<T*>(m.raw_data()), static_cast<T*>(v.raw_data()), n, s);
    CUDA_CHECK_LAUNCH("adam_kernel");
  });
}

}  // namespace ncl::cuda

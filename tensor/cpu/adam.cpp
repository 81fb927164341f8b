// One fused Adam / AdamW update.
#include <cmath>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"
#include "tensor/cpu/parallel.h"

namespace ncl::cpu {

// g' = g + wd·p (Adam, coupled L2)     or    p ← p - lr·wd·p (AdamW, decoupled)
// m ← β1 m + (1-β1) g';  v ← β2 v + (1-β2) g'²
// p ← p - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps)
void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamArgs& a) {
  dispatch_float(param.dtype(), "adam_step", [&](auto zero) {
    using T = decltype(zero);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* pm = m.data<T>();
    T* pv = v.data<T>();
    double c1 = 1.0 - std::pow(a.beta1, double(a.step));
    double c2 = 1.0 - std::pow(a.beta2, double(a.step));
    T lr = T(a.lr), b1 = T(a.beta1), b2 = T(a.beta2), wd = T(a.weight_decay), eps = T(a.eps);
    T inv_c1 = T(1.0 / c1), inv_sqrt_c2 = T(1.0 / std::sqrt(c2));
    // About 8 floating-point operations and a sqrt per element: worth threads from ~4k on.
    parallel_for(param.numel(), grain(8), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T gi = g[i];
        if (a.decoupled) p[i] -= lr * wd * p[i];
        else gi += wd * p[i];
        pm[i] = b1 * pm[i] + (T(1) - b1) * gi;
        pv[i] = b2 * pv[i] + (T(1) - b2) * gi * gi;
        p[i] -= lr * (pm[i] * inv_c1) / (std::sqrt(pv[i]) * inv_sqrt_c2 + eps);
      }
    });
  });
}

}  // namespace ncl::cpu

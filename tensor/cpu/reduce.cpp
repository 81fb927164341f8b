// Reductions over the middle axis of an (outer, len, inner) view.
#include <limits>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"

namespace ncl::cpu {

void reduce(ReduceOp op, const Tensor& x, Tensor& out, Tensor& argmax, int64_t outer, int64_t len,
            int64_t inner) {
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    int32_t* pi = argmax.defined() ? argmax.data<int32_t>() : nullptr;
    for (int64_t o = 0; o < outer; ++o) {
      T* row = po + o * inner;
      const T* block = px + o * len * inner;
      if (op == ReduceOp::Sum) {
        // Accumulate whole rows of `inner` at a time so the inner loop is contiguous.
        for (int64_t i = 0; i < inner; ++i) row[i] = T(0);
        for (int64_t l = 0; l < len; ++l)
          for (int64_t i = 0; i < inner; ++i) row[i] += block[l * inner + i];
      } else {
        for (int64_t i = 0; i < inner; ++i) {
          T best = -std::numeric_limits<T>::infinity();
          int32_t best_l = 0;
          for (int64_t l = 0; l < len; ++l) {
            T v = block[l * inner + i];
            if (v > best || (l == 0)) {
              best = v;
              best_l = int32_t(l);
            }
          }
          row[i] = best;
          if (pi) pi[o * inner + i] = best_l;
        }
      }
    }
  });
}

}  // namespace ncl::cpu

// Reductions over the middle axis of an (outer, len, inner) view.
#include <limits>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"
#include "tensor/cpu/parallel.h"

namespace ncl::cpu {

void reduce(ReduceOp op, const Tensor& x, Tensor& out, Tensor& argmax, int64_t outer, int64_t len,
            int64_t inner) {
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    int32_t* pi = argmax.defined() ? argmax.data<int32_t>() : nullptr;
    // Threads split the independent (outer, inner) outputs: whole outer blocks when there are
    // several, else ranges of inner columns (a bias gradient: one block of many rows).
    auto reduce_block = [&](int64_t o, int64_t i0, int64_t i1) {
      T* row = po + o * inner;
      const T* block = px + o * len * inner;
      if (op == ReduceOp::Sum) {
        // Accumulate whole rows at a time so the inner loop is contiguous.
        for (int64_t i = i0; i < i1; ++i) row[i] = T(0);
        for (int64_t l = 0; l < len; ++l)
          for (int64_t i = i0; i < i1; ++i) row[i] += block[l * inner + i];
      } else {
        for (int64_t i = i0; i < i1; ++i) {
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
    };
    if (outer > 1) {
      parallel_for(outer, grain(len * inner), [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) reduce_block(o, 0, inner);
      });
    } else {
      parallel_for(inner, std::max<int64_t>(16, grain(len)),
                   [&](int64_t i0, int64_t i1) { reduce_block(0, i0, i1); });
    }
  });
}

}  // namespace ncl::cpu

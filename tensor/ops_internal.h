// Checks and helpers shared by the two halves of the dispatcher (ops.cpp, ops_layout.cpp).
// Not part of the public API.
#pragma once

#include <array>

#include "tensor/tensor.h"

namespace ncl::ops::internal {

inline bool on_cuda(const Tensor& x) { return x.device() == Device::CUDA; }

inline void check_float(const char* op, const Tensor& x) {
  NCL_CHECK(x.defined(), op, ": input is undefined");
  NCL_CHECK(is_floating(x.dtype()), op, ": needs F32 or F64, got ", x.dtype());
}

inline void check_same(const char* op, const Tensor& a, const Tensor& b) {
  NCL_CHECK(a.defined() && b.defined(), op, ": input is undefined");
  NCL_CHECK(a.device() == b.device(), op, ": inputs on different devices (", a.device(), ", ",
            b.device(), ")");
  NCL_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", a.dtype(), ", ", b.dtype(), ")");
}

inline std::array<int64_t, Shape::kMaxRank> contiguous_strides(const Shape& shape) {
  std::array<int64_t, Shape::kMaxRank> strides{};
  int64_t s = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    strides[size_t(i)] = s;
    s *= shape[i];
  }
  return strides;
}

// Runs one GEMM on a's device and adds its FLOPs to the gemm_flops() counter (ops.cpp).
void run_gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g);

}  // namespace ncl::ops::internal

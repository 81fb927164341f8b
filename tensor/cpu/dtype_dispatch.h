// CPU kernels are templates over the element type; this picks float or double at run time.
#pragma once

#include "tensor/error.h"
#include "tensor/tensor.h"

namespace ncl::cpu {

// Calls fn(T{}) with T = float for F32 and double for F64.
template <class Fn>
void dispatch_float(DType dtype, const char* op, Fn&& fn) {
  if (dtype == DType::F32) fn(float{});
  else if (dtype == DType::F64) fn(double{});
  else NCL_CHECK(false, op, ": unsupported dtype ", dtype);
}

}  // namespace ncl::cpu

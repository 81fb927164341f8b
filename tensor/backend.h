// The two backends, declared from one list (tensor/kernels.inc) so their signatures are
// identical. tensor/cpu/*.cpp defines ncl::cpu; tensor/cuda/*.cu (or tensor/cuda/stub.cpp when
// ncl is built without CUDA) defines ncl::cuda. Only tensor/ops.cpp and tensor/*.cpp call these.
#pragma once

#include <cstddef>
#include <functional>

#include "tensor/kernel_args.h"
#include "tensor/tensor.h"

namespace ncl::cpu {
#include "tensor/kernels.inc"

// The textbook triple loop, kept as the test oracle for gemm (same contract as gemm).
void gemm_naive(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& args);
// The CPU kernels' thread count (tensor/cpu/parallel.h).
void set_threads(int threads);
int threads();
// Runs f(group, begin, end) over [0, n) in at most threads() contiguous groups, one thread each
// (parallel.h); returns the number of groups. Rethrows the first group's exception.
int run_groups(int64_t n, const std::function<void(int, int64_t, int64_t)>& f);
}  // namespace ncl::cpu

namespace ncl::cuda {
#include "tensor/kernels.inc"

bool available();  // a device is present and usable (false when built without CUDA); never throws
// Whether cuBLAS may use TF32 tensor cores for F32 GEMMs (about 1e-3 relative error instead of
// 1e-6). Off by default, so GPU results match the CPU's; a no-op when built without CUDA.
void set_allow_tf32(bool allow);
bool allow_tf32();
// Waits until every kernel launched so far has finished (for timing); a no-op without CUDA.
void synchronize();
// Opens cuBLAS now instead of at the first GPU product (tensor/cuda/context.h says why it is
// loaded on demand). Needs no device; throws why it cannot (without CUDA: "built without").
void load_cublas();
}  // namespace ncl::cuda

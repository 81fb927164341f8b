// What every CUDA kernel file shares (tensor/cuda/*.cu only; the rest of ncl sees backend.h).
//
// One device (0), one stream and one cuBLAS handle bound to it, created on first use and kept
// until the process exits. Every kernel and cuBLAS call runs on stream(), so kernels run in the
// order they were issued; copies to the host synchronise the stream, so host code always sees
// finished results. Host code drives the GPU from one thread at a time.
//
// Errors: CUDA_CHECK(call), CUBLAS_CHECK(call) and CUDA_CHECK_LAUNCH("kernel") throw ncl::Error
// naming the call, file:line and the CUDA error string. A kernel that faults is reported by
// the next checked call; CUDA_LAUNCH_BLOCKING=1 makes that the launch itself.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "tensor/error.h"
#include "tensor/tensor.h"

namespace ncl::cuda {

// Throws "no usable CUDA device (why); HINT: ..." for `op` unless available().
void require_device(const char* op);
cudaStream_t stream();
cublasHandle_t cublas();  // bound to stream()

// cuBLAS is opened with dlopen when the first GPU product needs it, not linked: a linked
// libcublas maps libcublasLt into every ncl process, about 210 MiB of resident memory and
// 0.1 s at start, though a CPU run never calls it. The functions ncl calls, with cuBLAS's own
// types (cublas_v2.h's names, so cublasCreate is cublasCreate_v2):
struct Cublas {
  decltype(&cublasCreate) create;
  decltype(&cublasSetStream) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSgemmStridedBatched) sgemm_strided_batched;
  decltype(&cublasDgemmStridedBatched) dgemm_strided_batched;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};
// Loads libcublas.so.<major> on the first call: from the executable's library path (its
// RUNPATH holds the toolkit's folder), else from the toolkit ncl was built against. Throws
// naming the file or the missing function when it cannot.
const Cublas& cublas_api();

[[noreturn]] void fail_cuda(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line);
inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) fail_cuda(status, call, file, line);
}
inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) fail_cublas(status, call, file, line);
}

// Calls fn(T{}) with T = float for F32 and double for F64 (as tensor/cpu/dtype_dispatch.h).
template <class Fn>
void dispatch_float(DType dtype, const char* op, Fn&& fn) {
  if (dtype == DType::F32)
    fn(float{});
  else if (dtype == DType::F64)
    fn(double{});
  else
    NCL_CHECK(false, "cuda::", op, ": unsupported dtype ", dtype);
}

// ---- launch shapes -------------------------------------------------------------------------
// Flat kernels: 256 threads a block and a grid-stride loop, so any n fits a bounded grid.
constexpr int kBlock = 256;
inline unsigned flat_grid(int64_t n) {
  return unsigned(std::clamp<int64_t>((n + kBlock - 1) / kBlock, 1, 65536));
}
// Row kernels (softmax, layer norm): one warp a row, 8 rows a block.
constexpr int kWarp = 32, kRowsPerBlock = kBlock / kWarp;
inline unsigned row_grid(int64_t rows) {
  return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

// ---- device helpers ------------------------------------------------------------------------
// for (int64_t i = flat_index(); i < n; i += flat_stride()) covers [0, n) once.
__device__ inline int64_t flat_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline int64_t flat_stride() { return int64_t(gridDim.x) * blockDim.x; }

// Butterfly reductions: every lane of the warp receives the result.
template <class T>
__device__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
template <class T>
__device__ T warp_max(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    T other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = other > v ? other : v;
  }
  return v;
}

}  // namespace ncl::cuda

#define CUDA_CHECK(call) ::ncl::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::ncl::cuda::check_cublas((call), #call, __FILE__, __LINE__)
// After every <<<...>>>: a bad launch configuration is reported here, at the launch.
#define CUDA_CHECK_LAUNCH(kernel) \
  ::ncl::cuda::check_cuda(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)

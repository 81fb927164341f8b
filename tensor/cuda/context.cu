// The CUDA backend's device probe, stream, cuBLAS handle, TF32 switch and error reporting.
#include <atomic>
#include <string>

#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

// Why the device cannot be used ("" when it can), found once. The probe creates the primary
// context (cudaFree(nullptr)), so a device that exists but cannot be opened counts as absent.
const std::string& device_problem() {
  static const std::string problem = [] {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    std::string why;
    if (status != cudaSuccess)
      why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
    else if (count == 0)
      why = "cudaGetDeviceCount found no device";
    else if ((status = cudaFree(nullptr)) != cudaSuccess)
      why = std::string("creating the context: ") + cudaGetErrorString(status);
    cudaGetLastError();  // a failed probe must not surface as a later kernel's error
    return why;
  }();
  return problem;
}

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

// Created on first use; never destroyed: at exit the driver releases both, and destroying them
// from a static destructor would race the CUDA runtime's own teardown.
Context& context() {
  static Context ctx = [] {
    require_device("context");
    Context c;
    CUDA_CHECK(cudaStreamCreate(&c.stream));  // a blocking stream: it also orders with cudaMemcpy
    CUBLAS_CHECK(cublasCreate(&c.cublas));
    CUBLAS_CHECK(cublasSetStream(c.cublas, c.stream));
    return c;
  }();
  return ctx;
}

std::atomic<bool> tf32_allowed{false};

}  // namespace

bool available() { return device_problem().empty(); }

void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

void synchronize() {
  if (available()) CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void require_device(const char* op) {
  NCL_CHECK(available(), "cuda::", op, ": no usable CUDA device (", device_problem(),
            "); HINT: run on a machine with an NVIDIA GPU and driver, or keep tensors on the CPU");
}

cudaStream_t stream() { return context().stream; }
cublasHandle_t cublas() { return context().cublas; }

void fail_cuda(cudaError_t status, const char* call, const char* file, int line) {
  detail::fail_check(
      file, line, call,
      detail::str("CUDA error ", cudaGetErrorName(status), ": ", cudaGetErrorString(status),
                  "; HINT: an earlier kernel may have faulted; rerun with "
                  "CUDA_LAUNCH_BLOCKING=1 to stop at the failing launch"));
}

void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  detail::fail_check(file, line, call,
                     detail::str("cuBLAS error ", cublasGetStatusName(status), ": ",
                                 cublasGetStatusString(status)));
}

}  // namespace ncl::cuda

// The CUDA backend's device probe, stream, cuBLAS (loaded on demand) and its handle, TF32
// switch and error reporting.
#include <dlfcn.h>

#include <atomic>
#include <string>
#include <type_traits>

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
    CUBLAS_CHECK(cublas_api().create(&c.cublas));
    CUBLAS_CHECK(cublas_api().set_stream(c.cublas, c.stream));
    return c;
  }();
  return ctx;
}

std::atomic<bool> tf32_allowed{false};

// The symbol a cuBLAS name stands for, its macros expanded: "cublasCreate_v2" for cublasCreate.
#define NCL_STRINGIFY(name) #name
#define NCL_SYMBOL(name) NCL_STRINGIFY(name)

Cublas open_cublas() {
  const std::string file = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* library = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef NCL_CUDA_LIBRARY_DIR
  if (!library) library = dlopen((NCL_CUDA_LIBRARY_DIR "/" + file).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
  if (!library) {
    const char* why = dlerror();
    NCL_CHECK(false, "cuda: cannot load ", file, " (", why ? why : "not found",
              "); HINT: put the CUDA toolkit's library folder on LD_LIBRARY_PATH");
  }
  Cublas api{};
  auto resolve = [&](auto& function, const char* symbol) {
    using Pointer = std::remove_reference_t<decltype(function)>;
    function = reinterpret_cast<Pointer>(dlsym(library, symbol));
    NCL_CHECK(function != nullptr, "cuda: ", file, " has no function ", symbol,
              "; HINT: use the cuBLAS of the CUDA toolkit ncl was built with");
  };
  resolve(api.create, NCL_SYMBOL(cublasCreate));
  resolve(api.set_stream, NCL_SYMBOL(cublasSetStream));
  resolve(api.set_math_mode, NCL_SYMBOL(cublasSetMathMode));
  resolve(api.sgemm_strided_batched, NCL_SYMBOL(cublasSgemmStridedBatched));
  resolve(api.dgemm_strided_batched, NCL_SYMBOL(cublasDgemmStridedBatched));
  resolve(api.status_name, NCL_SYMBOL(cublasGetStatusName));
  resolve(api.status_string, NCL_SYMBOL(cublasGetStatusString));
  return api;
}

}  // namespace

const Cublas& cublas_api() {
  static const Cublas api = open_cublas();  // a failed load throws and is tried again next time
  return api;
}

void load_cublas() { cublas_api(); }

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
                     detail::str("cuBLAS error ", cublas_api().status_name(status), ": ",
                                 cublas_api().status_string(status)));
}

}  // namespace ncl::cuda

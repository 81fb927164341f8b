// The CUDA backend when ncl is built without CUDA (NCL_CUDA=OFF): every kernel of
// tensor/kernels.inc exists so the program links, and each one throws. The real kernels live
// beside this file as tensor/cuda/*.cu, with the same base names as tensor/cpu/*.cpp.
#include "tensor/backend.h"

namespace ncl::cuda {
namespace {
[[noreturn]] void no_cuda(const char* op) {
  throw Error(detail::str("cuda::", op, ": ncl was built without CUDA; HINT: rebuild with "
                          "-DNCL_CUDA=ON on a machine with the CUDA toolkit, or use --device cpu"));
}
}  // namespace

bool available() { return false; }
void set_allow_tf32(bool) {}  // no GEMM will ever run here: nothing to configure
bool allow_tf32() { return false; }
void synchronize() {}  // nothing can have been launched
void load_cublas() { no_cuda("load_cublas"); }

// raw_alloc is reached by Storage before any kernel; it must throw too, not return nullptr.
void* raw_alloc(size_t) { no_cuda("raw_alloc"); }
void raw_free(void*) {}
void copy_from_host(void*, const void*, size_t) { no_cuda("copy_from_host"); }
void copy_to_host(void*, const void*, size_t) { no_cuda("copy_to_host"); }
void copy_device(void*, const void*, size_t) { no_cuda("copy_device"); }
void fill(Tensor&, double) { no_cuda("fill"); }
void cast(const Tensor&, Tensor&) { no_cuda("cast"); }
void copy_strided(const Tensor&, Tensor&, const CopyArgs&) { no_cuda("copy_strided"); }
void unary(UnaryOp, const Tensor&, Tensor&, double) { no_cuda("unary"); }
void binary(BinaryOp, const Tensor&, const Tensor&, Tensor&, int64_t, int64_t, Broadcast) {
  no_cuda("binary");
}
void where(const Tensor&, const Tensor&, const Tensor&, Tensor&) { no_cuda("where"); }
void reduce(ReduceOp, const Tensor&, Tensor&, Tensor&, int64_t, int64_t, int64_t) {
  no_cuda("reduce");
}
void gemm(const Tensor&, const Tensor&, Tensor&, const GemmArgs&) { no_cuda("gemm"); }
void linear_forward(const Tensor&, const Tensor&, const Tensor&, Tensor&, const GemmArgs&) {
  no_cuda("linear_forward");
}
void softmax_forward(const Tensor&, const Tensor&, Tensor&, const SoftmaxArgs&) {
  no_cuda("softmax_forward");
}
void softmax_backward(const Tensor&, const Tensor&, const Tensor&, Tensor&, const SoftmaxArgs&) {
  no_cuda("softmax_backward");
}
void logsumexp_forward(const Tensor&, const Tensor&, Tensor&, const SoftmaxArgs&) {
  no_cuda("logsumexp_forward");
}
void softmax_columns_forward(const Tensor&, const Tensor&, Tensor&, const ColumnSoftmaxArgs&) {
  no_cuda("softmax_columns_forward");
}
void softmax_columns_backward(const Tensor&, const Tensor&, Tensor&, const ColumnSoftmaxArgs&) {
  no_cuda("softmax_columns_backward");
}
void layer_norm_forward(const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&,
                        int64_t, int64_t, double) {
  no_cuda("layer_norm_forward");
}
void layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         Tensor&, Tensor&, Tensor&, int64_t, int64_t) {
  no_cuda("layer_norm_backward");
}
void gaussian_log_density_forward(const Tensor&, const Tensor&, const Tensor&, Tensor&, int64_t,
                                  int64_t, int64_t, int64_t) {
  no_cuda("gaussian_log_density_forward");
}
void gaussian_log_density_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   Tensor&, Tensor&, Tensor&, int64_t, int64_t, int64_t,
                                   int64_t) {
  no_cuda("gaussian_log_density_backward");
}
void index_select(const Tensor&, const Tensor&, Tensor&, int64_t) { no_cuda("index_select"); }
void index_add(const Tensor&, const Tensor&, Tensor&, int64_t) { no_cuda("index_add"); }
void prelu_forward(const Tensor&, const Tensor&, Tensor&, int64_t) { no_cuda("prelu"); }
void prelu_backward(const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, int64_t) {
  no_cuda("prelu_backward");
}
void combine_rows(const Tensor&, const Tensor&, const Tensor&, const Tensor&, Tensor&, int64_t) {
  no_cuda("combine_rows");
}
void adam_step(Tensor&, const Tensor&, Tensor&, Tensor&, const AdamArgs&) { no_cuda("adam_step"); }

}  // namespace ncl::cuda

// CUDA memory and data movement: allocation, copies, fill, cast, strided copy, where, and the
// row gather/scatter used by index_select / index_add (the mirror of cpu/memory.cpp).
#include <vector>

#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {

// Device memory only (never managed memory): the caching allocator (tensor/storage.cpp) keeps
// freed blocks, so cudaMalloc is rare. Out of memory returns nullptr (the allocator then
// empties its cache and retries); any other failure, no device included, throws.
void* raw_alloc(size_t bytes) {
  require_device("raw_alloc");
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, bytes == 0 ? 256 : bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so the next launch check does not report it
    return nullptr;
  }
  CUDA_CHECK(status);
  return ptr;
}

// Runs in destructors, so it never throws. cudaFree fails only for a pointer it did not hand
// out or while the runtime is being torn down at exit, when the driver reclaims everything.
void raw_free(void* ptr) {
  if (cudaFree(ptr) != cudaSuccess) cudaGetLastError();
}

// Stream-ordered copies. To the host and from the host they wait for the stream: the host
// buffer may be read or freed as soon as the call returns.
void copy_from_host(void* dst, const void* host_src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream()));
  CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_to_host(void* host_dst, const void* src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_device(void* dst, const void* src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

namespace {

// Calls fn(T{}) for any dtype, integers included.
template <class Fn>
void dispatch_any(DType dtype, Fn&& fn) {
  if (dtype == DType::F32)
    fn(float{});
  else if (dtype == DType::F64)
    fn(double{});
  else
    fn(int32_t{});
}

template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  for (int64_t i = flat_index(); i < n; i += flat_stride()) out[i] = value;
}

template <class X, class O>
__global__ void cast_kernel(const X* x, O* out, int64_t n) {
  for (int64_t i = flat_index(); i < n; i += flat_stride()) out[i] = O(x[i]);
}

// CopyArgs padded to rank 4 (leading axes of size 1), passed by value to the kernel.
struct Strided4 {
  int64_t n[4], src[4], dst[4];
};

template <class T>
__global__ void copy_strided_kernel(const T* src, T* dst, Strided4 s, int64_t total) {
  for (int64_t i = flat_index(); i < total; i += flat_stride()) {
    int64_t rest = i, src_at = 0, dst_at = 0;
    for (int d = 3; d >= 0; --d) {  // the last axis varies fastest, as in the CPU loop nest
      int64_t id = rest % s.n[d];
      rest /= s.n[d];
      src_at += id * s.src[d];
      dst_at += id * s.dst[d];
    }
    dst[dst_at] = src[src_at];
  }
}

template <class T>
__global__ void where_kernel(const int32_t* cond, const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = flat_index(); i < n; i += flat_stride()) out[i] = cond[i] ? a[i] : b[i];
}

// out (rows, cols): row i = x's row index[i].
template <class T>
__global__ void index_select_kernel(const T* x, const int32_t* index, T* out, int64_t rows,
                                    int64_t cols) {
  for (int64_t i = flat_index(); i < rows * cols; i += flat_stride())
    out[i] = x[int64_t(index[i / cols]) * cols + i % cols];
}

// out's row index[i] += src's row i; rows may repeat, hence the atomics (F64 needs sm_60+).
template <class T>
__global__ void index_add_kernel(const T* src, const int32_t* index, T* out, int64_t rows,
                                 int64_t cols) {
  for (int64_t i = flat_index(); i < rows * cols; i += flat_stride())
    atomicAdd(out + int64_t(index[i / cols]) * cols + i % cols, src[i]);
}

// out (rows, cols): element (r, c) = Σ_j weight[j] · x[index[j], c] over row r's entries.
// One thread per output element, so no atomics; the map's transpose serves the gradient.
template <class T>
__global__ void combine_rows_kernel(const int32_t* offsets, const int32_t* index, const T* weight,
                                    const T* x, T* out, int64_t rows, int64_t cols) {
  for (int64_t i = flat_index(); i < rows * cols; i += flat_stride()) {
    const int64_t r = i / cols, c = i % cols;
    T acc = T(0);
    for (int32_t j = offsets[r]; j < offsets[r + 1]; ++j)
      acc += weight[j] * x[int64_t(index[j]) * cols + c];
    out[i] = acc;
  }
}

// Indices are checked on the host, with the CPU backend's message: an out-of-range index in a
// kernel would be a memory fault. Costs one small copy (and a stream sync) per call.
void check_indices(const char* op, const Tensor& index, int64_t limit) {
  std::vector<int32_t> host(size_t(index.numel()));
  copy_to_host(host.data(), index.raw_data(), host.size() * sizeof(int32_t));
  for (size_t i = 0; i < host.size(); ++i)
    NCL_CHECK(host[i] >= 0 && host[i] < limit, op, ": index ", host[i], " at position ", i,
              " is out of range [0, ", limit, ")");
}

}  // namespace

void fill(Tensor& out, double value) {
  if (out.numel() == 0) return;
  dispatch_any(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    fill_kernel<T><<<flat_grid(out.numel()), kBlock, 0, stream()>>>(static_cast<T*>(out.raw_data()),
                                                                    out.numel(), T(value));
    CUDA_CHECK_LAUNCH("fill_kernel");
  });
}

void cast(const Tensor& x, Tensor& out) {
  if (x.numel() == 0) return;
  dispatch_any(x.dtype(), [&](auto x_zero) {
    dispatch_any(out.dtype(), [&](auto out_zero) {
      using X = decltype(x_zero);
      using O = decltype(out_zero);
      cast_kernel<X, O><<<flat_grid(x.numel()), kBlock, 0, stream()>>>(
          static_cast<const X*>(x.raw_data()), static_cast<O*>(out.raw_data()), x.numel());
      CUDA_CHECK_LAUNCH("cast_kernel");
    });
  });
}

void copy_strided(const Tensor& src, Tensor& dst, const CopyArgs& args) {
  int rank = args.shape.rank();
  Strided4 s{{1, 1, 1, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}};
  for (int i = 0; i < rank; ++i) {
    s.n[4 - rank + i] = args.shape[i];
    s.src[4 - rank + i] = args.src_strides[size_t(i)];
    s.dst[4 - rank + i] = args.dst_strides[size_t(i)];
  }
  const int64_t total = args.shape.numel();
  if (total == 0) return;
  dispatch_any(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    copy_strided_kernel<T><<<flat_grid(total), kBlock, 0, stream()>>>(
        static_cast<const T*>(src.raw_data()) + args.src_offset,
        static_cast<T*>(dst.raw_data()) + args.dst_offset, s, total);
    CUDA_CHECK_LAUNCH("copy_strided_kernel");
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  if (out.numel() == 0) return;
  dispatch_float(a.dtype(), "where", [&](auto zero) {
    using T = decltype(zero);
    where_kernel<T><<<flat_grid(out.numel()), kBlock, 0, stream()>>>(
        static_cast<const int32_t*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
        static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()), out.numel());
    CUDA_CHECK_LAUNCH("where_kernel");
  });
}

void index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t cols) {
  const int64_t rows = index.numel();
  check_indices("index_select", index, cols == 0 ? 0 : x.numel() / cols);
  if (rows == 0 || cols == 0) return;
  dispatch_float(x.dtype(), "index_select", [&](auto zero) {
    using T = decltype(zero);
    index_select_kernel<T><<<flat_grid(rows * cols), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const int32_t*>(index.raw_data()),
        static_cast<T*>(out.raw_data()), rows, cols);
    CUDA_CHECK_LAUNCH("index_select_kernel");
  });
}

void index_add(const Tensor& src, const Tensor& index, Tensor& out, int64_t cols) {
  const int64_t rows = index.numel();
  check_indices("index_add", index, cols == 0 ? 0 : out.numel() / cols);
  if (rows == 0 || cols == 0) return;
  dispatch_float(src.dtype(), "index_add", [&](auto zero) {
    using T = decltype(zero);
    index_add_kernel<T><<<flat_grid(rows * cols), kBlock, 0, stream()>>>(
        static_cast<const T*>(src.raw_data()), static_cast<const int32_t*>(index.raw_data()),
        static_cast<T*>(out.raw_data()), rows, cols);
    CUDA_CHECK_LAUNCH("index_add_kernel");
  });
}

// The RowMap's indices were checked on the host when it was built (tensor/row_map.cpp).
void combine_rows(const Tensor& offsets, const Tensor& index, const Tensor& weight,
                  const Tensor& x, Tensor& out, int64_t cols) {
  const int64_t rows = offsets.numel() - 1;
  if (rows == 0 || cols == 0) return;
  dispatch_float(x.dtype(), "combine_rows", [&](auto zero) {
    using T = decltype(zero);
    combine_rows_kernel<T><<<flat_grid(rows * cols), kBlock, 0, stream()>>>(
        static_cast<const int32_t*>(offsets.raw_data()), static_cast<const int32_t*>(index.raw_data()),
        static_cast<const T*>(weight.raw_data()), static_cast<const T*>(x.raw_data()),
        static_cast<T*>(out.raw_data()), rows, cols);
    CUDA_CHECK_LAUNCH("combine_rows_kernel");
  });
}

}  // namespace ncl::cuda

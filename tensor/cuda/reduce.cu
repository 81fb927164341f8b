// Reductions over the middle axis of an (outer, len, inner) view (the mirror of cpu/reduce.cpp).
//
// Two launch shapes, by how the len values of one output lie in memory:
//   inner < 32  (a contiguous row when inner = 1: sum_all, last-axis sums): one warp per output,
//               its lanes striding over len, then a warp-shuffle fold;
//   inner >= 32 (e.g. a bias gradient, summing the rows of a (rows, D) matrix): a 32 x 8 block
//               per 32 adjacent outputs; threadIdx.x picks the output (coalesced reads),
//               threadIdx.y strides over len, and shared memory folds the 8 partial results.
// Max keeps the first index of the maximum, as the CPU does: partial results are combined by
// value, and equal values by the smaller index.
#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

// A partial result: the running sum, or the best value so far and its index (-1: none yet).
template <class T>
struct Partial {
  T value;
  int32_t index;
};

template <class T>
__device__ Partial<T> combine(ReduceOp op, Partial<T> a, Partial<T> b) {
  if (op == ReduceOp::Sum) return {a.value + b.value, 0};
  if (b.index < 0) return a;
  if (a.index < 0) return b;
  bool take_b = b.value > a.value || (b.value == a.value && b.index < a.index);
  return take_b ? b : a;
}

template <class T>
__device__ Partial<T> identity(ReduceOp op) {
  return {T(0), op == ReduceOp::Sum ? 0 : -1};
}

template <class T>
__device__ void write(Partial<T> p, T* out, int32_t* argmax, int64_t at) {
  out[at] = p.value;
  if (argmax) argmax[at] = p.index < 0 ? 0 : p.index;
}

// One warp per output q = (o, i); lanes take l = lane, lane + 32, ...
template <class T>
__global__ void reduce_warp_kernel(ReduceOp op, const T* x, T* out, int32_t* argmax,
                                   int64_t outputs, int64_t len, int64_t inner) {
  const int64_t q = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  if (q >= outputs) return;  // whole warps leave together: the shuffles below stay full
  const T* base = x + (q / inner) * len * inner + q % inner;
  Partial<T> p = identity<T>(op);
  for (int64_t l = lane; l < len; l += kWarp)
    p = combine(op, p, Partial<T>{base[l * inner], int32_t(l)});
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    Partial<T> other{__shfl_xor_sync(0xffffffffu, p.value, offset),
                     __shfl_xor_sync(0xffffffffu, p.index, offset)};
    p = combine(op, p, other);
  }
  if (lane == 0) write(p, out, argmax, q);
}

constexpr int kTileRows = kBlock / kWarp;  // threadIdx.y extent of the column kernel

// Block (32, 8): outputs (o, i0 + threadIdx.x) for o = blockIdx.y, blockIdx.y + gridDim.y, ...
template <class T>
__global__ void reduce_columns_kernel(ReduceOp op, const T* x, T* out, int32_t* argmax,
                                      int64_t outer, int64_t len, int64_t inner) {
  __shared__ T values[kTileRows][kWarp + 1];  // +1: no shared-memory bank conflicts
  __shared__ int32_t indices[kTileRows][kWarp + 1];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t i = int64_t(blockIdx.x) * kWarp + tx;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    Partial<T> p = identity<T>(op);
    if (i < inner)
      for (int64_t l = ty; l < len; l += kTileRows)
        p = combine(op, p, Partial<T>{x[(o * len + l) * inner + i], int32_t(l)});
    values[ty][tx] = p.value;
    indices[ty][tx] = p.index;
    __syncthreads();
    if (ty == 0 && i < inner) {
      for (int r = 1; r < kTileRows; ++r)
        p = combine(op, p, Partial<T>{values[r][tx], indices[r][tx]});
      write(p, out, argmax, o * inner + i);
    }
    __syncthreads();  // the tile is reused by the next o
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, Tensor& out, Tensor& argmax, int64_t outer, int64_t len,
            int64_t inner) {
  const int64_t outputs = outer * inner;
  if (outputs == 0) return;
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    int32_t* pi = argmax.defined() ? static_cast<int32_t*>(argmax.raw_data()) : nullptr;
    if (inner < kWarp) {
      reduce_warp_kernel<T>
          <<<row_grid(outputs), kBlock, 0, stream()>>>(op, px, po, pi, outputs, len, inner);
      CUDA_CHECK_LAUNCH("reduce_warp_kernel");
    } else {
      dim3 grid(unsigned((inner + kWarp - 1) / kWarp), unsigned(std::min<int64_t>(outer, 65535)));
      reduce_columns_kernel<T>
          <<<grid, dim3(kWarp, kTileRows), 0, stream()>>>(op, px, po, pi, outer, len, inner);
      CUDA_CHECK_LAUNCH("reduce_columns_kernel");
    }
  });
}

}  // namespace ncl::cuda

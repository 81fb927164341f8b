// Elementwise kernels (the mirror of cpu/elementwise.cpp): one flat grid-stride kernel for the
// unary ops and one for the binary ops. The op is a kernel argument, the same for every
// thread, so the switch inside costs no divergence; the formulas match the CPU's line by line.
#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

template <class T>
__device__ T softplus(T x) {
  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
  return (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x)));
}

template <class T>
__device__ T sigmoid(T x) {
  // Evaluate on the side where exp does not overflow.
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  T e = exp(x);
  return e / (T(1) + e);
}

template <class T>
__device__ T unary_value(UnaryOp op, T v, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return exp(v);
    case UnaryOp::Log: return log(v);
    case UnaryOp::Sqrt: return sqrt(v);
    case UnaryOp::Abs: return fabs(v);
    case UnaryOp::Square: return v * v;
    case UnaryOp::Reciprocal: return T(1) / v;
    case UnaryOp::Relu: return v > T(0) ? v : T(0);
    case UnaryOp::Step: return v > T(0) ? T(1) : T(0);
    case UnaryOp::Sigmoid: return sigmoid(v);
    case UnaryOp::Tanh: return tanh(v);
    case UnaryOp::Softplus: return softplus(v);
    case UnaryOp::Elu: return v > T(0) ? v : expm1(v);
    case UnaryOp::EluDeriv: return v > T(0) ? T(1) : exp(v);
    case UnaryOp::Scale: return alpha * v;
    case UnaryOp::AddScalar: return v + alpha;
    case UnaryOp::PowScalar: return pow(v, alpha);
  }
  return v;  // unreachable: every UnaryOp is handled above
}

template <class T>
__device__ T binary_value(BinaryOp op, T u, T v) {
  switch (op) {
    case BinaryOp::Add: return u + v;
    case BinaryOp::Sub: return u - v;
    case BinaryOp::Mul: return u * v;
    case BinaryOp::Div: return u / v;
    case BinaryOp::Pow: return pow(u, v);
    case BinaryOp::Max: return u >= v ? u : v;
    case BinaryOp::Min: return u <= v ? u : v;
    case BinaryOp::Greater: return u > v ? T(1) : T(0);
    case BinaryOp::ReluGrad: return v > T(0) ? u : T(0);
  }
  return u;  // unreachable
}

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, int64_t n, T alpha) {
  for (int64_t i = flat_index(); i < n; i += flat_stride()) out[i] = unary_value(op, x[i], alpha);
}

// out[r, c] = a[r, c] (op) b[...], with b's element picked by the broadcast mode.
template <class T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t rows,
                              int64_t cols, Broadcast mode) {
  for (int64_t i = flat_index(); i < rows * cols; i += flat_stride()) {
    int64_t j = mode == Broadcast::None     ? i
                : mode == Broadcast::Row    ? i % cols
                : mode == Broadcast::Column ? i / cols
                                            : 0;  // Scalar
    out[i] = binary_value(op, a[i], b[j]);
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "unary", [&](auto zero) {
    using T = decltype(zero);
    unary_kernel<T><<<flat_grid(x.numel()), kBlock, 0, stream()>>>(
        op, static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), x.numel(),
        T(alpha));
    CUDA_CHECK_LAUNCH("unary_kernel");
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, int64_t rows, int64_t cols,
            Broadcast mode) {
  if (rows * cols == 0) return;
  dispatch_float(a.dtype(), "binary", [&](auto zero) {
    using T = decltype(zero);
    binary_kernel<T><<<flat_grid(rows * cols), kBlock, 0, stream()>>>(
        op, static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()),
        static_cast<T*>(out.raw_data()), rows, cols, mode);
    CUDA_CHECK_LAUNCH("binary_kernel");
  });
}

namespace {

template <class T>
__global__ void prelu_kernel(const T* x, const T* slope, T* y, int64_t n, int64_t cols,
                             bool per_column) {
  for (int64_t i = flat_index(); i < n; i += flat_stride()) {
    const T v = x[i];
    y[i] = v > T(0) ? v : slope[per_column ? i % cols : 0] * v;
  }
}

template <class T>
__global__ void prelu_dx_kernel(const T* x, const T* slope, const T* dy, T* dx, int64_t n,
                                int64_t cols, bool per_column) {
  for (int64_t i = flat_index(); i < n; i += flat_stride())
    dx[i] = x[i] > T(0) ? dy[i] : slope[per_column ? i % cols : 0] * dy[i];
}

// One block per slope: block c sums x·dy over x ≤ 0 of its column (per-column slopes) or of
// every element (one slope), strided over its threads, then a tree in shared memory. No atomics.
template <class T>
__global__ void prelu_dslope_kernel(const T* x, const T* dy, T* dslope, int64_t n, int64_t cols,
                                    bool per_column) {
  __shared__ double sums[kBlock];
  const int64_t c = blockIdx.x;
  const int64_t start = per_column ? c + int64_t(threadIdx.x) * cols : threadIdx.x;
  const int64_t step = per_column ? int64_t(blockDim.x) * cols : blockDim.x;
  double acc = 0.0;
  for (int64_t i = start; i < n; i += step)
    if (x[i] <= T(0)) acc += double(x[i]) * double(dy[i]);
  sums[threadIdx.x] = acc;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) dslope[c] = T(sums[0]);
}

}  // namespace

void prelu_forward(const Tensor& x, const Tensor& slope, Tensor& y, int64_t cols) {
  if (x.numel() == 0) return;
  dispatch_float(x.dtype(), "prelu", [&](auto zero) {
    using T = decltype(zero);
    prelu_kernel<T><<<flat_grid(x.numel()), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(slope.raw_data()),
        static_cast<T*>(y.raw_data()), x.numel(), cols, slope.numel() > 1);
    CUDA_CHECK_LAUNCH("prelu_kernel");
  });
}

void prelu_backward(const Tensor& x, const Tensor& slope, const Tensor& dy, Tensor& dx,
                    Tensor& dslope, int64_t cols) {
  dispatch_float(x.dtype(), "prelu_backward", [&](auto zero) {
    using T = decltype(zero);
    const bool per_column = slope.numel() > 1;
    if (x.numel() > 0) {
      prelu_dx_kernel<T><<<flat_grid(x.numel()), kBlock, 0, stream()>>>(
          static_cast<const T*>(x.raw_data()), static_cast<const T*>(slope.raw_data()),
          static_cast<const T*>(dy.raw_data()), static_cast<T*>(dx.raw_data()), x.numel(), cols,
          per_column);
      CUDA_CHECK_LAUNCH("prelu_dx_kernel");
    }
    prelu_dslope_kernel<T><<<unsigned(slope.numel()), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(dy.raw_data()),
        static_cast<T*>(dslope.raw_data()), x.numel(), cols, per_column);
    CUDA_CHECK_LAUNCH("prelu_dslope_kernel");
  });
}

}  // namespace ncl::cuda

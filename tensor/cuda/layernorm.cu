// Layer norm over the last axis, forward and backward (the mirror of cpu/layernorm.cpp).
// Per-row work (statistics, y, dx) takes one warp per row, 8 rows per block, with warp-shuffle
// sums. dgamma and dbeta sum over rows instead: a 32 x 8 block per 32 adjacent columns, whose
// threadIdx.y strides over the rows, folded in shared memory.
#include "tensor/backend.h"
#include "tensor/cuda/context.h"

namespace ncl::cuda {
namespace {

__device__ inline int64_t warp_row() {
  return int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
}
__device__ inline int warp_lane() { return int(threadIdx.x % kWarp); }

// y = (x - mean)·rstd·gamma + beta, with the biased variance (as PyTorch's LayerNorm).
template <class T>
__global__ void layer_norm_forward_kernel(const T* x, const T* gamma, const T* beta, T* y, T* mean,
                                          T* rstd, int64_t rows, int64_t cols, T eps) {
  const int64_t r = warp_row();
  if (r >= rows) return;  // whole warps leave together
  const int lane = warp_lane();
  const T* xr = x + r * cols;
  T* yr = y + r * cols;
  T m = 0;
  for (int64_t c = lane; c < cols; c += kWarp) m += xr[c];
  m = warp_sum(m) / T(cols);
  T var = 0;
  for (int64_t c = lane; c < cols; c += kWarp) var += (xr[c] - m) * (xr[c] - m);
  var = warp_sum(var) / T(cols);
  T s = T(1) / sqrt(var + eps);
  for (int64_t c = lane; c < cols; c += kWarp) yr[c] = (xr[c] - m) * s * gamma[c] + beta[c];
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = s;
  }
}

// With x̂ = (x - mean)·rstd and ĝ = dy·gamma (per element of a row of length C):
//   dx = rstd · (ĝ - mean_c(ĝ) - x̂ · mean_c(ĝ·x̂))     term 1 - term 2 - term 3
template <class T>
__global__ void layer_norm_dx_kernel(const T* x, const T* gamma, const T* mean, const T* rstd,
                                     const T* dy, T* dx, int64_t rows, int64_t cols) {
  const int64_t r = warp_row();
  if (r >= rows) return;
  const int lane = warp_lane();
  const T* xr = x + r * cols;
  const T* gr = dy + r * cols;
  T* dr = dx + r * cols;
  const T m = mean[r], s = rstd[r];
  T mean_g = 0, mean_gx = 0;
  for (int64_t c = lane; c < cols; c += kWarp) {
    T ghat = gr[c] * gamma[c];
    mean_g += ghat;
    mean_gx += ghat * (xr[c] - m) * s;
  }
  mean_g = warp_sum(mean_g) / T(cols);
  mean_gx = warp_sum(mean_gx) / T(cols);
  for (int64_t c = lane; c < cols; c += kWarp) {
    T xhat = (xr[c] - m) * s;
    dr[c] = s * (gr[c] * gamma[c] - mean_g - xhat * mean_gx);
  }
}

constexpr int kTileRows = kBlock / kWarp;  // threadIdx.y extent of the column kernel

// dgamma = Σ_rows dy·x̂,  dbeta = Σ_rows dy;  block (32, 8) covers columns c0 .. c0 + 31.
template <class T>
__global__ void layer_norm_dparams_kernel(const T* x, const T* mean, const T* rstd, const T* dy,
                                          T* dgamma, T* dbeta, int64_t rows, int64_t cols) {
  __shared__ T partial_g[kTileRows][kWarp + 1];  // +1: no shared-memory bank conflicts
  __shared__ T partial_b[kTileRows][kWarp + 1];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t c = int64_t(blockIdx.x) * kWarp + tx;
  T dg = 0, db = 0;
  if (c < cols)
    for (int64_t r = ty; r < rows; r += kTileRows) {
      T g = dy[r * cols + c];
      dg += g * (x[r * cols + c] - mean[r]) * rstd[r];
      db += g;
    }
  partial_g[ty][tx] = dg;
  partial_b[ty][tx] = db;
  __syncthreads();
  if (ty == 0 && c < cols) {
    for (int k = 1; k < kTileRows; ++k) {
      dg += partial_g[k][tx];
      db += partial_b[k][tx];
    }
    dgamma[c] = dg;
    dbeta[c] = db;
  }
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& y,
                        Tensor& mean, Tensor& rstd, int64_t rows, int64_t cols, double eps) {
  if (rows == 0) return;
  dispatch_float(x.dtype(), "layer_norm_forward", [&](auto zero) {
    using T = decltype(zero);
    layer_norm_forward_kernel<T><<<row_grid(rows), kBlock, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(gamma.raw_data()),
        static_cast<const T*>(beta.raw_data()), static_cast<T*>(y.raw_data()),
        static_cast<T*>(mean.raw_data()), static_cast<T*>(rstd.raw_data()), rows, cols, T(eps));
    CUDA_CHECK_LAUNCH("layer_norm_forward_kernel");
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                         Tensor& dbeta, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pmean = static_cast<const T*>(mean.raw_data());
    const T* prstd = static_cast<const T*>(rstd.raw_data());
    const T* pdy = static_cast<const T*>(dy.raw_data());
    if (rows > 0) {
      layer_norm_dx_kernel<T><<<row_grid(rows), kBlock, 0, stream()>>>(
          px, static_cast<const T*>(gamma.raw_data()), pmean, prstd, pdy,
          static_cast<T*>(dx.raw_data()), rows, cols);
      CUDA_CHECK_LAUNCH("layer_norm_dx_kernel");
    }
    // Runs for rows = 0 too: dgamma and dbeta are then assigned zeros.
    layer_norm_dparams_kernel<T>
        <<<unsigned((cols + kWarp - 1) / kWarp), dim3(kWarp, kTileRows), 0, stream()>>>(
            px, pmean, prstd, pdy, static_cast<T*>(dgamma.raw_data()),
            static_cast<T*>(dbeta.raw_data()), rows, cols);
    CUDA_CHECK_LAUNCH("layer_norm_dparams_kernel");
  });
}

}  // namespace ncl::cuda

// Elementwise kernels. Each op is a small functor so the loops stay tight: the switch picks a
// functor once per call, never per element.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"
#include "tensor/cpu/parallel.h"

namespace ncl::cpu {
namespace {

template <class T>
T softplus(T x) {
  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
  return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
}

template <class T>
T sigmoid(T x) {
  // Evaluate on the side where exp does not overflow.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T, class F>
void map(const Tensor& x, Tensor& out, F f) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  parallel_for(x.numel(), grain(1), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = f(px[i]);
  });
}

template <class T>
void unary_typed(UnaryOp op, const Tensor& x, Tensor& out, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return map<T>(x, out, [](T v) { return -v; });
    case UnaryOp::Exp: return map<T>(x, out, [](T v) { return std::exp(v); });
    case UnaryOp::Log: return map<T>(x, out, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt: return map<T>(x, out, [](T v) { return std::sqrt(v); });
    case UnaryOp::Abs: return map<T>(x, out, [](T v) { return std::abs(v); });
    case UnaryOp::Square: return map<T>(x, out, [](T v) { return v * v; });
    case UnaryOp::Reciprocal: return map<T>(x, out, [](T v) { return T(1) / v; });
    case UnaryOp::Relu: return map<T>(x, out, [](T v) { return v > 0 ? v : T(0); });
    case UnaryOp::Step: return map<T>(x, out, [](T v) { return v > 0 ? T(1) : T(0); });
    case UnaryOp::Sigmoid: return map<T>(x, out, [](T v) { return sigmoid(v); });
    case UnaryOp::Tanh: return map<T>(x, out, [](T v) { return std::tanh(v); });
    case UnaryOp::Softplus: return map<T>(x, out, [](T v) { return softplus(v); });
    case UnaryOp::Elu: return map<T>(x, out, [](T v) { return v > 0 ? v : std::expm1(v); });
    case UnaryOp::EluDeriv: return map<T>(x, out, [](T v) { return v > 0 ? T(1) : std::exp(v); });
    case UnaryOp::Scale: return map<T>(x, out, [alpha](T v) { return alpha * v; });
    case UnaryOp::AddScalar: return map<T>(x, out, [alpha](T v) { return v + alpha; });
    case UnaryOp::PowScalar: return map<T>(x, out, [alpha](T v) { return std::pow(v, alpha); });
  }
}

// out[r, c] = f(a[r, c], b[...]) with b indexed according to the broadcast mode.
template <class T, class F>
void zip(const Tensor& a, const Tensor& b, Tensor& out, int64_t rows, int64_t cols,
         Broadcast mode, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  parallel_for(rows, grain(cols), [&](int64_t r0, int64_t r1) {
    switch (mode) {
      case Broadcast::None:
        for (int64_t i = r0 * cols; i < r1 * cols; ++i) po[i] = f(pa[i], pb[i]);
        break;
      case Broadcast::Scalar: {
        T s = pb[0];
        for (int64_t i = r0 * cols; i < r1 * cols; ++i) po[i] = f(pa[i], s);
        break;
      }
      case Broadcast::Row:
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = 0; c < cols; ++c) po[r * cols + c] = f(pa[r * cols + c], pb[c]);
        break;
      case Broadcast::Column:
        for (int64_t r = r0; r < r1; ++r) {
          T s = pb[r];
          for (int64_t c = 0; c < cols; ++c) po[r * cols + c] = f(pa[r * cols + c], s);
        }
        break;
    }
  });
}

template <class T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, int64_t rows,
                  int64_t cols, Broadcast mode) {
  switch (op) {
    case BinaryOp::Add: return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u + v; });
    case BinaryOp::Sub: return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u - v; });
    case BinaryOp::Mul: return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u * v; });
    case BinaryOp::Div: return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u / v; });
    case BinaryOp::Pow:
      return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return std::pow(u, v); });
    case BinaryOp::Max:
      return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u >= v ? u : v; });
    case BinaryOp::Min:
      return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u <= v ? u : v; });
    case BinaryOp::Greater:
      return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return u > v ? T(1) : T(0); });
    case BinaryOp::ReluGrad:
      return zip<T>(a, b, out, rows, cols, mode, [](T u, T v) { return v > T(0) ? u : T(0); });
  }
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  dispatch_float(x.dtype(), "unary", [&](auto zero) {
    using T = decltype(zero);
    unary_typed<T>(op, x, out, T(alpha));
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, int64_t rows,
            int64_t cols, Broadcast mode) {
  dispatch_float(a.dtype(), "binary", [&](auto zero) {
    using T = decltype(zero);
    binary_typed<T>(op, a, b, out, rows, cols, mode);
  });
}

void prelu_forward(const Tensor& x, const Tensor& slope, Tensor& y, int64_t cols) {
  dispatch_float(x.dtype(), "prelu", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* a = slope.data<T>();
    T* py = y.data<T>();
    const bool per_column = slope.numel() > 1;
    parallel_for(x.numel(), grain(1), [&](int64_t begin, int64_t end) {
      if (per_column) {
        for (int64_t i = begin; i < end; ++i) py[i] = px[i] > T(0) ? px[i] : a[i % cols] * px[i];
      } else {
        const T a0 = a[0];  // the common case: a branch-free loop the compiler vectorises
        for (int64_t i = begin; i < end; ++i) py[i] = px[i] > T(0) ? px[i] : a0 * px[i];
      }
    });
  });
}

void prelu_backward(const Tensor& x, const Tensor& slope, const Tensor& dy, Tensor& dx,
                    Tensor& dslope, int64_t cols) {
  dispatch_float(x.dtype(), "prelu_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    const T* a = slope.data<T>();
    T* pdx = dx.data<T>();
    const int64_t C = slope.numel(), rows = cols == 0 ? 0 : x.numel() / cols;
    const bool per_column = C > 1;
    // dslope: partial sums over fixed blocks of rows (fixed, so the sum's order is too), then
    // the blocks added in order.
    const int64_t block = std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1));
    const int64_t blocks = (rows + block - 1) / block;
    std::vector<double> partial(size_t(blocks * C), 0.0);
    parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        double* part = partial.data() + b * C;
        if (!per_column) {  // branch-free and vectorisable
          const T a0 = a[0];
          double acc = 0.0;
          for (int64_t i = b * block * cols; i < std::min(rows, (b + 1) * block) * cols; ++i) {
            const T v = px[i], g = pdy[i];
            pdx[i] = v > T(0) ? g : a0 * g;
            acc += v > T(0) ? 0.0 : double(v) * double(g);
          }
          part[0] = acc;
          continue;
        }
        for (int64_t r = b * block; r < std::min(rows, (b + 1) * block); ++r)
          for (int64_t c = 0; c < cols; ++c) {
            const int64_t i = r * cols + c;
            const T v = px[i], g = pdy[i];
            if (v > T(0)) {
              pdx[i] = g;
            } else {
              pdx[i] = a[per_column ? c : 0] * g;
              part[per_column ? c : 0] += double(v) * double(g);
            }
          }
      }
    });
    T* ds = dslope.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      double total = 0.0;
      for (int64_t b = 0; b < blocks; ++b) total += partial[size_t(b * C + c)];
      ds[c] = T(total);
    }
  });
}

}  // namespace ncl::cpu

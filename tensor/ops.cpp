// The dispatcher: checks, allocation, shape collapsing, then one `if` per op choosing the
// backend. Kernels never see an N-d shape; see tensor/kernel_args.h for their views.
#include "tensor/ops.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "tensor/backend.h"
#include "tensor/ops_internal.h"

namespace ncl::ops {
using namespace internal;
namespace {

void check_mask(const char* op, const Tensor& x, const Tensor& mask) {
  if (!mask.defined()) return;
  NCL_CHECK(mask.dtype() == DType::I32, op, ": key mask must be I32 (1 = removed), got ",
            mask.dtype());
  NCL_CHECK(mask.device() == x.device(), op, ": mask on ", mask.device(), ", input on ",
            x.device());
  NCL_CHECK(mask.rank() >= 1 && mask.dim(-1) == x.dim(-1), op, ": mask ", mask.shape(),
            " does not match the last axis of ", x.shape());
}

// (rows, cols) view over the last axis.
int64_t last_dim(const Tensor& x) { return x.rank() == 0 ? 1 : x.dim(-1); }
int64_t rows_of(const Tensor& x) {
  int64_t cols = last_dim(x);
  return cols == 0 ? 0 : x.numel() / cols;
}

SoftmaxArgs softmax_args(const char* op, const Tensor& x, const Tensor& mask) {
  NCL_CHECK(x.rank() >= 1, op, ": needs rank >= 1, got ", x.shape());
  SoftmaxArgs args;
  args.cols = x.dim(-1);
  args.rows = rows_of(x);
  if (mask.defined()) {
    args.mask_rows = mask.numel() / args.cols;
    args.group = x.rank() >= 2 ? x.dim(-2) : 1;
    int64_t groups = args.group == 0 ? 0 : args.rows / args.group;
    NCL_CHECK(args.mask_rows > 0 && groups % args.mask_rows == 0, op, ": mask ", mask.shape(),
              " cannot be shared by the ", groups, " row groups of ", x.shape());
  }
  return args;
}

// Reduce over `axis` with the kernel's (outer, len, inner) view.
Tensor reduce(ReduceOp op, const char* name, const Tensor& x, int axis, bool keepdim,
              Tensor* argmax) {
  check_float(name, x);
  int a = x.shape().normalize_axis(axis);
  int64_t outer = 1, inner = 1, len = x.dim(a);
  for (int i = 0; i < a; ++i) outer *= x.dim(i);
  for (int i = a + 1; i < x.rank(); ++i) inner *= x.dim(i);
  NCL_CHECK(len > 0 || op == ReduceOp::Sum, name, ": reducing an empty axis of ", x.shape());
  std::vector<int64_t> dims = x.shape().dims();
  if (keepdim) dims[size_t(a)] = 1;
  else dims.erase(dims.begin() + a);
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  Tensor index;
  if (argmax) index = Tensor::empty(Shape(dims), DType::I32, x.device());
  if (on_cuda(x)) cuda::reduce(op, x, out, index, outer, len, inner);
  else cpu::reduce(op, x, out, index, outer, len, inner);
  if (argmax) *argmax = index;
  return out;
}

}  // namespace

// ---- elementwise ---------------------------------------------------------------------------

Tensor unary(UnaryOp op, const Tensor& x, double alpha) {
  check_float("unary", x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (on_cuda(x)) cuda::unary(op, x, out, alpha);
  else cpu::unary(op, x, out, alpha);
  return out;
}

bool broadcast_supported(const Shape& a, const Shape& b, Broadcast* mode) {
  if (a == b) return *mode = Broadcast::None, true;
  if (b.numel() == 1) return *mode = Broadcast::Scalar, true;
  int64_t cols = a.rank() == 0 ? 1 : a[-1];
  if (b.rank() >= 1 && b.rank() <= a.rank() && b[-1] == cols && b.numel() == cols)
    return *mode = Broadcast::Row, true;
  bool column = a.rank() >= 1 && b.rank() == a.rank() && b[-1] == 1;
  for (int i = 0; column && i < a.rank() - 1; ++i) column = a[i] == b[i];
  if (column) return *mode = Broadcast::Column, true;
  return false;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_float("binary", a);
  check_same("binary", a, b);
  Broadcast mode;
  NCL_CHECK(broadcast_supported(a.shape(), b.shape(), &mode), "binary op: cannot broadcast ",
            b.shape(), " over ", a.shape(), "; HINT: b must match a, be a scalar, a last-axis "
            "row or a column; use broadcast_to for other shapes");
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  int64_t cols = last_dim(a), rows = rows_of(a);
  if (on_cuda(a)) cuda::binary(op, a, b, out, rows, cols, mode);
  else cpu::binary(op, a, b, out, rows, cols, mode);
  return out;
}

namespace {
void check_prelu(const Tensor& x, const Tensor& slope) {
  check_float("prelu", x);
  check_same("prelu", x, slope);
  NCL_CHECK(slope.numel() == 1 || (slope.rank() == 1 && x.rank() >= 1 && slope.dim(0) == x.dim(-1)),
            "prelu: slope ", slope.shape(), " must have 1 or ", x.rank() ? x.dim(-1) : 1, " elements");
}
}  // namespace

Tensor prelu(const Tensor& x, const Tensor& slope) {
  check_prelu(x, slope);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (on_cuda(x)) cuda::prelu_forward(x, slope, y, last_dim(x));
  else cpu::prelu_forward(x, slope, y, last_dim(x));
  return y;
}

std::pair<Tensor, Tensor> prelu_backward(const Tensor& x, const Tensor& slope, const Tensor& dy) {
  check_prelu(x, slope);
  check_same("prelu_backward", x, dy);
  NCL_CHECK(dy.shape() == x.shape(), "prelu_backward: dy ", dy.shape(), " differs from x ", x.shape());
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor dslope = Tensor::empty(slope.shape(), slope.dtype(), slope.device());
  if (on_cuda(x)) cuda::prelu_backward(x, slope, dy, dx, dslope, last_dim(x));
  else cpu::prelu_backward(x, slope, dy, dx, dslope, last_dim(x));
  return {dx, dslope};
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_float("where", a);
  check_same("where", a, b);
  NCL_CHECK(cond.dtype() == DType::I32, "where: condition must be I32, got ", cond.dtype());
  NCL_CHECK(cond.device() == a.device(), "where: condition on ", cond.device(), ", values on ",
            a.device());
  NCL_CHECK(cond.shape() == a.shape() && b.shape() == a.shape(), "where: shapes differ: cond ",
            cond.shape(), " a ", a.shape(), " b ", b.shape());
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (on_cuda(a)) cuda::where(cond, a, b, out);
  else cpu::where(cond, a, b, out);
  return out;
}

Tensor cast(const Tensor& x, DType dtype) { return x.to(dtype); }

void add_(Tensor& a, const Tensor& b) {
  check_float("add_", a);
  check_same("add_", a, b);
  NCL_CHECK(a.shape() == b.shape(), "add_: shapes differ: ", a.shape(), " += ", b.shape());
  const int64_t cols = last_dim(a), rows = rows_of(a);
  if (on_cuda(a)) cuda::binary(BinaryOp::Add, a, b, a, rows, cols, Broadcast::None);
  else cpu::binary(BinaryOp::Add, a, b, a, rows, cols, Broadcast::None);
}

void fill_(Tensor& x, double value) {
  if (on_cuda(x)) cuda::fill(x, value);
  else cpu::fill(x, value);
}

// ---- reductions ----------------------------------------------------------------------------

Tensor sum(const Tensor& x, int axis, bool keepdim) {
  return reduce(ReduceOp::Sum, "sum", x, axis, keepdim, nullptr);
}

Tensor mean(const Tensor& x, int axis, bool keepdim) {
  Tensor s = sum(x, axis, keepdim);
  return scale(s, 1.0 / double(x.dim(axis)));
}

Tensor max(const Tensor& x, int axis, bool keepdim, Tensor* argmax) {
  return reduce(ReduceOp::Max, "max", x, axis, keepdim, argmax);
}

Tensor sum_all(const Tensor& x) { return sum(x.reshape({x.numel()}), 0); }

// ---- matrix products -----------------------------------------------------------------------

namespace {

// Works out the GEMM view of op(a)·op(b) and the result shape.
GemmArgs gemm_view(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, Shape* result) {
  check_float("matmul", a);
  check_same("matmul", a, b);
  NCL_CHECK(a.rank() >= 2 && b.rank() >= 2, "matmul: needs rank >= 2, got a ", a.shape(), " b ",
            b.shape());
  GemmArgs g;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  int64_t a_rows = a.dim(-2), a_cols = a.dim(-1);
  g.m = trans_a ? a_cols : a_rows;
  g.k = trans_a ? a_rows : a_cols;
  int64_t kb = trans_b ? b.dim(-1) : b.dim(-2);
  g.n = trans_b ? b.dim(-2) : b.dim(-1);
  NCL_CHECK(g.k == kb, "matmul: inner dimensions differ: a ", a.shape(), (trans_a ? "ᵀ" : ""),
            " b ", b.shape(), (trans_b ? "ᵀ" : ""));
  std::vector<int64_t> dims = a.shape().dims();
  dims[dims.size() - 2] = g.m;
  dims[dims.size() - 1] = g.n;
  *result = Shape(dims);
  int64_t batch = 1;  // the product of the leading axes (not numel / (rows·cols): K may be 0)
  for (int i = 0; i < a.rank() - 2; ++i) batch *= a.dim(i);
  if (b.rank() == 2) {
    if (!trans_a) {  // fold the batch into M: one big GEMM against the shared b
      g.m *= batch;
      g.batch = 1;
    } else {
      g.batch = batch;
      g.stride_a = a_rows * a_cols;
      g.stride_b = 0;
    }
  } else {
    NCL_CHECK(a.rank() == b.rank(), "matmul: batch ranks differ: a ", a.shape(), " b ", b.shape());
    for (int i = 0; i < a.rank() - 2; ++i)
      NCL_CHECK(a.dim(i) == b.dim(i), "matmul: batch axes differ: a ", a.shape(), " b ",
                b.shape(), "; HINT: broadcast_to the shared operand first");
    g.batch = batch;
    g.stride_a = a_rows * a_cols;
    g.stride_b = b.dim(-2) * b.dim(-1);
  }
  return g;
}

std::atomic<int64_t> gemm_flop_counter{0};

}  // namespace

void internal::run_gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmArgs& g) {
  gemm_flop_counter.fetch_add(2 * g.batch * g.m * g.n * g.k, std::memory_order_relaxed);
  if (on_cuda(a)) cuda::gemm(a, b, c, g);
  else cpu::gemm(a, b, c, g);
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha) {
  Shape result;
  GemmArgs g = gemm_view(a, b, trans_a, trans_b, &result);
  g.alpha = alpha;
  Tensor c = Tensor::empty(result, a.dtype(), a.device());
  run_gemm(a, b, c, g);
  return c;
}

void matmul_into(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b,
                 double alpha, double beta) {
  Shape result;
  GemmArgs g = gemm_view(a, b, trans_a, trans_b, &result);
  check_same("matmul_into", a, c);
  NCL_CHECK(c.shape() == result, "matmul_into: output has shape ", c.shape(), ", product is ",
            result);
  g.alpha = alpha;
  g.beta = beta;
  run_gemm(a, b, c, g);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  NCL_CHECK(x.rank() == 2 && weight.rank() == 2, "linear: x ", x.shape(),
            " must be (R, in) and weight ", weight.shape(), " (out, in)");
  Shape result;
  GemmArgs g = gemm_view(x, weight, false, true, &result);
  if (bias.defined()) {
    check_same("linear", x, bias);
    NCL_CHECK(bias.shape() == Shape({g.n}), "linear: bias ", bias.shape(), " must be (", g.n, ")");
  }
  Tensor y = Tensor::empty(result, x.dtype(), x.device());
  gemm_flop_counter.fetch_add(2 * g.m * g.n * g.k, std::memory_order_relaxed);
  if (on_cuda(x)) cuda::linear_forward(x, weight, bias, y, g);
  else cpu::linear_forward(x, weight, bias, y, g);
  return y;
}

int64_t gemm_flops() { return gemm_flop_counter.load(std::memory_order_relaxed); }
void set_cpu_threads(int threads) { cpu::set_threads(threads); }
int cpu_threads() { return cpu::threads(); }
int run_cpu_groups(int64_t n, const std::function<void(int, int64_t, int64_t)>& f) {
  return cpu::run_groups(n, f);
}
void run_cpu_shares(const std::vector<int64_t>& sizes, int64_t alone,
                    const std::function<void(size_t)>& f) {
  int64_t total = 0;  // elements of the shared items
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] >= alone) f(i);
    else total += sizes[i];
  }
  // Share s of S takes the items whose elements start in [total·s/S, total·(s+1)/S); each
  // thread runs the shares run_cpu_groups gives it.
  const int64_t shares = cpu::threads();
  cpu::run_groups(shares, [&](int, int64_t first, int64_t end) {
    int64_t start = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] >= alone) continue;
      const int64_t share = total > 0 ? start * shares / total : 0;
      start += sizes[i];
      if (share >= first && share < end) f(i);
    }
  });
}

bool cuda_available() { return cuda::available(); }
void require_cuda() {
  NCL_CHECK(cuda::available(), "no usable CUDA device (or ncl was built without CUDA); HINT: run "
                               "on the CPU with --device cpu");
  cuda::load_cublas();
}
void set_cuda_tf32(bool allow) { cuda::set_allow_tf32(allow); }
void synchronize(Device device) {
  if (device == Device::CUDA) cuda::synchronize();
}

// ---- softmax family ------------------------------------------------------------------------

namespace {
Tensor softmax_impl(const char* name, const Tensor& x, const Tensor& mask, bool log) {
  check_float(name, x);
  check_mask(name, x, mask);
  SoftmaxArgs args = softmax_args(name, x, mask);
  args.log = log;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (on_cuda(x)) cuda::softmax_forward(x, mask, y, args);
  else cpu::softmax_forward(x, mask, y, args);
  return y;
}
}  // namespace

Tensor softmax(const Tensor& x, const Tensor& key_mask) {
  return softmax_impl("softmax", x, key_mask, false);
}

Tensor log_softmax(const Tensor& x, const Tensor& key_mask) {
  return softmax_impl("log_softmax", x, key_mask, true);
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& key_mask, bool log) {
  check_float("softmax_backward", y);
  check_same("softmax_backward", y, dy);
  NCL_CHECK(y.shape() == dy.shape(), "softmax_backward: y ", y.shape(), " dy ", dy.shape());
  SoftmaxArgs args = softmax_args("softmax_backward", y, key_mask);
  args.log = log;
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
  if (on_cuda(y)) cuda::softmax_backward(y, dy, key_mask, dx, args);
  else cpu::softmax_backward(y, dy, key_mask, dx, args);
  return dx;
}

Tensor logsumexp(const Tensor& x, const Tensor& key_mask) {
  check_float("logsumexp", x);
  check_mask("logsumexp", x, key_mask);
  SoftmaxArgs args = softmax_args("logsumexp", x, key_mask);
  std::vector<int64_t> dims = x.shape().dims();
  dims.pop_back();
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  if (on_cuda(x)) cuda::logsumexp_forward(x, key_mask, out, args);
  else cpu::logsumexp_forward(x, key_mask, out, args);
  return out;
}

namespace {
ColumnSoftmaxArgs column_softmax_args(const char* op, const Tensor& x, const Tensor& mask) {
  NCL_CHECK(x.rank() == 3, op, ": needs (entries, rows, columns), got ", x.shape());
  ColumnSoftmaxArgs args;
  args.entries = x.dim(0);
  args.rows = x.dim(1);
  args.cols = x.dim(2);
  if (mask.defined()) {
    NCL_CHECK(mask.dtype() == DType::I32, op, ": key mask must be I32 (1 = removed), got ",
              mask.dtype());
    NCL_CHECK(mask.device() == x.device(), op, ": mask on ", mask.device(), ", input on ",
              x.device());
    NCL_CHECK(mask.rank() == 2 && mask.dim(1) == args.rows && mask.dim(0) > 0 &&
                  args.entries % mask.dim(0) == 0,
              op, ": mask ", mask.shape(), " must be (Bm, ", args.rows, ") with Bm dividing the ",
              args.entries, " entries of ", x.shape());
    args.mask_rows = mask.dim(0);
  }
  return args;
}
}  // namespace

Tensor softmax_columns(const Tensor& x, const Tensor& key_mask) {
  check_float("softmax_columns", x);
  ColumnSoftmaxArgs args = column_softmax_args("softmax_columns", x, key_mask);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (on_cuda(x)) cuda::softmax_columns_forward(x, key_mask, y, args);
  else cpu::softmax_columns_forward(x, key_mask, y, args);
  return y;
}

Tensor softmax_columns_backward(const Tensor& y, const Tensor& dy) {
  check_float("softmax_columns_backward", y);
  check_same("softmax_columns_backward", y, dy);
  NCL_CHECK(y.shape() == dy.shape(), "softmax_columns_backward: y ", y.shape(), " dy ",
            dy.shape());
  ColumnSoftmaxArgs args = column_softmax_args("softmax_columns_backward", y, Tensor());
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
  if (on_cuda(y)) cuda::softmax_columns_backward(y, dy, dx, args);
  else cpu::softmax_columns_backward(y, dy, dx, args);
  return dx;
}

// ---- layer norm ----------------------------------------------------------------------------

LayerNormOutput layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  check_float("layer_norm", x);
  check_same("layer_norm", x, gamma);
  check_same("layer_norm", x, beta);
  int64_t cols = last_dim(x), rows = rows_of(x);
  NCL_CHECK(gamma.numel() == cols && beta.numel() == cols, "layer_norm: gamma ", gamma.shape(),
            " and beta ", beta.shape(), " must have ", cols, " elements (last axis of ",
            x.shape(), ")");
  LayerNormOutput out{Tensor::empty(x.shape(), x.dtype(), x.device()),
                      Tensor::empty({rows}, x.dtype(), x.device()),
                      Tensor::empty({rows}, x.dtype(), x.device())};
  if (on_cuda(x)) cuda::layer_norm_forward(x, gamma, beta, out.y, out.mean, out.rstd, rows, cols, eps);
  else cpu::layer_norm_forward(x, gamma, beta, out.y, out.mean, out.rstd, rows, cols, eps);
  return out;
}

LayerNormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& dy) {
  check_same("layer_norm_backward", x, dy);
  NCL_CHECK(x.shape() == dy.shape(), "layer_norm_backward: x ", x.shape(), " dy ", dy.shape());
  int64_t cols = last_dim(x), rows = rows_of(x);
  LayerNormGrads g{Tensor::empty(x.shape(), x.dtype(), x.device()),
                   Tensor::empty(gamma.shape(), x.dtype(), x.device()),
                   Tensor::empty(gamma.shape(), x.dtype(), x.device())};
  if (on_cuda(x))
    cuda::layer_norm_backward(x, gamma, mean, rstd, dy, g.dx, g.dgamma, g.dbeta, rows, cols);
  else cpu::layer_norm_backward(x, gamma, mean, rstd, dy, g.dx, g.dgamma, g.dbeta, rows, cols);
  return g;
}

// ---- diagonal Gaussian log-density ---------------------------------------------------------

namespace {
// (G, N, K, D) of x (G, N, D) against mean and sigma (G, K, D), after checking them.
std::array<int64_t, 4> gaussian_dims(const char* name, const Tensor& x, const Tensor& mean,
                                     const Tensor& sigma) {
  check_float(name, x);
  check_same(name, x, mean);
  check_same(name, x, sigma);
  NCL_CHECK(x.rank() == 3 && mean.rank() == 3 && mean.shape() == sigma.shape() &&
                mean.dim(0) == x.dim(0) && mean.dim(2) == x.dim(2),
            name, ": x ", x.shape(), " must be (G, N, D) and mean ", mean.shape(), ", sigma ",
            sigma.shape(), " (G, K, D)");
  return {x.dim(0), x.dim(1), mean.dim(1), x.dim(2)};
}
}  // namespace

Tensor gaussian_log_density(const Tensor& x, const Tensor& mean, const Tensor& sigma) {
  const auto [G, N, K, D] = gaussian_dims("gaussian_log_density", x, mean, sigma);
  Tensor out = Tensor::empty({G, N, K}, x.dtype(), x.device());
  if (on_cuda(x)) cuda::gaussian_log_density_forward(x, mean, sigma, out, G, N, K, D);
  else cpu::gaussian_log_density_forward(x, mean, sigma, out, G, N, K, D);
  return out;
}

GaussianGrads gaussian_log_density_backward(const Tensor& x, const Tensor& mean,
                                            const Tensor& sigma, const Tensor& dout) {
  const auto [G, N, K, D] = gaussian_dims("gaussian_log_density_backward", x, mean, sigma);
  check_same("gaussian_log_density_backward", x, dout);
  NCL_CHECK(dout.shape() == Shape({G, N, K}), "gaussian_log_density_backward: dout ",
            dout.shape(), " for an output (", G, ", ", N, ", ", K, ")");
  GaussianGrads g{Tensor::empty(x.shape(), x.dtype(), x.device()),
                  Tensor::empty(mean.shape(), x.dtype(), x.device()),
                  Tensor::empty(mean.shape(), x.dtype(), x.device())};
  if (on_cuda(x))
    cuda::gaussian_log_density_backward(x, mean, sigma, dout, g.dx, g.dmean, g.dsigma, G, N, K, D);
  else
    cpu::gaussian_log_density_backward(x, mean, sigma, dout, g.dx, g.dmean, g.dsigma, G, N, K, D);
  return g;
}

// ---- optimizer -----------------------------------------------------------------------------

void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamArgs& args) {
  check_same("adam_step", param, grad);
  NCL_CHECK(param.shape() == grad.shape() && m.shape() == param.shape() &&
                v.shape() == param.shape(),
            "adam_step: param ", param.shape(), " grad ", grad.shape(), " m ", m.shape(), " v ",
            v.shape());
  if (on_cuda(param)) cuda::adam_step(param, grad, m, v, args);
  else cpu::adam_step(param, grad, m, v, args);
}

}  // namespace ncl::ops

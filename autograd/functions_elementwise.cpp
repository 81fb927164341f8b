// Elementwise differentiable functions. Binary ops broadcast numpy-style: the kernel handles a
// scalar, a row or a column b directly; any other broadcast is materialised with broadcast_to,
// and every gradient is summed back to its input's shape with sum_to.
#include <cmath>

#include "autograd/functions.h"
#include "tensor/ops.h"

namespace ncl {
namespace {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  int rank = std::max(a.rank(), b.rank());
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.rank() ? 1 : a[i - (rank - a.rank())];
    int64_t db = i < rank - b.rank() ? 1 : b[i - (rank - b.rank())];
    NCL_CHECK(da == db || da == 1 || db == 1, "broadcast: shapes ", a, " and ", b,
              " are not compatible");
    dims[size_t(i)] = da == 1 ? db : da;
  }
  return Shape(dims);
}

bool kernel_broadcasts(const Shape& out, const Shape& b) {
  Broadcast mode;
  return ops::broadcast_supported(out, b, &mode);
}

// The operands as the kernel wants them: a with the output shape, b in a supported mode.
struct Operands {
  Tensor a, b;
  Shape out;
};

Operands prepare(const Tensor& a, const Tensor& b) {
  Operands p{a, b, broadcast_shapes(a.shape(), b.shape())};
  if (p.a.shape() != p.out) p.a = ops::broadcast_to(a, p.out);
  if (!kernel_broadcasts(p.out, p.b.shape())) p.b = ops::broadcast_to(b, p.out);
  return p;
}

}  // namespace

// y = a + b;  da = sum_to(dy),  db = sum_to(dy)
Variable add(const Variable& a, const Variable& b) {
  // Commutative: put the full-shaped operand first so the smaller one rides the kernel.
  if (a.shape() != b.shape() && b.shape() == broadcast_shapes(a.shape(), b.shape()))
    return add(b, a);
  Operands p = prepare(a.value(), b.value());
  Shape sa = a.shape(), sb = b.shape();
  return make_result("add", ops::add(p.a, p.b), {a, b},
                     [sa, sb](const Tensor& dy, const std::vector<bool>& need) {
                       return std::vector<Tensor>{need[0] ? ops::sum_to(dy, sa) : Tensor(),
                                                  need[1] ? ops::sum_to(dy, sb) : Tensor()};
                     });
}

// y = a - b;  da = sum_to(dy),  db = -sum_to(dy)
Variable sub(const Variable& a, const Variable& b) {
  Operands p = prepare(a.value(), b.value());
  Shape sa = a.shape(), sb = b.shape();
  return make_result("sub", ops::sub(p.a, p.b), {a, b},
                     [sa, sb](const Tensor& dy, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? ops::sum_to(dy, sa) : Tensor(),
                           need[1] ? ops::neg(ops::sum_to(dy, sb)) : Tensor()};
                     });
}

// y = a ⊙ b;  da = sum_to(dy ⊙ b),  db = sum_to(dy ⊙ a)
Variable mul(const Variable& a, const Variable& b) {
  if (a.shape() != b.shape() && b.shape() == broadcast_shapes(a.shape(), b.shape()))
    return mul(b, a);
  Operands p = prepare(a.value(), b.value());
  Shape sa = a.shape(), sb = b.shape();
  Tensor ta = p.a, tb = p.b;
  return make_result("mul", ops::mul(p.a, p.b), {a, b},
                     [sa, sb, ta, tb](const Tensor& dy, const std::vector<bool>& need) {
                       return std::vector<Tensor>{
                           need[0] ? ops::sum_to(ops::mul(dy, tb), sa) : Tensor(),
                           need[1] ? ops::sum_to(ops::mul(dy, ta), sb) : Tensor()};
                     });
}

// y = a / b;  da = sum_to(dy / b),  db = -sum_to(dy ⊙ y / b)
Variable div(const Variable& a, const Variable& b) {
  Operands p = prepare(a.value(), b.value());
  Tensor y = ops::div(p.a, p.b);
  Shape sa = a.shape(), sb = b.shape();
  Tensor tb = p.b;
  return make_result("div", y, {a, b},
                     [sa, sb, tb, y](const Tensor& dy, const std::vector<bool>& need) {
                       Tensor dy_over_b = ops::div(dy, tb);
                       return std::vector<Tensor>{
                           need[0] ? ops::sum_to(dy_over_b, sa) : Tensor(),
                           need[1] ? ops::neg(ops::sum_to(ops::mul(dy_over_b, y), sb)) : Tensor()};
                     });
}

namespace {
// A unary op whose gradient is dy ⊙ deriv(x, y).
template <class Deriv>
Variable unary_fn(const char* name, UnaryOp op, const Variable& x, Deriv deriv, double alpha = 0) {
  Tensor y = ops::unary(op, x.value(), alpha);
  Tensor tx = x.value();
  return make_result(name, y, {x}, [tx, y, deriv](const Tensor& dy, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::mul(dy, deriv(tx, y))};
  });
}
}  // namespace

// dx = -dy
Variable neg(const Variable& x) {
  return make_result("neg", ops::neg(x.value()), {x},
                     [](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::neg(dy)};
                     });
}

// dx = dy ⊙ y
Variable exp(const Variable& x) {
  return unary_fn("exp", UnaryOp::Exp, x, [](const Tensor&, const Tensor& y) { return y; });
}

// dx = dy / x
Variable log(const Variable& x) {
  return unary_fn("log", UnaryOp::Log, x, [](const Tensor& tx, const Tensor&) {
    return ops::unary(UnaryOp::Reciprocal, tx);
  });
}

// dx = dy ⊙ 0.5 / y
Variable sqrt(const Variable& x) {
  return unary_fn("sqrt", UnaryOp::Sqrt, x, [](const Tensor&, const Tensor& y) {
    return ops::scale(ops::unary(UnaryOp::Reciprocal, y), 0.5);
  });
}

// dx = dy ⊙ 2x
Variable square(const Variable& x) {
  return unary_fn("square", UnaryOp::Square, x,
                  [](const Tensor& tx, const Tensor&) { return ops::scale(tx, 2.0); });
}

// dx = dy ⊙ [x > 0]
Variable relu(const Variable& x) {
  // One pass (ReluGrad) instead of a 0/1 tensor and a product; y rather than x is kept, so
  // the input (in a network, a Linear layer's output) may be freed after the forward.
  Tensor y = ops::unary(UnaryOp::Relu, x.value());
  return make_result("relu", y, {x}, [y](const Tensor& dy, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::binary(BinaryOp::ReluGrad, dy, y)};
  });
}

// dx = dy ⊙ y (1 - y)
Variable sigmoid(const Variable& x) {
  return unary_fn("sigmoid", UnaryOp::Sigmoid, x, [](const Tensor&, const Tensor& y) {
    return ops::mul(y, ops::add_scalar(ops::neg(y), 1.0));
  });
}

// dx = dy ⊙ (1 - y²)
Variable tanh(const Variable& x) {
  return unary_fn("tanh", UnaryOp::Tanh, x, [](const Tensor&, const Tensor& y) {
    return ops::add_scalar(ops::neg(ops::unary(UnaryOp::Square, y)), 1.0);
  });
}

// dx = dy ⊙ sigmoid(x)
Variable softplus(const Variable& x) {
  return unary_fn("softplus", UnaryOp::Softplus, x, [](const Tensor& tx, const Tensor&) {
    return ops::unary(UnaryOp::Sigmoid, tx);
  });
}

// dx = dy ⊙ (1 if x > 0 else e^x)
Variable elu(const Variable& x) {
  return unary_fn("elu", UnaryOp::Elu, x, [](const Tensor& tx, const Tensor&) {
    return ops::unary(UnaryOp::EluDeriv, tx);
  });
}

// y = x > 0 ? x : a·x (a: one slope or one per last-axis entry; one fused kernel each way)
// dx = x > 0 ? dy : a·dy;  da = Σ_{x ≤ 0} x·dy (per entry for per-entry slopes)
Variable prelu(const Variable& x, const Variable& slope) {
  return make_result("prelu", ops::prelu(x.value(), slope.value()), {x, slope},
                     [x = x.value(), a = slope.value()](const Tensor& dy, const std::vector<bool>&) {
                       auto [dx, da] = ops::prelu_backward(x, a, dy);
                       return std::vector<Tensor>{dx, da};
                     });
}

// dx = s·dy
Variable scale(const Variable& x, double s) {
  return make_result("scale", ops::scale(x.value(), s), {x},
                     [s](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::scale(dy, s)};
                     });
}

// dx = dy
Variable add_scalar(const Variable& x, double s) {
  return make_result("add_scalar", ops::add_scalar(x.value(), s), {x},
                     [](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{dy};
                     });
}

// dx = dy ⊙ p·x^(p-1)
Variable pow_scalar(const Variable& x, double p) {
  return unary_fn(
      "pow_scalar", UnaryOp::PowScalar, x,
      [p](const Tensor& tx, const Tensor&) {
        return ops::scale(ops::unary(UnaryOp::PowScalar, tx, p - 1.0), p);
      },
      p);
}

// da = cond ? dy : 0,  db = cond ? 0 : dy
Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  return make_result("where", ops::where(cond, a.value(), b.value()), {a, b},
                     [cond](const Tensor& dy, const std::vector<bool>& need) {
                       Tensor zero = Tensor::zeros(dy.shape(), dy.dtype(), dy.device());
                       return std::vector<Tensor>{need[0] ? ops::where(cond, dy, zero) : Tensor(),
                                                  need[1] ? ops::where(cond, zero, dy) : Tensor()};
                     });
}

Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
Variable operator-(const Variable& x) { return neg(x); }
Variable operator*(const Variable& x, double s) { return scale(x, s); }
Variable operator*(double s, const Variable& x) { return scale(x, s); }
Variable operator+(const Variable& x, double s) { return add_scalar(x, s); }
Variable operator-(const Variable& x, double s) { return add_scalar(x, -s); }
Variable operator/(const Variable& x, double s) { return scale(x, 1.0 / s); }

}  // namespace ncl

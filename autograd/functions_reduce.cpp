// Reductions and matrix products.
#include "autograd/functions.h"
#include "tensor/ops.h"

namespace ncl {
namespace {
// dy of a reduction, reshaped so that it broadcasts back over the reduced axis.
Tensor keepdim_view(const Tensor& dy, const Shape& x_shape, int axis) {
  return dy.reshape(x_shape.with(axis, 1));
}
}  // namespace

// y = Σ_axis x;  dx = broadcast(dy) over the axis
Variable sum(const Variable& x, int axis, bool keepdim) {
  Shape sx = x.shape();
  int a = sx.normalize_axis(axis);
  return make_result("sum", ops::sum(x.value(), a, keepdim), {x},
                     [sx, a](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::broadcast_to(keepdim_view(dy, sx, a), sx)};
                     });
}

// y = Σ_axis x / n;  dx = broadcast(dy) / n
Variable mean(const Variable& x, int axis, bool keepdim) {
  Shape sx = x.shape();
  int a = sx.normalize_axis(axis);
  double inv = 1.0 / double(sx[a]);
  return make_result("mean", ops::mean(x.value(), a, keepdim), {x},
                     [sx, a, inv](const Tensor& dy, const std::vector<bool>&) {
                       Tensor g = ops::broadcast_to(keepdim_view(dy, sx, a), sx);
                       return std::vector<Tensor>{ops::scale(g, inv)};
                     });
}

// y = max_axis x;  dx = dy at the first maximum of each slice, 0 elsewhere
Variable max(const Variable& x, int axis, bool keepdim) {
  Shape sx = x.shape();
  int a = sx.normalize_axis(axis);
  Tensor argmax;
  Tensor y = ops::max(x.value(), a, keepdim, &argmax);
  return make_result("max", y, {x}, [sx, a, argmax](const Tensor& dy, const std::vector<bool>&) {
    // Flat index of each maximum in x, then a scatter of dy's elements to those positions.
    int64_t len = sx[a], inner = 1;
    for (int i = a + 1; i < sx.rank(); ++i) inner *= sx[i];
    std::vector<double> arg = argmax.to_vector();
    std::vector<double> flat(arg.size());
    for (size_t j = 0; j < arg.size(); ++j) {
      int64_t o = int64_t(j) / inner, i = int64_t(j) % inner;
      flat[j] = double(o * len * inner + int64_t(arg[j]) * inner + i);
    }
    Tensor index = Tensor::from_vector(flat, {int64_t(flat.size())}, DType::I32, dy.device());
    Tensor dx = ops::index_add(dy.reshape({dy.numel(), 1}), index, sx.numel());
    return std::vector<Tensor>{dx.reshape(sx)};
  });
}

Variable sum_all(const Variable& x) { return sum(reshape(x, {x.numel()}), 0); }
Variable mean_all(const Variable& x) { return mean(reshape(x, {x.numel()}), 0); }

// y = op(a)·op(b). With dy = dL/dy:
//   d op(a) = dy · op(b)ᵀ     so da = dy·op(b)ᵀ, or its transpose op(b)·dyᵀ when a is stored transposed
//   d op(b) = op(a)ᵀ · dy     so db = op(a)ᵀ·dy, or dyᵀ·op(a) when b is stored transposed
// A shared 2-D b (batched a, not transposed) folds the batch into rows, so db sums over it.
Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b, double alpha) {
  bool shared_b = b.rank() == 2 && a.rank() > 2;
  NCL_CHECK(!(shared_b && trans_a), "matmul: a shared 2-D b needs an untransposed a; got a ",
            a.shape(), "ᵀ b ", b.shape());
  Tensor ta = a.value(), tb = b.value();
  Tensor y = ops::matmul(ta, tb, trans_a, trans_b, alpha);
  return make_result(
      "matmul", y, {a, b},
      [ta, tb, trans_a, trans_b, shared_b, alpha](const Tensor& dy, const std::vector<bool>& need) {
        Tensor da, db;
        if (need[0]) {
          if (!trans_a) da = ops::matmul(dy, tb, false, !trans_b, alpha);
          else da = ops::matmul(tb, dy, trans_b, true, alpha);
        }
        if (need[1]) {
          // Fold a shared b's batch into rows: a (…, M, K) -> (…·M, K), dy likewise.
          Tensor a2 = shared_b ? ta.reshape({ta.numel() / ta.dim(-1), ta.dim(-1)}) : ta;
          Tensor dy2 = shared_b ? dy.reshape({dy.numel() / dy.dim(-1), dy.dim(-1)}) : dy;
          if (!trans_b) db = ops::matmul(a2, dy2, !trans_a, false, alpha);
          else db = ops::matmul(dy2, a2, true, trans_a, alpha);
        }
        return std::vector<Tensor>{da, db};
      });
}

// y = x Wᵀ + b;  dx = dy W,  dW = dyᵀ x,  db = Σ_rows dy
Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  NCL_CHECK(x.rank() == 2 && weight.rank() == 2 && x.dim(1) == weight.dim(1),
            "linear: x ", x.shape(), " must be (R, in) and weight ", weight.shape(), " (out, in)");
  Tensor tx = x.value(), tw = weight.value();
  Tensor y = ops::linear(tx, tw, bias.defined() ? bias.value() : Tensor());  // (R, out)
  std::vector<Variable> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return make_result("linear", y, inputs, [tx, tw](const Tensor& dy, const std::vector<bool>& need) {
    std::vector<Tensor> grads(need.size());
    if (need[0]) grads[0] = ops::matmul(dy, tw);              // (R, in)
    if (need[1]) grads[1] = ops::matmul(dy, tx, true, false);  // (out, in)
    if (need.size() > 2 && need[2]) grads[2] = ops::sum(dy, 0);  // (out)
    return grads;
  });
}

}  // namespace ncl

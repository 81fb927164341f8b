// Layout functions. Their gradients are the inverse layout change: reshape back, inverse
// permutation, sum_to for broadcast_to (and back), slices for concat, scatter for gather.
#include "autograd/functions.h"
#include "tensor/ops.h"

namespace ncl {

// dx = dy viewed with x's shape
Variable reshape(const Variable& x, const Shape& shape) {
  Shape sx = x.shape();
  return make_result("reshape", x.value().reshape(shape), {x},
                     [sx](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{dy.reshape(sx)};
                     });
}

// dx = permute(dy, perm⁻¹)
Variable permute(const Variable& x, const std::vector<int>& perm) {
  std::vector<int> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inverse[size_t(x.shape().normalize_axis(perm[i]))] = int(i);
  return make_result("permute", ops::permute(x.value(), perm), {x},
                     [inverse](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::permute(dy, inverse)};
                     });
}

Variable transpose(const Variable& x, int axis0, int axis1) {
  std::vector<int> perm(static_cast<size_t>(x.rank()));
  for (int i = 0; i < x.rank(); ++i) perm[size_t(i)] = i;
  std::swap(perm[size_t(x.shape().normalize_axis(axis0))],
            perm[size_t(x.shape().normalize_axis(axis1))]);
  return permute(x, perm);
}

// dx = sum_to(dy, x.shape)
Variable broadcast_to(const Variable& x, const Shape& shape) {
  Shape sx = x.shape();
  return make_result("broadcast_to", ops::broadcast_to(x.value(), shape), {x},
                     [sx](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::sum_to(dy, sx)};
                     });
}

// dx = broadcast_to(dy, x.shape)
Variable sum_to(const Variable& x, const Shape& shape) {
  Shape sx = x.shape();
  return make_result("sum_to", ops::sum_to(x.value(), shape), {x},
                     [sx](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::broadcast_to(dy, sx)};
                     });
}

// dx_i = dy[..., offset_i : offset_i + n_i, ...] along the axis
Variable concat(const std::vector<Variable>& xs, int axis) {
  NCL_CHECK(!xs.empty(), "concat: no inputs");
  std::vector<Tensor> values;
  std::vector<int64_t> sizes;
  for (const Variable& x : xs) {
    values.push_back(x.value());
    sizes.push_back(x.dim(axis));
  }
  int a = xs[0].shape().normalize_axis(axis);
  return make_result("concat", ops::concat(values, a), xs,
                     [a, sizes](const Tensor& dy, const std::vector<bool>& need) {
                       std::vector<Tensor> grads(sizes.size());
                       int64_t offset = 0;
                       for (size_t i = 0; i < sizes.size(); ++i) {
                         if (need[i]) grads[i] = ops::slice(dy, a, offset, offset + sizes[i]);
                         offset += sizes[i];
                       }
                       return grads;
                     });
}

// dx = dy placed at [start, end) along the axis, zeros elsewhere
Variable slice(const Variable& x, int axis, int64_t start, int64_t end) {
  Shape sx = x.shape();
  int a = sx.normalize_axis(axis);
  return make_result("slice", ops::slice(x.value(), a, start, end), {x},
                     [sx, a, start, end](const Tensor& dy, const std::vector<bool>&) {
                       std::vector<Tensor> parts;
                       if (start > 0)
                         parts.push_back(Tensor::zeros(sx.with(a, start), dy.dtype(), dy.device()));
                       parts.push_back(dy);
                       if (end < sx[a])
                         parts.push_back(
                             Tensor::zeros(sx.with(a, sx[a] - end), dy.dtype(), dy.device()));
                       return std::vector<Tensor>{ops::concat(parts, a)};
                     });
}

// y[i] = x[index[i]];  dx = index_add(dy, index)  (repeated indices accumulate)
Variable index_select(const Variable& x, const Tensor& index) {
  int64_t rows = x.dim(0);
  return make_result("index_select", ops::index_select(x.value(), index), {x},
                     [index, rows](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::index_add(dy, index, rows)};
                     });
}

// y[index[i]] += src[i];  dsrc = index_select(dy, index)
Variable index_add(const Variable& src, const Tensor& index, int64_t rows) {
  return make_result("index_add", ops::index_add(src.value(), index, rows), {src},
                     [index](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::index_select(dy, index)};
                     });
}

// y = M x for a fixed sparse M (tensor/row_map.h);  dx = Mᵀ dy
Variable combine_rows(const Variable& x, std::shared_ptr<const RowMap> map) {
  return make_result("combine_rows", ops::combine_rows(x.value(), *map), {x},
                     [map](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::combine_rows(dy, *map, true)};
                     });
}

}  // namespace ncl

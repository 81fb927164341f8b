// The layout half of the dispatcher: permute, broadcast, sum_to, concat, slice and the row
// gather/scatter. Every layout change is one strided copy (cpu/memory.cpp: copy_strided).
#include <algorithm>

#include "tensor/backend.h"
#include "tensor/ops.h"
#include "tensor/ops_internal.h"

namespace ncl::ops {
using namespace internal;
namespace {

void copy_strided(const Tensor& src, Tensor& dst, const CopyArgs& args) {
  if (args.shape.numel() == 0) return;
  if (on_cuda(src)) cuda::copy_strided(src, dst, args);
  else cpu::copy_strided(src, dst, args);
}

}  // namespace

// ---- layout --------------------------------------------------------------------------------

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  NCL_CHECK(int(perm.size()) == x.rank(), "permute: ", perm.size(), " axes for shape ", x.shape());
  std::vector<bool> seen(perm.size(), false);
  std::vector<int64_t> dims(perm.size());
  auto in_strides = contiguous_strides(x.shape());
  CopyArgs args;
  for (size_t i = 0; i < perm.size(); ++i) {
    int p = x.shape().normalize_axis(perm[i]);
    NCL_CHECK(!seen[size_t(p)], "permute: axis ", p, " repeated");
    seen[size_t(p)] = true;
    dims[i] = x.dim(p);
    args.src_strides[i] = in_strides[size_t(p)];
  }
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  args.shape = out.shape();
  args.dst_strides = contiguous_strides(out.shape());
  copy_strided(x, out, args);
  return out;
}

Tensor transpose(const Tensor& x, int axis0, int axis1) {
  std::vector<int> perm(static_cast<size_t>(x.rank()));
  for (int i = 0; i < x.rank(); ++i) perm[size_t(i)] = i;
  std::swap(perm[size_t(x.shape().normalize_axis(axis0))],
            perm[size_t(x.shape().normalize_axis(axis1))]);
  return permute(x, perm);
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  NCL_CHECK(x.rank() <= shape.rank(), "broadcast_to: cannot broadcast ", x.shape(), " to ", shape);
  auto in_strides = contiguous_strides(x.shape());
  CopyArgs args;
  int offset = shape.rank() - x.rank();
  for (int i = 0; i < shape.rank(); ++i) {
    int j = i - offset;
    if (j < 0) continue;  // new leading axis: stride 0
    NCL_CHECK(x.dim(j) == shape[i] || x.dim(j) == 1, "broadcast_to: cannot broadcast ",
              x.shape(), " to ", shape);
    args.src_strides[size_t(i)] = x.dim(j) == 1 ? 0 : in_strides[size_t(j)];
  }
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  args.shape = shape;
  args.dst_strides = contiguous_strides(shape);
  copy_strided(x, out, args);
  return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  NCL_CHECK(shape.rank() <= x.rank(), "sum_to: cannot reduce ", x.shape(), " to ", shape);
  Tensor out = x;
  int offset = x.rank() - shape.rank();
  for (int i = 0; i < offset; ++i) out = sum(out, 0);  // leading axes that shape lacks
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape[i] == out.dim(i)) continue;
    NCL_CHECK(shape[i] == 1, "sum_to: cannot reduce ", x.shape(), " to ", shape);
    out = sum(out, i, /*keepdim=*/true);
  }
  return out.reshape(shape);
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  NCL_CHECK(!xs.empty(), "concat: no inputs");
  const Tensor& first = xs[0];
  int a = first.shape().normalize_axis(axis);
  int64_t total = 0;
  for (const Tensor& x : xs) {
    check_same("concat", first, x);
    NCL_CHECK(x.rank() == first.rank(), "concat: ranks differ: ", first.shape(), " and ", x.shape());
    for (int i = 0; i < x.rank(); ++i)
      NCL_CHECK(i == a || x.dim(i) == first.dim(i), "concat: shapes ", first.shape(), " and ",
                x.shape(), " differ off axis ", a);
    total += x.dim(a);
  }
  Tensor out = Tensor::empty(first.shape().with(a, total), first.dtype(), first.device());
  auto out_strides = contiguous_strides(out.shape());
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    CopyArgs args;
    args.shape = x.shape();
    args.src_strides = contiguous_strides(x.shape());
    args.dst_strides = out_strides;
    args.dst_offset = offset * out_strides[size_t(a)];
    copy_strided(x, out, args);
    offset += x.dim(a);
  }
  return out;
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end) {
  int a = x.shape().normalize_axis(axis);
  NCL_CHECK(0 <= start && start <= end && end <= x.dim(a), "slice: [", start, ", ", end,
            ") is out of range for axis ", a, " of ", x.shape());
  Tensor out = Tensor::empty(x.shape().with(a, end - start), x.dtype(), x.device());
  CopyArgs args;
  args.shape = out.shape();
  args.src_strides = contiguous_strides(x.shape());
  args.dst_strides = contiguous_strides(out.shape());
  args.src_offset = start * args.src_strides[size_t(a)];
  copy_strided(x, out, args);
  return out;
}

Tensor index_select(const Tensor& x, const Tensor& index) {
  check_float("index_select", x);
  NCL_CHECK(index.dtype() == DType::I32 && index.rank() == 1, "index_select: index must be I32 "
            "of rank 1, got ", index.dtype(), " ", index.shape());
  NCL_CHECK(x.rank() >= 1, "index_select: x must have rank >= 1");
  NCL_CHECK(index.device() == x.device(), "index_select: index on ", index.device(), ", x on ",
            x.device());
  int64_t cols = x.dim(0) == 0 ? 0 : x.numel() / x.dim(0);
  Tensor out = Tensor::empty(x.shape().with(0, index.numel()), x.dtype(), x.device());
  if (on_cuda(x)) cuda::index_select(x, index, out, cols);
  else cpu::index_select(x, index, out, cols);
  return out;
}

Tensor index_add(const Tensor& src, const Tensor& index, int64_t rows) {
  check_float("index_add", src);
  NCL_CHECK(index.dtype() == DType::I32 && index.rank() == 1 && src.rank() >= 1 &&
                index.numel() == src.dim(0),
            "index_add: index must be I32 with one entry per row of src ", src.shape(), ", got ",
            index.dtype(), " ", index.shape());
  NCL_CHECK(index.device() == src.device(), "index_add: index on ", index.device(), ", src on ",
            src.device());
  int64_t cols = src.dim(0) == 0 ? 0 : src.numel() / src.dim(0);
  Tensor out = Tensor::zeros(src.shape().with(0, rows), src.dtype(), src.device());
  if (on_cuda(src)) cuda::index_add(src, index, out, cols);
  else cpu::index_add(src, index, out, cols);
  return out;
}

Tensor combine_rows(const Tensor& x, const RowMap& map, bool transpose) {
  check_float("combine_rows", x);
  const int64_t in_rows = transpose ? map.rows : map.cols, out_rows = transpose ? map.cols : map.rows;
  NCL_CHECK(x.rank() >= 1 && x.dim(0) == in_rows, "combine_rows: x ", x.shape(), " must have ",
            in_rows, " rows", transpose ? " (transposed map)" : "");
  NCL_CHECK(map.weight.dtype() == x.dtype() && map.weight.device() == x.device(),
            "combine_rows: map is ", map.weight.dtype(), " on ", map.weight.device(), ", x is ",
            x.dtype(), " on ", x.device());
  const int64_t cols = in_rows == 0 ? 0 : x.numel() / in_rows;
  Tensor out = Tensor::empty(x.shape().with(0, out_rows), x.dtype(), x.device());
  const Tensor& off = transpose ? map.t_offsets : map.offsets;
  const Tensor& idx = transpose ? map.t_index : map.index;
  const Tensor& w = transpose ? map.t_weight : map.weight;
  if (on_cuda(x)) cuda::combine_rows(off, idx, w, x, out, cols);
  else cpu::combine_rows(off, idx, w, x, out, cols);
  return out;
}

}  // namespace ncl::ops

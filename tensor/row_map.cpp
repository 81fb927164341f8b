#include "tensor/row_map.h"

#include <cstring>

#include "tensor/error.h"

namespace ncl {

namespace {

Tensor i32_tensor(const std::vector<int32_t>& values, Device device) {
  Tensor t = Tensor::empty({int64_t(values.size())}, DType::I32);
  if (!values.empty()) std::memcpy(t.data<int32_t>(), values.data(), values.size() * sizeof(int32_t));
  return t.to(device);
}

}  // namespace

void RowMapBuilder::add(int64_t col, double weight) {
  NCL_CHECK(col >= 0 && col <= INT32_MAX, "RowMap: column ", col, " out of range");
  index_.push_back(int32_t(col));
  weight_.push_back(weight);
}

void RowMapBuilder::end_row() {
  NCL_CHECK(index_.size() <= size_t(INT32_MAX), "RowMap: too many entries");
  offsets_.push_back(int32_t(index_.size()));
}

RowMap RowMapBuilder::build(int64_t cols, DType dtype, Device device) const {
  NCL_CHECK(dtype == DType::F32 || dtype == DType::F64, "RowMap: weights must be F32 or F64");
  for (int32_t c : index_)
    NCL_CHECK(c < cols, "RowMap: column ", c, " is out of range [0, ", cols, ")");
  RowMap m;
  m.rows = rows();
  m.cols = cols;
  const int64_t nnz = int64_t(index_.size());
  // The transpose by counting sort; within a column the entries keep their row order.
  std::vector<int32_t> t_offsets(size_t(cols) + 1, 0), t_index(index_.size());
  std::vector<double> t_weight(weight_.size());
  for (int32_t c : index_) ++t_offsets[size_t(c) + 1];
  for (int64_t c = 0; c < cols; ++c) t_offsets[size_t(c) + 1] += t_offsets[size_t(c)];
  std::vector<int32_t> next(t_offsets.begin(), t_offsets.end() - 1);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int32_t j = offsets_[size_t(r)]; j < offsets_[size_t(r) + 1]; ++j) {
      const int32_t at = next[size_t(index_[size_t(j)])]++;
      t_index[size_t(at)] = int32_t(r);
      t_weight[size_t(at)] = weight_[size_t(j)];
    }
  m.offsets = i32_tensor(offsets_, device);
  m.index = i32_tensor(index_, device);
  m.weight = Tensor::from_vector(weight_, {nnz}, dtype, device);
  m.t_offsets = i32_tensor(t_offsets, device);
  m.t_index = i32_tensor(t_index, device);
  m.t_weight = Tensor::from_vector(t_weight, {nnz}, dtype, device);
  return m;
}

}  // namespace ncl

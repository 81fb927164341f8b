// RowMap: a fixed sparse matrix that combines rows, for ops::combine_rows.
//
// out row r = Σ weight[j] · x row index[j] over the map's entries j of row r (CSR: entries
// offsets[r] .. offsets[r+1]). A row with no entries is zero. Gathers (one entry of weight 1),
// segment sums and prefix sums are all RowMaps; NCP builds its cluster sums, its G_k and its
// padded logits with them. The map is data, not a parameter: it is built on the host from
// entries given row by row, uploaded once, and holds its transpose for the gradient
// (dx = Mᵀ dy is again a combine_rows, so no kernel needs atomics).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ncl {

struct RowMap {
  int64_t rows = 0, cols = 0;        // out rows, and the rows of x it reads
  Tensor offsets, index, weight;     // I32 (rows + 1), I32 (nnz), dtype (nnz)
  Tensor t_offsets, t_index, t_weight;  // the transpose (cols × rows)

  int64_t entries() const { return index.numel(); }
};

// Collects entries row by row: add(col, w) puts w at (current row, col); end_row() moves to
// the next row. build() checks every column is in [0, cols) and makes the tensors.
class RowMapBuilder {
 public:
  void add(int64_t col, double weight = 1.0);
  void end_row();
  int64_t rows() const { return int64_t(offsets_.size()) - 1; }
  RowMap build(int64_t cols, DType dtype = DType::F32, Device device = Device::CPU) const;

 private:
  std::vector<int32_t> offsets_{0}, index_;
  std::vector<double> weight_;
};

}  // namespace ncl

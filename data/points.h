// Point files: what `ncl cluster INPUT` and `ncl train --data FILE` read.
//
// A point file is a CSV (data/csv.h) or an NPY array (data/npy.h); read_points picks the reader
// by the path's extension and returns one PointSet either way. Every error is one ncl::Error
// line that names the file (and the line and column, for CSV) and the offending value.
// Axis letters: N points, D features.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ncl::data {

// A set of points read from a file: features (N, D) float64 on the CPU, and, when the file has
// a label column, one integer label per point. Labels are numbered 0, 1, 2, … in order of first
// appearance; label_names[l] is the original text of label l, so numeric and string labels work.
struct PointSet {
  Tensor features;                       // (N, D) F64, every value finite
  std::vector<int> labels;               // empty, or N entries in 0..label_names.size()-1
  std::vector<std::string> label_names;  // label_names[l] = original text of label l
  std::vector<std::string> columns;      // D feature names (header names, or "x0", "x1", …)
};

struct ReadOptions {
  // CSV only. "" = no label column; else a header name, or a 0-based column index written in
  // digits (negative counts from the end: "-1" is the last column).
  std::string label_column;
  // NPY only: an optional separate 1-D integer .npy holding one label per point.
  std::string labels_path;
};

// Reads NPY when the path ends in ".npy" (any case), else CSV; "-" reads CSV from stdin.
// Throws ncl::Error when the file is missing or malformed, when N or D is 0, and when an option
// does not apply to the format (label_column with NPY, labels_path with CSV).
PointSet read_points(const std::string& path, const ReadOptions& options = {});

// Throws unless features has exactly `dim` columns:
//   "<path>: points have 3 features but the model expects 2".
void require_dimension(const PointSet& points, int64_t dim, const std::string& path);

// Fills points.labels and points.label_names from one label text per point (ids by first
// appearance). Used by both readers.
void set_labels(PointSet& points, const std::vector<std::string>& texts);

}  // namespace ncl::data

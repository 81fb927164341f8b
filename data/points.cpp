#include "data/points.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <unordered_map>

#include "data/csv.h"
#include "data/npy.h"

namespace ncl::data {
namespace {

using detail::str;

bool has_npy_extension(const std::string& path) {
  if (path.size() < 4) return false;
  std::string extension = path.substr(path.size() - 4);
  for (char& c : extension) c = char(std::tolower(static_cast<unsigned char>(c)));
  return extension == ".npy";
}

// One label per point from a separate 1-D integer NPY file.
std::vector<std::string> read_npy_labels(const std::string& labels_path, int64_t points,
                                         const std::string& path) {
  const Tensor labels = read_npy(labels_path);
  if (labels.dtype() != DType::I32)
    throw Error(str(labels_path, ": labels must be integers, found ", dtype_name(labels.dtype()),
                    " values; HINT: in numpy, np.save(path, labels.astype('<i8'))"));
  if (labels.rank() != 1)
    throw Error(str(labels_path, ": labels have shape ", labels.shape(), "; need a 1-D array of ",
                    points, " labels; HINT: in numpy, labels.ravel()"));
  if (labels.dim(0) != points)
    throw Error(str(labels_path, ": ", labels.dim(0), " labels for the ", points, " points in ",
                    path));
  std::vector<std::string> texts;
  const int32_t* values = labels.data<int32_t>();
  for (int64_t i = 0; i < points; ++i) texts.push_back(std::to_string(values[i]));
  return texts;
}

// NPY points: a 2-D array converted to F64, every value finite; labels from labels_path.
PointSet read_npy_points(const std::string& path, const ReadOptions& options) {
  if (!options.label_column.empty())
    throw Error(str(path, ": a label column applies to CSV input only; HINT: give .npy labels as "
                    "a separate 1-D integer .npy file"));
  const Tensor array = read_npy(path);
  if (array.rank() != 2)
    throw Error(str(path, ": points have shape ", array.shape(), "; ncl needs a 2-D (N, D) "
                    "array; HINT: in numpy, a.reshape(-1, 1) makes 1-D values 1-feature points"));
  if (array.numel() == 0)
    throw Error(str(path, ": points have shape ", array.shape(), "; need at least one point and "
                    "one feature"));

  PointSet points;
  points.features = array.to(DType::F64);  // (N, D)
  const int64_t n = array.dim(0), d = array.dim(1);
  const double* x = points.features.data<double>();
  for (int64_t k = 0; k < n * d; ++k)
    if (!std::isfinite(x[k]))
      throw Error(str(path, ": value ", x[k], " at row ", k / d, ", column ", k % d,
                      " (0-based) is not finite"));
  for (int64_t j = 0; j < d; ++j) points.columns.push_back(str("x", j));
  if (!options.labels_path.empty())
    set_labels(points, read_npy_labels(options.labels_path, n, path));
  return points;
}

}  // namespace

PointSet read_points(const std::string& path, const ReadOptions& options) {
  if (has_npy_extension(path)) return read_npy_points(path, options);
  if (path.ends_with(".safetensors") && std::filesystem::exists(path))
    throw Error(str(path, ": a checkpoint or benchmark file, not points; HINT: points are CSV or "
                    ".npy; score a benchmark with `ncl eval --data ", path, "`"));
  if (!options.labels_path.empty())
    throw Error(str(path, ": a separate labels file applies to .npy input only; HINT: give CSV "
                    "labels as a label column"));
  if (path == "-") return read_csv(std::cin, "<stdin>", options);
  return read_csv(path, options);
}

void require_dimension(const PointSet& points, int64_t dim, const std::string& path) {
  const int64_t features = points.features.dim(1);
  if (features != dim)
    throw Error(str(path, ": points have ", features, features == 1 ? " feature" : " features",
                    " but the model expects ", dim,
                    features == dim + 1 && points.labels.empty()
                        ? "; HINT: if one column holds labels, name it with --label-column"
                        : ""));
}

void set_labels(PointSet& points, const std::vector<std::string>& texts) {
  std::unordered_map<std::string, int> ids;
  points.labels.clear();
  points.label_names.clear();
  points.labels.reserve(texts.size());
  for (const std::string& text : texts) {
    auto [it, added] = ids.try_emplace(text, int(ids.size()));
    if (added) points.label_names.push_back(text);
    points.labels.push_back(it->second);
  }
}

}  // namespace ncl::data

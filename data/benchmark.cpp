#include "data/benchmark.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "tensor/error.h"
#include "tensor/safetensors.h"

namespace ncl::data {

namespace {

constexpr const char* kFormat = "ncl-benchmark";
constexpr int kVersion = 1;

Tensor i32_tensor(const std::vector<int64_t>& values) {
  return Tensor::from_vector(std::vector<double>(values.begin(), values.end()),
                             {int64_t(values.size())}, DType::I32);
}

const Tensor& require(const TensorFile& file, const std::string& name, const std::string& path) {
  const Tensor* t = file.find(name);
  NCL_CHECK(t != nullptr, path, ": benchmark file has no tensor '", name, "'");
  return *t;
}

}  // namespace

Dataset dataset_from_batch(const Batch& batch, int64_t b) {
  const int64_t N = batch.points.dim(1), D = batch.points.dim(2);
  const float* x = batch.points.data<float>() + b * N * D;
  Dataset out;
  out.dim = D;
  out.points.assign(x, x + N * D);
  out.labels = batch.labels[b];
  if (!batch.truth.empty()) out.truth = batch.truth[b];
  return out;
}

Benchmark generate_benchmark(const Generator& generator, int64_t datasets, int64_t batch,
                             uint64_t seed) {
  NCL_CHECK(datasets >= 1 && batch >= 1, "a benchmark needs datasets >= 1 and batch >= 1, got ",
            datasets, " and ", batch);
  Benchmark out{generator.name(), seed, batch, {}};
  Rng rng(seed);
  while (int64_t(out.datasets.size()) < datasets) {
    Batch drawn = generator.sample(batch, rng);
    for (int64_t b = 0; b < batch && int64_t(out.datasets.size()) < datasets; ++b)
      out.datasets.push_back(dataset_from_batch(drawn, b));
  }
  return out;
}

void save_benchmark(const std::string& path, const Benchmark& benchmark) {
  NCL_CHECK(!benchmark.datasets.empty(), "refusing to save an empty benchmark to ", path);
  const int64_t D = benchmark.datasets[0].dim;
  std::vector<double> points, labels, weights, means, stddevs;
  std::vector<int64_t> offsets{0}, truth_offsets{0};
  bool has_truth = benchmark.datasets[0].truth.has_value();
  for (const Dataset& d : benchmark.datasets) {
    NCL_CHECK(d.dim == D, "benchmark datasets differ in dimension (", d.dim, " vs ", D, ")");
    points.insert(points.end(), d.points.begin(), d.points.end());
    labels.insert(labels.end(), d.labels.begin(), d.labels.end());
    offsets.push_back(offsets.back() + d.size());
    NCL_CHECK(d.truth.has_value() == has_truth, "some benchmark datasets lack their true mixture");
    if (has_truth) {
      weights.insert(weights.end(), d.truth->weights.begin(), d.truth->weights.end());
      means.insert(means.end(), d.truth->means.begin(), d.truth->means.end());
      stddevs.insert(stddevs.end(), d.truth->stddevs.begin(), d.truth->stddevs.end());
      truth_offsets.push_back(truth_offsets.back() + d.truth->clusters());
    }
  }
  const int64_t total = offsets.back();
  TensorFile file;
  file.metadata = {{"format", kFormat},
                   {"format_version", std::to_string(kVersion)},
                   {"generator", benchmark.generator},
                   {"seed", std::to_string(benchmark.seed)},
                   {"batch", std::to_string(benchmark.batch)},
                   {"datasets", std::to_string(benchmark.datasets.size())}};
  file.tensors.push_back({"points", Tensor::from_vector(points, {total, D}, DType::F32)});
  file.tensors.push_back({"labels", Tensor::from_vector(labels, {total}, DType::I32)});
  file.tensors.push_back({"offsets", i32_tensor(offsets)});
  if (has_truth) {
    const int64_t K = truth_offsets.back();
    file.tensors.push_back({"truth.offsets", i32_tensor(truth_offsets)});
    file.tensors.push_back({"truth.weights", Tensor::from_vector(weights, {K}, DType::F64)});
    file.tensors.push_back({"truth.means", Tensor::from_vector(means, {K, D}, DType::F64)});
    file.tensors.push_back({"truth.stddevs", Tensor::from_vector(stddevs, {K, D}, DType::F64)});
  }
  save_safetensors(path, file);
}

Benchmark load_benchmark(const std::string& path) {
  TensorFile file = load_safetensors(path);
  auto format = file.metadata.find("format");
  NCL_CHECK(format != file.metadata.end() && format->second == kFormat, path,
            ": not an ncl benchmark file (metadata 'format' is not '", kFormat,
            "'); HINT: make one with `ncl gen --data NAME --datasets M --out FILE`");
  NCL_CHECK(file.metadata["format_version"] == std::to_string(kVersion), path,
            ": benchmark format_version '", file.metadata["format_version"], "' is not ", kVersion);
  Benchmark out;
  out.generator = file.metadata["generator"];
  // seed and batch are informational; a missing or malformed value reads as 0 / 1.
  out.seed = std::strtoull(file.metadata["seed"].c_str(), nullptr, 10);
  out.batch = std::max<int64_t>(1, std::strtoll(file.metadata["batch"].c_str(), nullptr, 10));
  const Tensor& points = require(file, "points", path);
  const Tensor& labels = require(file, "labels", path);
  const Tensor& offsets = require(file, "offsets", path);
  NCL_CHECK(points.rank() == 2 && points.dtype() == DType::F32 && labels.rank() == 1 &&
                labels.dtype() == DType::I32 && offsets.rank() == 1 &&
                offsets.dtype() == DType::I32 && labels.dim(0) == points.dim(0) &&
                offsets.dim(0) >= 2,
            path, ": benchmark tensors have unexpected shapes or dtypes");
  const int64_t D = points.dim(1), M = offsets.dim(0) - 1;
  std::vector<double> x = points.to_vector(), y = labels.to_vector(), off = offsets.to_vector();
  const Tensor* truth_offsets = file.find("truth.offsets");
  std::vector<double> toff, w, mu, sd;
  if (truth_offsets) {
    toff = truth_offsets->to_vector();
    w = require(file, "truth.weights", path).to_vector();
    mu = require(file, "truth.means", path).to_vector();
    sd = require(file, "truth.stddevs", path).to_vector();
    NCL_CHECK(int64_t(toff.size()) == M + 1 && toff.front() == 0 &&
                  int64_t(w.size()) == int64_t(toff.back()) &&
                  mu.size() == w.size() * size_t(D) && sd.size() == mu.size(),
              path, ": benchmark truth tensors are inconsistent");
  }
  // Numbers a benchmark cannot hold: every score computed from them would be NaN.
  auto first_bad = [](const std::vector<double>& v, bool (*ok)(double)) {
    return std::find_if_not(v.begin(), v.end(), ok) - v.begin();
  };
  auto finite = [](double v) { return std::isfinite(v); };
  const int64_t width = std::max<int64_t>(D, 1);
  if (const int64_t i = first_bad(x, finite); i < int64_t(x.size()))
    throw Error(detail::str(path, ": point ", i / width, " has the value ", x[size_t(i)],
                            "; a benchmark's points are finite"));
  if (const int64_t i = first_bad(sd, [](double v) { return v > 0 && std::isfinite(v); });
      i < int64_t(sd.size()))
    throw Error(detail::str(path, ": true component ", i / width, " has the standard deviation ",
                            sd[size_t(i)], "; they are finite and > 0"));
  if (first_bad(mu, finite) < int64_t(mu.size()) ||
      first_bad(w, [](double v) { return v >= 0 && std::isfinite(v); }) < int64_t(w.size()))
    throw Error(detail::str(path, ": the true mixture holds a mean that is not finite or a "
                            "weight that is negative or not finite"));
  NCL_CHECK(off.front() == 0 && int64_t(off.back()) == points.dim(0), path,
            ": benchmark offsets run from ", off.front(), " to ", off.back(), " but the file holds ",
            points.dim(0), " points");
  for (int64_t m = 0; m < M; ++m) {
    int64_t begin = int64_t(off[m]), end = int64_t(off[m + 1]);
    NCL_CHECK(0 <= begin && begin < end && end <= points.dim(0), path,
              ": benchmark offsets are not increasing within the data (dataset ", m, ")");
    Dataset d;
    d.dim = D;
    d.points.assign(x.begin() + begin * D, x.begin() + end * D);
    d.labels.assign(y.begin() + begin, y.begin() + end);
    if (truth_offsets) {
      int64_t k0 = int64_t(toff[m]), k1 = int64_t(toff[m + 1]);
      NCL_CHECK(0 <= k0 && k0 < k1, path, ": benchmark truth offsets are not increasing");
      d.truth = GaussianMixture{D, {w.begin() + k0, w.begin() + k1},
                                {mu.begin() + k0 * D, mu.begin() + k1 * D},
                                {sd.begin() + k0 * D, sd.begin() + k1 * D}};
    }
    out.datasets.push_back(std::move(d));
  }
  return out;
}

}  // namespace ncl::data

// Benchmarks: M datasets generated once from a fixed seed and kept in one file, so every model
// and every external baseline is scored on identical data.
//
// File layout (safetensors, readable from Python): "points" F32 (total, D), "labels" I32
// (total), "offsets" I32 (M+1) with dataset m = rows offsets[m]..offsets[m+1]; when the
// generator knows its mixtures also "truth.offsets" I32 (M+1) into "truth.weights" F64 (ΣK),
// "truth.means" and "truth.stddevs" F64 (ΣK, D). Metadata: format = "ncl-benchmark",
// format_version, generator, seed, datasets, batch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/generator.h"
#include "data/mixture.h"

namespace ncl::data {

struct Dataset {
  int64_t dim = 0;                       // D
  std::vector<double> points;            // (N, D) row-major
  std::vector<int> labels;               // (N)
  std::optional<GaussianMixture> truth;  // the mixture that generated it, when known
  int64_t size() const { return dim == 0 ? 0 : int64_t(points.size()) / dim; }
};

struct Benchmark {
  std::string generator;
  uint64_t seed = 0;
  int64_t batch = 0;  // datasets per generator call (they share N)
  std::vector<Dataset> datasets;
};

// Datasets drawn `batch` at a time from Rng(seed): the same arguments give the same file.
Benchmark generate_benchmark(const Generator& generator, int64_t datasets, int64_t batch,
                             uint64_t seed);

// Dataset b of a generated Batch.
Dataset dataset_from_batch(const Batch& batch, int64_t b);

void save_benchmark(const std::string& path, const Benchmark& benchmark);  // atomic
// Throws ncl::Error naming the file when it is not an ncl benchmark or is inconsistent.
Benchmark load_benchmark(const std::string& path);

}  // namespace ncl::data

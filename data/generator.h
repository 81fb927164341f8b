// Dataset generators: seeded sources of labelled point sets for training and benchmarks.
//
// A generator draws a Batch of B datasets that share one size N (so they stack into one
// (B, N, D) tensor), with every point's true cluster and, for synthetic mixtures, the true
// parameters that produced it (for the oracle log-likelihood). Generators are named; the
// names the command line accepts are listed by generator_names() and built by make_generator.
// Axis letters: B datasets, N points, D features, K clusters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/mixture.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace ncl::data {

struct Batch {
  Tensor points;                         // (B, N, D) F32 on the CPU
  std::vector<std::vector<int>> labels;  // B lists of N cluster ids 0..K-1
  std::vector<GaussianMixture> truth;       // B entries, or empty when the truth is unknown
};

class Generator {
 public:
  virtual ~Generator() = default;
  virtual std::string name() const = 0;
  virtual int64_t dim() const = 0;           // D
  virtual int64_t max_clusters() const = 0;  // the most clusters a dataset can have
  // Draws N for the batch, then each dataset, from rng.
  virtual Batch sample(int64_t batch, Rng& rng) const = 0;
  // Datasets per draw when making a benchmark file (`ncl gen`, `ncl eval --data NAME`): 1 for
  // generators whose draws share more than N (crp-mog shares the partition).
  virtual int64_t benchmark_batch() const { return 10; }
};

// Set Transformer's mixture of Gaussians (spec/models.md §1): N ~ U{300..599} per batch, D = 2,
// K = 4 clusters, means U(-4, 4)², stddev 0.3, weights ~ Dir(1, 1, 1, 1), labels ~ Cat(weights).
// The N range [n_min, n_max) can be changed (the benchmark program times N = 500 too);
// `mog-k4-paper` is the same mixture with the ST paper's N ~ U{100..500} (supp. §2.3.1; the
// released code, and mog-k4, use 300..599).
class MogK4 : public Generator {
 public:
  explicit MogK4(int64_t n_min = 300, int64_t n_max = 600, std::string name = "mog-k4")
      : n_min_(n_min), n_max_(n_max), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  int64_t dim() const override { return 2; }
  int64_t max_clusters() const override { return 4; }
  Batch sample(int64_t batch, Rng& rng) const override;

 private:
  int64_t n_min_, n_max_;
  std::string name_;
};

// Names make_generator accepts, for --help and error messages.
std::vector<std::string> generator_names();
// The generator called `name`, or ncl::Error listing the known names.
std::unique_ptr<Generator> make_generator(const std::string& name);

}  // namespace ncl::data

// NCP's synthetic data (reference notes §2.1): a Chinese-restaurant-process mixture in 2-D.
//
// Partition: points are seated one at a time by CRP(α): point i (0-based) opens a new cluster
// with probability α / (α + i), else joins cluster k with probability n_k / (α + i). Seating
// order is exchangeable, so the points come in that order and labels are already numbered by
// first appearance. N ~ U{n_min .. n_max − 1}; μ_k ~ N(0, λ² I), x ~ N(μ_k, σ² I); then every
// dataset is centred on its per-coordinate median (not scaled). The truth is (μ_k − median, σ)
// with the empirical proportions.
//
// Training batches share N and the partition (only the means differ), as the reference's
// batches do, which lets NCP's loss run one batched forward for the whole batch. Benchmark
// draws must not share: benchmark_batch() is 1, so every benchmark dataset has its own.
#pragma once

#include "data/generator.h"

namespace ncl::data {

struct CrpMogOptions {
  double alpha = 0.7, lambda = 10.0, sigma = 1.0;
  int64_t n_min = 5, n_max = 100;  // N in [n_min, n_max)
};

class CrpMog : public Generator {
 public:
  explicit CrpMog(CrpMogOptions options = {});
  std::string name() const override { return "crp-mog"; }
  int64_t dim() const override { return 2; }
  // CRP has no hard bound; this is the K that N = n_max − 1 points exceed with probability
  // below 1e-4 at the default α (used only for sizing).
  int64_t max_clusters() const override { return 12; }
  int64_t benchmark_batch() const override { return 1; }
  Batch sample(int64_t batch, Rng& rng) const override;

 private:
  CrpMogOptions options_;
};

// One CRP(α) partition of n points in seating order (labels numbered by first appearance).
std::vector<int> sample_crp(int64_t n, double alpha, Rng& rng);

}  // namespace ncl::data

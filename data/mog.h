// DAC's synthetic data (reference notes §3.5): mixtures with a random number of clusters.
//
// Partition: π ~ Dir(α·1) over K_max components; each component k ≥ 1 is kept with probability
// 1/2 (component 0 always), π renormalised over the kept ones; labels ~ Cat(π) (a kept
// component can still get no point). One N per batch, N ~ U{⌊0.3·N_max⌋ .. N_max − 1}.
// Labels are renumbered 0, 1, … over the components that received points.
#pragma once

#include "data/generator.h"

namespace ncl::data {

// What both generators share: a name, 2-D points, K_max and N_max (N ~ U{⌊0.3·N_max⌋ ..
// N_max − 1} per batch).
class RandomPartitionGenerator : public Generator {
 public:
  RandomPartitionGenerator(std::string name, int64_t max_clusters, int64_t max_points);
  std::string name() const override { return name_; }
  int64_t dim() const override { return 2; }
  int64_t max_clusters() const override { return max_clusters_; }

 protected:
  std::string name_;
  int64_t max_clusters_, max_points_;
};

// Gaussian clusters in 2-D (α = 1): μ_k ~ N(0, 3² I), σ_kd = exp(log 0.25 + 0.1·ε).
// The truth is the true (μ, σ) with the empirical label proportions as weights (the oracle of
// the reference code).
class Mog : public RandomPartitionGenerator {
 public:
  using RandomPartitionGenerator::RandomPartitionGenerator;
  Batch sample(int64_t batch, Rng& rng) const override;
};

// Noisy arcs of random ellipses (α = 5): per point a 1-D MoG draw r (recipe above, in 1-D)
// gives the angle φ = 2π·0.4·r on its cluster's ellipse (a cos φ, b sin φ), a, b ~ N(0, 2²);
// the point moves along the ellipse's normal by t ~ N(0, 0.1²), then the cluster is rotated by
// ρ ~ U(0, 2π) and shifted by N(0, min(K_max, 4)² I). No true density: `truth` stays empty.
class WarpedMog : public RandomPartitionGenerator {
 public:
  using RandomPartitionGenerator::RandomPartitionGenerator;
  Batch sample(int64_t batch, Rng& rng) const override;
};

}  // namespace ncl::data

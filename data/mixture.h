// Diagonal-Gaussian mixtures on plain host arrays: the truth behind a generated dataset and
// the mixture a model predicts. Everything the metrics and `ncl cluster` need without autograd:
// per-point log-likelihood, responsibilities, hard labels and one EM refinement step.
// A dataset is `points` (N, D) row-major doubles. K clusters, D features.
#pragma once

#include <cstdint>
#include <vector>

namespace ncl::data {

struct GaussianMixture {
  int64_t dim = 0;              // D
  std::vector<double> weights;  // (K), sums to 1
  std::vector<double> means;    // (K, D) row-major
  std::vector<double> stddevs;  // (K, D), > 0
  int64_t clusters() const { return int64_t(weights.size()); }
};

// log π_k + log N(x_n; μ_k, diag σ_k²) for every point and cluster: (N, K) row-major.
// weight_floor is added to π_k inside the log (the reference adds 1e-10).
std::vector<double> joint_log_density(const GaussianMixture& mixture, const std::vector<double>& points,
                                      double weight_floor = 0.0);

// Mean over points of log Σ_k π_k N(x_n; μ_k, σ_k²).
double mean_log_likelihood(const GaussianMixture& mixture, const std::vector<double>& points,
                           double weight_floor = 0.0);

// Posterior cluster probabilities r_nk (N, K) row-major; each row sums to 1.
std::vector<double> responsibilities(const GaussianMixture& mixture, const std::vector<double>& points,
                                     double weight_floor = 0.0);

// argmax_k r_nk for each point.
std::vector<int> hard_labels(const std::vector<double>& responsibilities, int64_t clusters);

// One EM step from `mixture` (the Set Transformer's LL1): N_k = Σ_n r_nk + 1e-10,
// π_k = N_k / N, μ_k = Σ_n r_nk x_n / N_k, σ_kd = sqrt(Σ_n r_nk (x_nd − μ_kd)² / N_k + 1e-10).
GaussianMixture em_step(const GaussianMixture& mixture, const std::vector<double>& points,
                        double weight_floor = 0.0);

}  // namespace ncl::data

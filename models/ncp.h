// NCP, the Neural Clustering Process (spec/models.md §3; reference notes §1–3 and §8): reads the
// points one at a time and gives each a distribution over "join one of the K clusters so far"
// and "open cluster K+1", so every clustering of a dataset gets a probability.
//
//   q(c_1..N | x) = Π_n q(c_n | c_<n, x),  c_1 = 0 (the first point opens cluster 0, unscored)
//   h_i = h(x_i), q_i = q(x_i)                    two separate PReLU MLPs, D → h_dim
//   H_k = Σ_{i<n, c_i=k} h_i                      cluster sums (sums, not means)
//   U   = Σ_{i>n} q_i                             the points not read yet (0 at the last point)
//   G_k = Σ_{j≠k} g(H_j) + g(H_k + h_n)           candidate k ≤ K (H_K = empty: g of an empty
//                                                 cluster is 0, never g(0))
//   logit_k = f([G_k, U]),  q(c_n = k | ·) = softmax over the K+1 candidates
// Widths: h, q: D → 128 ×4 → 256; g: 256 → 128 ×5 → 512; f: 768 → 128 ×5 → 1 without a final
// bias; 495,506 parameters at D = 2 (the reference's).
//
// Training (loss(), backward()): teacher forcing on the true labels, numbered by first
// appearance after each shuffle; the summed NLL of the N−1 scored points, mean over datasets,
// summed over `orders` random orderings (one shared by the whole batch). One ordering of the
// whole batch is one batched forward: every dataset's candidates of every step are rows of one
// matrix, so g and f each run as one GEMM per layer (docs/derivations.md, "NCP").
// Inference (cluster()): models/ncp_inference.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/episodes.h"
#include "models/model.h"
#include "nn/layers.h"

namespace ncl::models {

struct NcpConfig {
  int64_t dim_input = 2, hidden = 128, h_dim = 256, g_dim = 512;
  int64_t encoder_layers = 4, g_layers = 5, f_layers = 5;  // hidden PReLU layers of h/q, g, f
  int64_t orders = 6;  // orderings per training batch, their gradients summed

  nlohmann::json to_json() const;
  // Missing keys keep their defaults; unknown keys or bad values throw ncl::Error.
  static NcpConfig from_json(const nlohmann::json& j);
};

class Ncp : public ClusteringModel {
 public:
  Ncp(const NcpConfig& config, Rng& rng);

  // Teacher-forced log-probabilities of one ordering: points (B, N, D) in that order, labels
  // per dataset numbered by first appearance (datasets may have different partitions).
  // Returns (B·N, W): row b·N + n holds log q(c_n = k | c_<n, x) in slot k ≤ K_n (slot K_n is
  // "new cluster"); slots above K_n are masked to 0 and `mask` (I32, 1 = no such candidate)
  // says which. W = 1 + the most clusters of any dataset.
  Variable log_probs(const Variable& points, const std::vector<std::vector<int>>& labels,
                     Tensor* mask = nullptr) const;
  // Σ_{n≥1} −log q(c_n | c_<n, x) per dataset, mean over datasets, for one ordering.
  Variable order_nll(const Variable& points, const std::vector<std::vector<int>>& labels) const;
  // The K+1 logits of point n given the labels of points 0..n-1, computed the slow, obvious
  // way (every H_k summed afresh, g on every cluster of every candidate): the test oracle for
  // the batched and the incremental forms. points (N, D) row-major.
  std::vector<double> logits_from_scratch(const std::vector<double>& points,
                                          const std::vector<int>& labels, int64_t n) const;

  std::string name() const override { return "ncp"; }
  nlohmann::json config() const override { return config_.to_json(); }
  int64_t dim() const override { return config_.dim_input; }
  // The reference's: B = 64, 3,500 steps, Adam 1e-4 with coupled weight decay 0.01, restarted
  // at 5e-5 (step 1,200) and 1e-5 (step 2,200).
  TrainingRecipe recipe() const override;
  // Σ over `orders` orderings drawn from rng of order_nll.
  Variable loss(const data::Batch& batch, Rng& rng) const override;
  // The same orderings and gradients as loss(), one ordering (and at most micro_batch datasets)
  // per backward, so one ordering's graph is alive at a time. Reports the orderings' variance.
  StepReport backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const override;
  // Reads the points in a random order from Rng(options.seed), then Search::Sample draws
  // options.samples clusterings (one batch), Search::Beam keeps the options.samples most
  // probable partial clusterings at every point, Search::Greedy takes the argmax. The result's
  // labels are the most probable clustering found; `posterior` lists the distinct ones with
  // their NLL and weight (sample: the share of the draws; beam: exp(−NLL), normalised), and
  // membership is that posterior's vote for each of the best clustering's clusters.
  ClusterResult cluster(const std::vector<double>& points,
                        const InferenceOptions& options = {}) const override;
  std::optional<double> partition_nll(const std::vector<double>& points,
                                      const std::vector<int>& labels,
                                      uint64_t seed) const override;

  // Episodes from a labeled file: 1..6 classes, N in [5, 100), like crp-mog's.
  static data::EpisodeOptions episodes();

 private:
  friend class NcpSearch;  // models/ncp_inference.cpp

  // f's first layer splits into W_G (on G_k) and W_U (on U). G_k is a sum of g rows, and g
  // ends in a linear layer (W_g·z + b_g), so W_G G_k = Σ (m·z + c) over the same terms with
  // m = W_G W_g (hidden × hidden) and c = W_G b_g: the same function with 128-wide rows
  // instead of 512-wide ones, and g's last product and f's G product folded into one.
  struct Fold {
    Variable m, c, w_u;
  };
  Fold folded() const;

  NcpConfig config_;
  std::unique_ptr<nn::MLP> h_;  // "h": D → h_dim, the cluster encoder
  std::unique_ptr<nn::MLP> q_;  // "q": D → h_dim, the encoder of points not read yet (U)
  std::unique_ptr<nn::MLP> g_;  // "g": h_dim → g_dim
  std::unique_ptr<nn::MLP> f_;  // "f": g_dim + h_dim → 1, no final bias
};

// Labels renumbered by first appearance (0, 1, … in reading order); the inverse-free relabel
// every NCP loss and sampler applies.
std::vector<int> relabel_by_appearance(const std::vector<int>& labels);

}  // namespace ncl::models

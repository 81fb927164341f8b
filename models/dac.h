// DAC, Deep Amortized Clustering (spec/models.md §2; reference notes §3): clusters a set by
// filtering, one cluster per forward pass, so the number of clusters is found, not given.
//
// One pass over points X (B, N, D) with a key mask (points already claimed are removed):
//   H_X = encoder(X)                    min loss: StackedISAB(D → dim)
//                                       anc loss: MAB(X → x_anchor), then StackedISAB(dim → dim)
//   H_θ = PMA_1(H_X)                    (B, 1, dim) — the cluster this pass proposes
//   θ   = Linear(H_θ)                   gaussian: [μ (D), σ-raw (D)], σ = softplus + min_stddev
//                                       maf: a dim-wide context for a conditional MAF
//   ll_n = log p(x_n | θ)               the proposed cluster's density at every point
//   logit_n = Linear(StackedISAB(MAB(H_X → H_θ)))   membership of point n in this cluster
// The mask reaches every ISAB's inducing step and the PMA, never the MAB whose key is H_θ or
// the anchor. Each StackedISAB has `blocks` ISABs; `tied` shares blocks 2…n (reference: on).
//
// Losses (reference notes §3.6), with BCE the binary cross-entropy of logit against membership:
//   min: per dataset, min over its non-empty true clusters k of
//        mean_n BCE(logit_n, [label_n = k]) − mean_{n in k} ll_n;  mean over datasets.
//   anc: anchor a ~ U{0..N−1} per dataset, target t_n = [label_n = label_a];
//        mean over all B·N of BCE(logit, t) − mean over datasets of mean_{n: t_n} ll_n.
// Inference: see cluster() below and models/dac_inference.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/episodes.h"
#include "models/model.h"
#include "nn/attention.h"
#include "nn/flows.h"
#include "nn/layers.h"

namespace ncl::models {

struct DacConfig {
  int64_t dim_input = 2, dim = 128, heads = 4, inducing = 32, blocks = 4;
  bool tied = true;                  // StackedISAB blocks 2…n share weights (as the reference)
  std::string density = "gaussian";  // "gaussian" (model "dac") or "maf" (model "dac-maf")
  std::string loss = "min";          // "min" or "anc" (anchored)
  int64_t flow_blocks = 4, flow_hidden = 128;
  double min_stddev = 1e-5;  // Gaussian σ floor (the reference has none; see set_transformer.h)

  nlohmann::json to_json() const;
  // Missing keys keep their defaults; unknown keys or bad values throw ncl::Error.
  static DacConfig from_json(const nlohmann::json& j);
};

// One filtering pass over a batch.
struct FilterOutput {
  Variable logits;       // (B, N) membership logit of every point in the proposed cluster
  Variable log_density;  // (B, N) log p(x_n | θ)
  Variable theta;        // (B, P): gaussian [μ (D), σ (D)] with σ > 0; maf the context (dim)
};

class Dac : public ClusteringModel {
 public:
  Dac(const DacConfig& config, Rng& rng);

  // points (B, N, D); key_mask I32 (B, N), 1 = point removed (or undefined: none removed);
  // anchors (B indices, anchored model only) — each dataset's anchor point.
  // with_density = false leaves log_density undefined (inference needs it for all points, not
  // only the remaining ones, and computes it separately).
  FilterOutput forward(const Variable& points, const Tensor& key_mask = {},
                       const std::vector<int64_t>& anchors = {}, bool with_density = true) const;
  // θ (B, P) alone: the encoder and the PMA of forward(), without the membership head.
  Variable propose_theta(const Variable& points, const Tensor& key_mask = {},
                         const std::vector<int64_t>& anchors = {}) const;
  // log p(x | θ): points (B, N, D) under θ (B, P) -> (B, N).
  Variable log_density(const Variable& points, const Variable& theta) const;

  std::string name() const override { return config_.density == "maf" ? "dac-maf" : "dac"; }
  nlohmann::json config() const override { return config_.to_json(); }
  int64_t dim() const override { return config_.dim_input; }
  // Adam 5e-4, cosine to 0, clip 10, B = 100; 20k steps (gaussian) or 40k (maf).
  TrainingRecipe recipe() const override;
  Variable loss(const data::Batch& batch, Rng& rng) const override;
  bool loss_draws() const override { return anchor_ != nullptr; }  // the anchored loss's anchors
  // The anchored loss draws every anchor of the batch first, as loss() would chunk by chunk, so
  // its micro-batches draw nothing and run on the CPU threads at once; the min loss: the default.
  StepReport backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const override;
  // Filtering passes on the points no earlier pass claimed (dropped from the set, so later
  // passes cost less), each claiming those with logit > 0; the anchored model draws its anchor
  // among them from Rng(options.seed) and always claims it. Stops when every point is claimed,
  // when a pass claims nothing (the min model would repeat it), or after options.max_passes.
  // Points left then are placed by options.leftovers. With options.refine, each cluster's θ is
  // proposed again from its members alone and every point joins its most probable cluster;
  // with options.prune too, clusters not worth BIC's price of their parameters are removed
  // (models/dac_inference.cpp). The clusters' weights are their shares of the points;
  // membership is each point's posterior over the clusters' densities, and the
  // log-likelihood is that mixture's.
  ClusterResult cluster(const std::vector<double>& points,
                        const InferenceOptions& options = {}) const override;

  // Episodes from a labeled file: 1..4 classes, N in [300, 1000), as the generated training data.
  static data::EpisodeOptions episodes();

 private:
  // Log-density of `points` (N, D) under each pass's θ (K, P) -> (K, N) row-major.
  std::vector<double> densities(const std::vector<double>& points, const Tensor& theta) const;
  // The encoder's output H_X (B, N, W), the pooled cluster H_θ (B, 1, W) and θ (B, P).
  struct Proposal {
    Variable H, cluster, theta;
  };
  Proposal propose(const Variable& points, const Tensor& key_mask,
                   const std::vector<int64_t>& anchors) const;
  // One anchor per dataset, U{0..N−1}: what the anchored loss draws.
  static std::vector<int64_t> draw_anchors(const data::Batch& batch, Rng& rng);
  // The anchored loss with these anchors (one per dataset of the batch).
  Variable anchored_loss(const data::Batch& batch, const std::vector<int64_t>& anchors) const;

  DacConfig config_;
  std::unique_ptr<nn::MAB> anchor_;           // "anchor" (anc only): X attends to its anchor
  std::unique_ptr<nn::StackedISAB> encoder_;  // "encoder"
  std::unique_ptr<nn::PMA> pool_;             // "pool"
  std::unique_ptr<nn::Linear> theta_;         // "theta": dim -> 2D (gaussian) or dim (maf)
  std::unique_ptr<nn::MAF> flow_;             // "flow" (maf only)
  std::unique_ptr<nn::MAB> join_;             // "join": MAB(H_X → H_θ)
  std::unique_ptr<nn::StackedISAB> decoder_;  // "decoder"
  std::unique_ptr<nn::Linear> logit_;         // "logit": dim -> 1
};

}  // namespace ncl::models

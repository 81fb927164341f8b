// ClusteringModel: what every amortized-clustering model offers the command line.
//
// A model is an nn::Module (its parameters are the checkpoint) with a name, a JSON
// configuration that rebuilds it, a training loss on a generated Batch, its training recipe,
// and cluster(), which labels one dataset in a few forward passes. Points reach the model
// already standardised (see data/episodes.h), as host data; the model moves them to the device
// its parameters are on (Module::to). Results are host data in the same standardised units.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "data/generator.h"
#include "data/mixture.h"
#include "nn/module.h"

namespace ncl::models {

struct ClusterResult {
  int64_t clusters = 0;                   // K (columns of membership)
  std::vector<int> labels;                // (N) in 0..K-1
  std::vector<double> membership;         // (N, K) row-major, rows sum to 1
  std::optional<data::GaussianMixture> mixture;  // the fitted components, when the model has them
  std::optional<double> log_likelihood;   // mean per-point LL of the found mixture
  std::optional<double> log_likelihood_em;  // the same after one EM step (the Set Transformer's LL1)
};

// Adam settings and schedule the published recipe uses; `ncl train` flags override them.
struct TrainingRecipe {
  int64_t steps = 1000, batch = 10;
  double lr = 1e-3;
  double decay_at = 0.7;  // lr ×0.1 once this fraction of the steps is done (0: never)
  double clip_norm = 0.0;  // 0: no clipping
};

class ClusteringModel : public nn::Module {
 public:
  virtual std::string name() const = 0;
  virtual nlohmann::json config() const = 0;
  virtual int64_t dim() const = 0;  // D, the features per point
  virtual TrainingRecipe recipe() const = 0;
  // Scalar training loss on a batch (points (B, N, D) F32).
  virtual Variable loss(const data::Batch& batch) const = 0;
  // Clusters one dataset, points (N, D) row-major. Runs without building a graph.
  virtual ClusterResult cluster(const std::vector<double>& points) const = 0;

  // Where the parameters live (after Module::to(Device)).
  Device device() const { return parameters().front().value().device(); }
};

}  // namespace ncl::models

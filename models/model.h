// ClusteringModel: what every amortized-clustering model offers the command line.
//
// A model is an nn::Module (its parameters are the checkpoint) with a name, a JSON
// configuration that rebuilds it, a training loss on a generated Batch, its training recipe,
// and cluster(), which labels one dataset in a few forward passes. Points reach the model
// already standardised (see data/episodes.h), as host data; the model moves them to the device
// its parameters are on (Module::to). Results are host data in the same standardised units.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
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
  std::optional<data::GaussianMixture> mixture;  // Gaussian components, when the model has them
  std::optional<double> log_likelihood;   // mean per-point LL of the found mixture
  std::optional<double> log_likelihood_em;  // the same after one EM step (the Set Transformer's LL1)
  // Filtering models: forward passes run, points no pass claimed (placed by the leftover
  // policy of InferenceOptions), and clusters removed by InferenceOptions::prune.
  int64_t passes = 0, leftovers = 0, pruned = 0;
  // The found mixture's log-density at other points ((M, D) row-major → M values), for plots
  // of densities that are not Gaussian; empty when `mixture` says it all.
  std::function<std::vector<double>(const std::vector<double>&)> log_density;
  // Models with a posterior over clusterings (NCP): the distinct clusterings found, by
  // increasing NLL, each with its share of the posterior estimate (weights sum to 1);
  // `labels` is the first. Empty for the other models.
  struct Clustering {
    std::vector<int> labels;  // (N), numbered by first appearance
    double nll = 0.0;         // −log q(labels | x) for the order the model read the points in
    double weight = 0.0;
  };
  std::vector<Clustering> posterior;
};

// Ceilings of a model config's integers, far above any published size: what would build a
// model no machine holds (a billion inducing points, a million layers) is refused at once.
// Depths: layer, block and ordering counts; widths: every other size.
constexpr int64_t kMaxConfigDepth = 256;
constexpr int64_t kMaxConfigWidth = 65536;
// kMaxConfigDepth for a key of a count ("...layers", "...blocks", "orders"), else the width's.
int64_t config_ceiling(const std::string& key);

// Throws ncl::Error naming `source` when a number of the result is NaN or infinite (the
// mixture, the membership, the log-likelihoods, NCP's NLLs), which float32 overflow on points
// far beyond any training data, or a damaged checkpoint, produces: a clustering with such
// numbers is not returned as if it were one.
void require_finite(const ClusterResult& result, const std::string& source);

// How DAC (passes, leftovers, anchors) and NCP (search, samples, reading order) run inference;
// the Set Transformer ignores it.
enum class Leftovers {
  Nearest,  // each joins the found cluster of highest weighted density (default)
  Own,      // together they form one more cluster
  First,    // they join cluster 0 (what the reference code does, silently)
};
// How NCP explores clusterings (models/ncp.h): S random draws, a beam of width S, or argmax.
enum class Search { Sample, Beam, Greedy };
struct InferenceOptions {
  int64_t max_passes = 50;
  Leftovers leftovers = Leftovers::Nearest;
  uint64_t seed = 0;  // anchored models draw their anchors from Rng(seed); NCP its order and draws
  Search search = Search::Sample;
  int64_t samples = 100;  // S
  // DAC: propose each cluster's θ again from its members alone, then give every point to its
  // most probable cluster (off: the passes' own θ and claims, as the reference code does).
  bool refine = true;
  // DAC, with refine: remove a cluster while keeping it raises the clustering's log-likelihood
  // by less than the BIC cost of its parameters, its points joining their next most probable
  // cluster (off: every cluster the passes found stays).
  bool prune = true;
  // Called now and then during a long clustering with the points placed so far (NCP: read;
  // DAC: claimed by the passes) out of all; may be empty. The CLI prints it with an ETA.
  std::function<void(int64_t done, int64_t total)> progress;
};

// Adam settings and schedule the published recipe uses; `ncl train` flags override them.
struct TrainingRecipe {
  int64_t steps = 1000, batch = 10;
  double lr = 1e-3;
  double decay_at = 0.7;   // step schedule: lr ×0.1 once this fraction of the steps is done (0: never)
  double clip_norm = 0.0;  // 0: no clipping
  bool cosine = false;     // cosine annealing to 0 over `steps` instead of the step decay
  // Datasets per forward/backward on the CPU (backward_in_chunks; 0: the whole batch). The
  // same gradients; small chunks keep the tensors in the caches and the memory low.
  int64_t micro_batch = 0;
  double weight_decay = 0.0;  // Adam's coupled L2 (as torch.optim.Adam's weight_decay)
  // Step schedule with restarts (NCP): at step s the lr becomes v and Adam starts afresh (its
  // moments and step count reset, as building a new optimiser does). Overrides decay_at.
  std::vector<std::pair<int64_t, double>> restarts;
};

// What one training step's backward reports.
struct StepReport {
  double loss = 0.0;
  // Models that sum over several orderings of the points (NCP): the variance across them of
  // the per-point NLL, a check of how exchangeable the model has become.
  std::optional<double> order_variance;
};

class ClusteringModel : public nn::Module {
 public:
  virtual std::string name() const = 0;
  virtual nlohmann::json config() const = 0;
  virtual int64_t dim() const = 0;  // D, the features per point
  virtual TrainingRecipe recipe() const = 0;
  // Scalar training loss on a batch (points (B, N, D) F32); models that draw during training
  // (DAC's anchors) use `rng`, the training run's generator.
  virtual Variable loss(const data::Batch& batch, Rng& rng) const = 0;
  // Whether loss() draws from its Rng. Only models that don't (the default says they do) have
  // their micro-batches run concurrently on the CPU threads (backward_in_chunks).
  virtual bool loss_draws() const { return true; }
  // Clusters one dataset, points (N, D) row-major. Runs without building a graph.
  virtual ClusterResult cluster(const std::vector<double>& points,
                                const InferenceOptions& options = {}) const = 0;
  // One training step's gradients (accumulated into the parameters' grads): by default
  // backward_in_chunks below; NCP backpropagates one ordering of the points at a time, DAC's
  // anchored loss draws the batch's anchors first.
  virtual StepReport backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const;
  // Per-point NLL −log q(labels | points) / N of a labeled dataset, for models that give every
  // clustering a probability (NCP; `seed` picks the order it reads the points in); nullopt for
  // the others.
  virtual std::optional<double> partition_nll(const std::vector<double>& points,
                                              const std::vector<int>& labels,
                                              uint64_t seed) const {
    (void)points, (void)labels, (void)seed;
    return std::nullopt;
  }

  // Where the parameters live (after Module::to(Device)).
  Device device() const { return parameters().front().value().device(); }
};

// How backward_in_chunks runs the chunks: one after the other, or (when there are at least as
// many chunks as CPU threads) on all the threads at once, each thread backpropagating its
// contiguous run of chunks single-threaded.
enum class Chunks { InOrder, OnThreads };

// One training step's gradients in chunks of at most `micro_batch` datasets: each chunk's loss,
// weighted by its share of the batch's datasets, is backpropagated, so only one chunk's
// activations per thread are alive at a time and its tensors stay small enough for the caches.
// The parameters' gradients equal one backward over the whole batch up to float rounding,
// because every model's loss is a mean over its datasets (of per-dataset terms). OnThreads
// (chosen for CPU models whose loss draws nothing, or by the caller) gives each thread a
// GradientSink and adds the sinks to the parameters in thread order afterwards: the same sum in
// an order fixed by the thread count, at close to the threads' full speed where splitting each
// kernel over them is not (small products, serial stretches). InOrder draws the Rng in chunk
// order. Returns the batch's loss, or the first non-finite chunk loss (then the gradients are
// incomplete and must not be applied). micro_batch <= 0: one chunk.
double backward_in_chunks(const ClusteringModel& model, const data::Batch& batch,
                          int64_t micro_batch, Rng& rng);
// The same for any per-batch loss that is a mean over its datasets (NCP's one ordering, DAC's
// anchored loss with its anchors drawn beforehand): loss(part, first) scores the chunk `part`,
// whose datasets are the batch's first, first + 1, ...; with OnThreads it is called from
// several threads at once.
double backward_in_chunks(const data::Batch& batch, int64_t micro_batch, Chunks chunks,
                          const std::function<Variable(const data::Batch&, int64_t)>& loss);

}  // namespace ncl::models

// Scoring a trained model on labeled datasets: the figures `ncl eval` prints, and the held-out
// figures `ncl train --eval-data` logs while it trains. Every figure is a mean over datasets.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "data/benchmark.h"
#include "data/standardize.h"
#include "models/model.h"

namespace ncl::cli {

// Where the labeled datasets come from: a generator name (its benchmark regenerated bit-exactly
// from `seed`), a benchmark file from `ncl gen` (.safetensors), or a labeled CSV/NPY file taken
// as one dataset (labels: the CSV's label_column, or the NPY file `labels`).
struct ScoringData {
  std::string flag = "--data";  // the option that named `data`, for messages
  std::string data, label_column = "-1", labels;
  int64_t datasets = 1000;  // the first M of a benchmark
  uint64_t seed = 0;
};

// The datasets, in the user's units. ncl::Error for a missing file, or a file without labels.
std::vector<data::Dataset> load_scoring_datasets(const ScoringData& source);

// Clusters every dataset (after the model's standardisation) and returns the means as JSON:
// datasets, ari, nmi, ami, k_mae, ms_per_dataset, and where the model has them ll, ll1,
// oracle_ll (true mixtures known), nll (NCP), passes, leftovers and pruned (filtering models).
// On the CPU with 2+ threads the datasets are clustered on the threads at once (the same
// clusterings as one at a time); ms_per_dataset is the clustering's wall-clock over the count.
// on_dataset, when set, gets each dataset's own line in dataset order (`ncl eval
// --per-dataset`), whose ms is that dataset's own time on its thread; progress prints
// "<progress>: D/T datasets, elapsed, ETA" on stderr every 5 s when not empty. Throws
// ncl::Error when the datasets' dimension is not the model's. Leaves the model unchanged.
nlohmann::json score_model(models::ClusteringModel& model, const data::Standardizer& standardizer,
                           const std::vector<data::Dataset>& datasets, const ScoringData& source,
                           const models::InferenceOptions& inference,
                           const std::function<void(const nlohmann::json&)>& on_dataset = {},
                           const std::string& progress = "");

// Whether a larger value of this score is the better one (false for k_mae and nll).
bool higher_is_better(const std::string& score);

}  // namespace ncl::cli

// Scoring a model on labeled datasets (cli/scoring.h): per dataset ARI, NMI, AMI, k-MAE
// against the true labels, the per-point log-likelihood of the model's mixture (LL), after one
// EM step (LL1, where the model has it), under the true mixture (oracle, where known), NCP's
// NLL of the true clustering, and the time cluster() took; then the means over datasets. The
// clustering runs first, timed, on the CPU threads at once; the scoring after it, in order.
#include "cli/scoring.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "cli/common.h"
#include "data/metrics.h"
#include "data/points.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace ncl::cli {

namespace {

// Whether `data` names a CSV file (not a generator, a benchmark or an NPY file).
bool is_csv_file(const std::string& data) {
  std::vector<std::string> names = data::generator_names();
  return std::find(names.begin(), names.end(), data) == names.end() &&
         !data.ends_with(".safetensors") && !data.ends_with(".npy") && !data.ends_with(".NPY");
}

// What the timed sweep keeps of one dataset's ClusterResult (not the N × K memberships).
struct Clustered {
  std::vector<int> labels;
  std::optional<double> ll, ll1;
  int64_t passes = 0, leftovers = 0, pruned = 0;
  double seconds = 0;  // this dataset's cluster() on its thread
};

struct Sums {
  double ari = 0, nmi = 0, ami = 0, k_mae = 0, ll = 0, ll1 = 0, oracle = 0, seconds = 0;
  double passes = 0, leftovers = 0, pruned = 0, nll = 0;
  int64_t datasets = 0, with_ll = 0, with_ll1 = 0, with_oracle = 0, with_nll = 0;
};

}  // namespace

std::vector<data::Dataset> load_scoring_datasets(const ScoringData& o) {
  std::vector<std::string> names = data::generator_names();
  if (std::find(names.begin(), names.end(), o.data) != names.end()) {
    auto generator = data::make_generator(o.data);
    return data::generate_benchmark(*generator, o.datasets, generator->benchmark_batch(), o.seed)
        .datasets;
  }
  NCL_CHECK(std::filesystem::exists(o.data), o.flag, " '", o.data,
            "' is neither a generator name nor an existing file");
  if (o.data.ends_with(".safetensors")) {
    std::vector<data::Dataset> all = data::load_benchmark(o.data).datasets;
    if (int64_t(all.size()) > o.datasets) all.resize(o.datasets);
    return all;
  }
  bool npy = o.data.ends_with(".npy") || o.data.ends_with(".NPY");
  data::ReadOptions read{npy ? "" : o.label_column, npy ? o.labels : ""};
  data::PointSet points = data::read_points(o.data, read);
  NCL_CHECK(!points.labels.empty(), o.data, ": scoring needs true labels; HINT: --label-column "
                                            "(CSV) or --labels (NPY)");
  // Labels are names or integers; a column of fractional numbers is a feature taken for labels
  // (the default label column is the last column).
  for (const std::string& name : points.label_names) {
    char* end = nullptr;
    double v = std::strtod(name.c_str(), &end);
    NCL_CHECK(end != name.c_str() + name.size() || v == std::floor(v), o.data,
              ": the label column holds the non-integer value '", name,
              "', so it looks like a feature; HINT: name the label column with --label-column");
  }
  data::Dataset d;
  d.dim = points.features.dim(1);
  d.points = points.features.to_vector();
  d.labels = points.labels;
  return {d};
}

nlohmann::json score_model(models::ClusteringModel& model, const data::Standardizer& standardizer,
                           const std::vector<data::Dataset>& datasets, const ScoringData& source,
                           const models::InferenceOptions& inference,
                           const std::function<void(const nlohmann::json&)>& on_dataset,
                           const std::string& progress) {
  // A CSV's label column is not a feature: a file without labels loses a feature to it.
  const std::string csv_hint = is_csv_file(source.data)
                                   ? "; HINT: the label column (--label-column, default -1: the "
                                     "last) is not a feature, and scoring needs labels"
                                   : "";
  for (const data::Dataset& d : datasets)
    NCL_CHECK(d.dim == model.dim(), source.data, ": datasets have ", d.dim,
              " features but the model expects ", model.dim(), csv_hint);
  const int64_t M = int64_t(datasets.size());
  std::vector<std::vector<double>> inputs;  // the points in the model's units
  for (const data::Dataset& d : datasets) {
    inputs.push_back(d.points);
    standardizer.apply(inputs.back());
  }
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();

  // 1. Clustering, timed: on the CPU the datasets run on the threads at once, each clustered
  // single-threaded (one small set keeps two threads busy only part of the time), taken in
  // turn from a shared counter; on the GPU one after the other. ms_per_dataset is the
  // wall-clock of this sweep over M, as the reference's time per dataset of a batch.
  std::vector<Clustered> done(static_cast<size_t>(M));
  std::atomic<int64_t> next{0}, finished{0};
  std::atomic<bool> failed{false};
  std::mutex log_mutex;
  auto last_log = began;
  auto sweep = [&] {
    for (int64_t i; !failed && (i = next++) < M;) {
      try {
        const auto start = Clock::now();
        models::ClusterResult r = model.cluster(inputs[size_t(i)], inference);
        models::require_finite(r, source.data + ", dataset " + std::to_string(i));
        Clustered& c = done[size_t(i)];
        c.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        c.labels = std::move(r.labels);
        c.ll = r.log_likelihood, c.ll1 = r.log_likelihood_em;
        c.passes = r.passes, c.leftovers = r.leftovers, c.pruned = r.pruned;
      } catch (...) {
        failed = true;
        throw;
      }
      const int64_t count = ++finished;
      if (progress.empty()) continue;
      std::lock_guard<std::mutex> lock(log_mutex);
      const auto now = Clock::now();
      if (std::chrono::duration<double>(now - last_log).count() <= 5.0) continue;
      const double elapsed = std::chrono::duration<double>(now - began).count();
      const double left = elapsed * double(M - count) / double(count);
      std::fprintf(stderr, "%s: %lld/%lld datasets, %s, ETA %s\n", progress.c_str(),
                   (long long)count, (long long)M, format_duration(elapsed).c_str(),
                   format_duration(left).c_str());
      last_log = now;
    }
  };
  if (model.device() == Device::CPU && ops::cpu_threads() >= 2 && M >= 2)
    ops::run_cpu_groups(std::min<int64_t>(ops::cpu_threads(), M),
                        [&](int, int64_t, int64_t) { sweep(); });
  else
    sweep();
  const double wall = std::chrono::duration<double>(Clock::now() - began).count();

  // 2. Scoring, in dataset order.
  Sums s;
  const double shift = standardizer.log_scale();
  for (int64_t i = 0; i < M; ++i) {
    const data::Dataset& d = datasets[size_t(i)];
    const Clustered& r = done[size_t(i)];
    data::ClusteringScores scores = data::score_clustering(d.labels, r.labels);
    s.ari += scores.ari;
    s.nmi += scores.nmi;
    s.ami += scores.ami;
    s.k_mae += scores.k_mae;
    if (r.ll) s.ll += *r.ll - shift, ++s.with_ll;
    if (r.ll1) s.ll1 += *r.ll1 - shift, ++s.with_ll1;
    s.passes += double(r.passes);
    s.leftovers += double(r.leftovers);
    s.pruned += double(r.pruned);
    const double oracle = d.truth ? data::mean_log_likelihood(*d.truth, d.points) : NAN;
    if (d.truth) s.oracle += oracle, ++s.with_oracle;
    if (on_dataset) {
      nlohmann::json line{{"dataset", i},
                          {"n", d.labels.size()},
                          {"k", std::set<int>(d.labels.begin(), d.labels.end()).size()},
                          {"k_hat", std::set<int>(r.labels.begin(), r.labels.end()).size()},
                          {"ari", scores.ari},
                          {"nmi", scores.nmi},
                          {"ami", scores.ami},
                          {"ms", 1e3 * r.seconds}};
      if (r.ll) line["ll"] = *r.ll - shift;
      if (d.truth) line["oracle_ll"] = oracle;
      line["labels"] = r.labels;
      on_dataset(line);
    }
    // NCP: the per-point NLL it gives the true clustering (held-out data), not timed
    if (auto nll = model.partition_nll(inputs[size_t(i)], d.labels, inference.seed))
      s.nll += *nll, ++s.with_nll;
    ++s.datasets;
  }
  s.seconds = wall;
  const double n = double(s.datasets);
  nlohmann::json j{{"datasets", s.datasets},
                   {"ari", s.ari / n},
                   {"nmi", s.nmi / n},
                   {"ami", s.ami / n},
                   {"k_mae", s.k_mae / n},
                   {"ms_per_dataset", 1e3 * s.seconds / n}};
  if (s.with_ll) j["ll"] = s.ll / double(s.with_ll);
  if (s.with_ll1) j["ll1"] = s.ll1 / double(s.with_ll1);
  if (s.with_oracle) j["oracle_ll"] = s.oracle / double(s.with_oracle);
  if (s.with_nll) j["nll"] = s.nll / double(s.with_nll);
  if (s.passes > 0) {  // filtering models: passes, unclaimed points, pruned clusters per dataset
    j["passes"] = s.passes / n;
    j["leftovers"] = s.leftovers / n;
    j["pruned"] = s.pruned / n;
  }
  return j;
}

bool higher_is_better(const std::string& score) { return score != "k_mae" && score != "nll"; }

}  // namespace ncl::cli

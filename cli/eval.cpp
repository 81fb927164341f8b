// ncl eval: scores a trained model on a benchmark — a generator name (its benchmark is
// regenerated bit-exactly from a fixed seed), a benchmark file from `ncl gen`, or a labeled
// CSV/NPY file taken as one dataset.
//
// Per dataset: ARI, NMI, AMI, k-MAE against the true labels, the per-point log-likelihood of the
// model's mixture (LL), after one EM step (LL1, where the model has it), under the true
// mixture (oracle, where known), and the time cluster() took. Every figure is averaged over
// datasets. JSON keys: ari, nmi, ami, k_mae, ll, oracle_ll, ll1, ms_per_dataset (+ datasets).
// --per-dataset FILE also writes one JSON object per line and dataset: its scores, true and found
// cluster counts, and the labels found — to see which datasets a model gets wrong.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "data/benchmark.h"
#include "data/metrics.h"
#include "data/points.h"
#include "tensor/error.h"

namespace ncl::cli {

namespace {

struct EvalOptions {
  std::string model, data, format = "text", label_column = "-1", labels, per_dataset;
  int64_t datasets = 1000;
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  models::InferenceOptions inference;
};

// Whether --data names a CSV file (not a generator, a benchmark or an NPY file).
bool is_csv_file(const std::string& data) {
  std::vector<std::string> names = data::generator_names();
  return std::find(names.begin(), names.end(), data) == names.end() &&
         !data.ends_with(".safetensors") && !data.ends_with(".npy") && !data.ends_with(".NPY");
}

// The datasets to score, in the user's units.
std::vector<data::Dataset> load_datasets(const EvalOptions& o) {
  std::vector<std::string> names = data::generator_names();
  if (std::find(names.begin(), names.end(), o.data) != names.end()) {
    auto generator = data::make_generator(o.data);
    return data::generate_benchmark(*generator, o.datasets, generator->benchmark_batch(), o.seed)
        .datasets;
  }
  NCL_CHECK(std::filesystem::exists(o.data), "--data '", o.data,
            "' is neither a generator name nor an existing file");
  if (o.data.ends_with(".safetensors")) {
    std::vector<data::Dataset> all = data::load_benchmark(o.data).datasets;
    if (int64_t(all.size()) > o.datasets) all.resize(o.datasets);
    return all;
  }
  bool npy = o.data.ends_with(".npy") || o.data.ends_with(".NPY");
  data::ReadOptions read{npy ? "" : o.label_column, npy ? o.labels : ""};
  data::PointSet points = data::read_points(o.data, read);
  NCL_CHECK(!points.labels.empty(), o.data, ": evaluation needs true labels; HINT: --label-column "
                                            "(CSV) or --labels (NPY)");
  // Labels are names or integers; a column of fractional numbers is a feature taken for labels
  // (the default --label-column is the last column).
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

struct Sums {
  double ari = 0, nmi = 0, ami = 0, k_mae = 0, ll = 0, ll1 = 0, oracle = 0, seconds = 0;
  double passes = 0, leftovers = 0, nll = 0;
  int64_t datasets = 0, with_ll = 0, with_ll1 = 0, with_oracle = 0, with_nll = 0;
};

int run_eval(const EvalOptions& o) {
  apply_threads(o.threads);
  std::string model_path = o.model.empty() ? default_checkpoint_path() : o.model;
  Device device = parse_device(o.device);
  LoadedModel loaded = load_trained_model(model_path);
  loaded.model->to(device);
  std::vector<data::Dataset> datasets = load_datasets(o);
  // A CSV's label column is not a feature: a file without labels loses a feature to it.
  const std::string csv_hint = is_csv_file(o.data) ? "; HINT: the label column (--label-column, "
                                                     "default -1: the last) is not a feature, "
                                                     "and eval needs labels"
                                                   : "";
  Sums s;
  const double shift = loaded.standardizer.log_scale();
  std::string lines;  // --per-dataset
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  auto last_log = began;
  for (const data::Dataset& d : datasets) {
    NCL_CHECK(d.dim == loaded.model->dim(), o.data, ": datasets have ", d.dim,
              " features but the model expects ", loaded.model->dim(), csv_hint);
    std::vector<double> x = d.points;
    auto start = Clock::now();
    loaded.standardizer.apply(x);
    models::ClusterResult r = loaded.model->cluster(x, o.inference);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    s.seconds += seconds;
    data::ClusteringScores scores = data::score_clustering(d.labels, r.labels);
    s.ari += scores.ari;
    s.nmi += scores.nmi;
    s.ami += scores.ami;
    s.k_mae += scores.k_mae;
    if (r.log_likelihood) s.ll += *r.log_likelihood - shift, ++s.with_ll;
    if (r.log_likelihood_em) s.ll1 += *r.log_likelihood_em - shift, ++s.with_ll1;
    s.passes += double(r.passes);
    s.leftovers += double(r.leftovers);
    const double oracle = d.truth ? data::mean_log_likelihood(*d.truth, d.points) : NAN;
    if (d.truth) s.oracle += oracle, ++s.with_oracle;
    if (!o.per_dataset.empty()) {
      nlohmann::json line{{"dataset", s.datasets},
                          {"n", d.labels.size()},
                          {"k", std::set<int>(d.labels.begin(), d.labels.end()).size()},
                          {"k_hat", std::set<int>(r.labels.begin(), r.labels.end()).size()},
                          {"ari", scores.ari},
                          {"nmi", scores.nmi},
                          {"ami", scores.ami},
                          {"ms", 1e3 * seconds}};
      if (r.log_likelihood) line["ll"] = *r.log_likelihood - shift;
      if (d.truth) line["oracle_ll"] = oracle;
      line["labels"] = r.labels;
      lines += line.dump() + "\n";
    }
    // NCP: the per-point NLL it gives the true clustering (held-out data), not timed
    if (auto nll = loaded.model->partition_nll(x, d.labels, o.inference.seed)) s.nll += *nll, ++s.with_nll;
    ++s.datasets;
    if (std::chrono::duration<double>(Clock::now() - last_log).count() > 5.0) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();
      const double left = elapsed * double(int64_t(datasets.size()) - s.datasets) / double(s.datasets);
      std::fprintf(stderr, "eval: %lld/%zu datasets, %s, ETA %s\n", (long long)s.datasets,
                   datasets.size(), format_duration(elapsed).c_str(), format_duration(left).c_str());
      last_log = Clock::now();
    }
  }
  if (!o.per_dataset.empty()) write_text_file(o.per_dataset, lines);
  const double n = double(s.datasets);
  nlohmann::json j{{"model", loaded.model->name()},
                   {"checkpoint", model_path},
                   {"data", o.data},
                   {"datasets", s.datasets},
                   {"ari", s.ari / n},
                   {"nmi", s.nmi / n},
                   {"ami", s.ami / n},
                   {"k_mae", s.k_mae / n},
                   {"ms_per_dataset", 1e3 * s.seconds / n}};
  if (s.with_ll) j["ll"] = s.ll / double(s.with_ll);
  if (s.with_ll1) j["ll1"] = s.ll1 / double(s.with_ll1);
  if (s.with_oracle) j["oracle_ll"] = s.oracle / double(s.with_oracle);
  if (s.with_nll) j["nll"] = s.nll / double(s.with_nll);
  if (s.passes > 0) {  // filtering models: passes per dataset, points no pass claimed
    j["passes"] = s.passes / n;
    j["leftovers"] = s.leftovers / n;
  }
  if (o.format == "json") {
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  std::printf("%s on %s (%lld datasets)\n", loaded.model->name().c_str(), o.data.c_str(),
              (long long)s.datasets);
  for (const char* key : {"ari", "nmi", "ami", "k_mae", "ll", "ll1", "oracle_ll", "nll", "passes",
                          "leftovers", "ms_per_dataset"})
    if (j.contains(key)) std::printf("  %-15s %.4f\n", key, j[key].get<double>());
  return 0;
}

}  // namespace

Runner add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Score a model on a benchmark: ARI, NMI, AMI, k-MAE, "
                                             "log-likelihoods and time per dataset");
  sub->add_option("--model", o->model, "checkpoint from `ncl train` (default: the shipped model)");
  sub->add_option("--data", o->data,
                  "a generator name (" + generator_list() +
                      "; its benchmark from --seed), a benchmark file from `ncl gen` "
                      "(.safetensors), or a labeled CSV/NPY file as one dataset")
      ->required();
  sub->add_option("--datasets", o->datasets, "score the first M datasets (default 1000)")
      ->check(positive_number());
  sub->add_option("--seed", o->seed, "seed of a generated benchmark (default 0)");
  sub->add_option("--format", o->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  sub->add_option("--label-column", o->label_column, "label column of a CSV file (default -1, last)");
  sub->add_option("--labels", o->labels, "labels of an NPY file (1-D integer .npy)");
  sub->add_option("--per-dataset", o->per_dataset,
                  "also write each dataset's scores, k, k_hat and labels to FILE, one JSON object "
                  "per line");
  add_inference_options(sub, o->inference);
  add_device_options(sub, o->device, o->threads);
  return [o]() { return run_eval(*o); };
}

}  // namespace ncl::cli

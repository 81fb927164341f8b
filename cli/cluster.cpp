// ncl cluster: labels the points of a CSV/NPY file (or stdin) with a trained model.
//
// Output: one label per point as CSV (header "label"), or with --format json the labels, the
// number of clusters, per-point membership probabilities and the fitted components (weights,
// means, stddevs in the input's units) with the mixture's per-point log-likelihood. --plot
// writes an SVG of the points coloured by cluster with the components' 1σ/2σ ellipses (or,
// for dac-maf, contours of its density).
// NCP adds, in JSON, its 10 most probable clusterings (labels, NLL, probability exp(−NLL) for the
// order it read the points in, and weight: the share of the posterior estimate) and the N × N
// co-clustering probabilities (the weighted share of clusterings that put i and j together).
// When the input has a label column (--label-column), the clustering is also scored against it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/plot.h"
#include "data/metrics.h"
#include "data/points.h"
#include "tensor/error.h"
#include "tensor/file_write.h"

namespace ncl::cli {

namespace {

constexpr size_t kTopClusterings = 10;  // NCP: how many of the distinct clusterings JSON lists

struct ClusterOptions {
  std::string model, input, out, format, plot, label_column, labels;
  std::string device = "cpu";
  int threads = 0;
  models::InferenceOptions inference;
};

nlohmann::json result_json(const LoadedModel& loaded, const std::string& model_path,
                           const models::ClusterResult& r,
                           const std::optional<data::GaussianMixture>& components, int64_t n) {
  nlohmann::json j;
  j["model"] = loaded.model->name();
  j["checkpoint"] = model_path;
  j["points"] = n;
  j["clusters"] = data::count_clusters(r.labels);
  j["labels"] = r.labels;
  nlohmann::json membership = nlohmann::json::array();
  for (int64_t i = 0; i < n; ++i)
    membership.push_back(std::vector<double>(r.membership.begin() + i * r.clusters,
                                             r.membership.begin() + (i + 1) * r.clusters));
  j["membership"] = membership;
  if (components) {
    const int64_t D = components->dim;
    nlohmann::json list = nlohmann::json::array();
    for (int64_t k = 0; k < components->clusters(); ++k)
      list.push_back({{"weight", components->weights[k]},
                      {"mean", std::vector<double>(components->means.begin() + k * D,
                                                   components->means.begin() + (k + 1) * D)},
                      {"stddev", std::vector<double>(components->stddevs.begin() + k * D,
                                                     components->stddevs.begin() + (k + 1) * D)}});
    j["components"] = list;
  }
  if (r.passes > 0) {  // filtering models: passes, points placed by --leftovers, clusters pruned
    j["passes"] = r.passes;
    j["leftovers"] = r.leftovers;
    j["pruned"] = r.pruned;
  }
  if (!r.posterior.empty()) {  // NCP: the most probable clusterings and co-clustering
    nlohmann::json top = nlohmann::json::array();
    for (size_t c = 0; c < std::min<size_t>(r.posterior.size(), kTopClusterings); ++c) {
      const auto& p = r.posterior[c];
      top.push_back({{"labels", p.labels}, {"nll", p.nll}, {"probability", std::exp(-p.nll)},
                     {"weight", p.weight}});
    }
    j["clusterings"] = top;
    j["distinct_clusterings"] = r.posterior.size();
    std::vector<double> together(size_t(n * n), 0.0);  // Σ_c weight_c [c_i = c_j]
    for (const auto& p : r.posterior)
      for (int64_t a = 0; a < n; ++a)
        for (int64_t b = 0; b < n; ++b)
          if (p.labels[size_t(a)] == p.labels[size_t(b)]) together[size_t(a * n + b)] += p.weight;
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t a = 0; a < n; ++a)
      rows.push_back(std::vector<double>(together.begin() + a * n, together.begin() + (a + 1) * n));
    j["coclustering"] = rows;
  }
  double shift = loaded.standardizer.log_scale();  // density per unit of the input's features
  if (r.log_likelihood) j["log_likelihood"] = *r.log_likelihood - shift;
  if (r.log_likelihood_em) j["log_likelihood_em"] = *r.log_likelihood_em - shift;
  return j;
}

// Every generator's points lie within ±50 of the origin and a file's training points, being
// standardised, within a few units of it: far beyond that a model's output means little.
constexpr double kTrainedExtent = 100.0;

void warn_if_far_out(const std::vector<double>& standardized, const std::string& input) {
  double extent = 0.0;
  for (double v : standardized) extent = std::max(extent, std::abs(v));
  if (extent > kTrainedExtent)
    std::fprintf(stderr,
                 "ncl: warning: %s: a point lies %.3g from the origin in the model's units, far "
                 "beyond any data it was trained on (within about ±%g), so its clustering means "
                 "little; HINT: train on data like this (`ncl train --data FILE` standardises "
                 "it)\n",
                 input.c_str(), extent, kTrainedExtent);
}

int run_cluster(const ClusterOptions& o) {
  // Label flags the input's kind would ignore are bad usage, found before any work.
  const bool npy = o.input.ends_with(".npy") || o.input.ends_with(".NPY");
  if (npy && !o.label_column.empty())
    throw CLI::ValidationError("--label-column", "is for CSV input; an NPY file's labels come "
                                                 "from --labels");
  if (!npy && !o.labels.empty())
    throw CLI::ValidationError("--labels", "is for NPY input; a CSV's labels are a column, "
                                           "named with --label-column");
  apply_threads(o.threads);
  std::string model_path = o.model.empty() ? default_checkpoint_path() : o.model;
  check_outputs_apart({{"INPUT", o.input}, {"--model", model_path}, {"--labels", o.labels}},
                      {{"--out", o.out}, {"--plot", o.plot}});
  for (const std::string& path : {o.out, o.plot})
    if (!path.empty() && path != "-") check_writable(path);
  Device device = parse_device(o.device);
  LoadedModel loaded = load_trained_model(model_path);
  loaded.model->to(device);
  data::ReadOptions read{o.label_column, o.labels};
  data::PointSet points = data::read_points(o.input, read);
  data::require_dimension(points, loaded.model->dim(), o.input);
  const int64_t D = points.features.dim(1), N = points.features.dim(0);
  std::vector<double> raw = points.features.to_vector(), x = raw;
  loaded.standardizer.apply(x);
  warn_if_far_out(x, o.input);
  models::InferenceOptions inference = o.inference;
  inference.progress = progress_printer("cluster");
  models::ClusterResult result = loaded.model->cluster(x, inference);
  models::require_finite(result, o.input);
  const int clusters = data::count_clusters(result.labels);
  std::optional<data::GaussianMixture> components;
  if (result.mixture) components = loaded.standardizer.unapply(*result.mixture);

  std::string format = o.format.empty() ? (o.out.ends_with(".json") ? "json" : "csv") : o.format;
  if (format == "json") {
    // File names need not be UTF-8; JSON must be (an invalid byte becomes U+FFFD).
    const nlohmann::json j = result_json(loaded, model_path, result, components, N);
    write_text_file(o.out, j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  } else {
    std::string text = "label\n";
    for (int label : result.labels) text += std::to_string(label) + "\n";
    write_text_file(o.out, text);
  }
  if (!o.plot.empty()) {
    LogDensity density;  // the model's density in the user's units, when it is not Gaussian
    if (result.log_density)
      density = [&](const std::vector<double>& at) {
        std::vector<double> s = at;
        loaded.standardizer.apply(s);
        std::vector<double> ll = result.log_density(s);
        for (double& v : ll) v -= loaded.standardizer.log_scale();
        return ll;
      };
    write_text_file(o.plot, render_svg(raw, D, result.labels, components,
                                       o.input + ": " + loaded.model->name() + ", " +
                                           std::to_string(clusters) + " cluster" +
                                           (clusters == 1 ? "" : "s"),
                                       density));
  }
  std::fprintf(stderr, "%lld point%s -> %d cluster%s", (long long)N, N == 1 ? "" : "s", clusters,
               clusters == 1 ? "" : "s");
  if (!result.posterior.empty())
    std::fprintf(stderr, " (NLL %.3f; %zu distinct clusterings)", result.posterior.front().nll,
                 result.posterior.size());
  if (!points.labels.empty()) {
    data::ClusteringScores s = data::score_clustering(points.labels, result.labels);
    std::fprintf(stderr, "; against the file's labels: ARI %.4f, NMI %.4f, AMI %.4f", s.ari, s.nmi,
                 s.ami);
  }
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace

Runner add_cluster(CLI::App& app) {
  auto o = std::make_shared<ClusterOptions>();
  CLI::App* sub = app.add_subcommand(
      "cluster", "Cluster the points of a CSV/NPY file (or - for CSV on stdin) with a trained model");
  sub->add_option("INPUT", o->input, "points: CSV (header optional) or .npy (N, D); - = stdin")
      ->required();
  sub->add_option("--model", o->model, "checkpoint from `ncl train` (default: the shipped model)");
  sub->add_option("-o,--out", o->out, "where to write the labels (default: stdout)");
  sub->add_option("--format", o->format, "csv (one label per line) or json (default: by --out's "
                                         "extension, else csv)")
      ->check(CLI::IsMember({"csv", "json"}));
  sub->add_option("--plot", o->plot, "also draw the clustering to this SVG file");
  sub->add_option("--label-column", o->label_column,
                  "a CSV column holding true labels: left out of the features and used for scoring");
  sub->add_option("--labels", o->labels, "true labels of an NPY input (1-D integer .npy), for scoring");
  add_inference_options(sub, o->inference);
  add_device_options(sub, o->device, o->threads);
  return [o]() { return run_cluster(*o); };
}

}  // namespace ncl::cli

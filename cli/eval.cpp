// ncl eval: scores a trained model on a benchmark — a generator name (its benchmark is
// regenerated bit-exactly from a fixed seed), a benchmark file from `ncl gen`, or a labeled
// CSV/NPY file taken as one dataset — and prints the means over datasets (cli/scoring.h): ARI,
// NMI, AMI, k-MAE, LL, LL1 (where the model has it), oracle LL (where known), ms per dataset.
// JSON keys: ari, nmi, ami, k_mae, ll, oracle_ll, ll1, ms_per_dataset (+ datasets).
// --per-dataset FILE also writes one JSON object per line and dataset: its scores, true and found
// cluster counts, and the labels found — to see which datasets a model gets wrong.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/scoring.h"
#include "tensor/file_write.h"

namespace ncl::cli {

namespace {

struct EvalOptions {
  ScoringData source;
  std::string model, format = "text", per_dataset;
  std::string device = "cpu";
  int threads = 0;
  models::InferenceOptions inference;
};

int run_eval(const EvalOptions& o) {
  apply_threads(o.threads);
  std::string model_path = o.model.empty() ? default_checkpoint_path() : o.model;
  check_outputs_apart({{"--data", o.source.data}, {"--model", model_path},
                       {"--labels", o.source.labels}},
                      {{"--per-dataset", o.per_dataset}});
  if (!o.per_dataset.empty()) check_writable(o.per_dataset);
  Device device = parse_device(o.device);
  LoadedModel loaded = load_trained_model(model_path);
  loaded.model->to(device);
  std::vector<data::Dataset> datasets = load_scoring_datasets(o.source);
  std::string lines;  // --per-dataset
  std::function<void(const nlohmann::json&)> on_dataset;
  // File names need not be UTF-8; JSON must be (an invalid byte becomes U+FFFD).
  constexpr auto replace = nlohmann::json::error_handler_t::replace;
  if (!o.per_dataset.empty())
    on_dataset = [&](const nlohmann::json& line) {
      lines += line.dump(-1, ' ', false, replace) + "\n";
    };
  nlohmann::json scores = score_model(*loaded.model, loaded.standardizer, datasets, o.source,
                                      o.inference, on_dataset, "eval");
  if (!o.per_dataset.empty()) write_text_file(o.per_dataset, lines);
  nlohmann::json j{{"model", loaded.model->name()}, {"checkpoint", model_path}, {"data", o.source.data}};
  j.update(scores);
  if (o.format == "json") {
    std::printf("%s\n", j.dump(1, ' ', false, replace).c_str());
    return 0;
  }
  std::printf("%s on %s (%lld datasets)\n", loaded.model->name().c_str(), o.source.data.c_str(),
              j["datasets"].get<long long>());
  for (const char* key : {"ari", "nmi", "ami", "k_mae", "ll", "ll1", "oracle_ll", "nll", "passes",
                          "leftovers", "pruned", "ms_per_dataset"})
    if (j.contains(key)) std::printf("  %-15s %.4f\n", key, j[key].get<double>());
  return 0;
}

}  // namespace

Runner add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Score a model on a benchmark: ARI, NMI, AMI, k-MAE, "
                                             "log-likelihoods and time per dataset");
  sub->add_option("--model", o->model, "checkpoint from `ncl train` (default: the shipped model)");
  sub->add_option("--data", o->source.data,
                  "a generator name (" + generator_list() +
                      "; its benchmark from --seed), a benchmark file from `ncl gen` "
                      "(.safetensors), or a labeled CSV/NPY file as one dataset")
      ->required();
  sub->add_option("--datasets", o->source.datasets, "score the first M datasets (default 1000)")
      ->check(whole_number(1, kMaxDatasets));
  sub->add_option("--seed", o->source.seed, "seed of a generated benchmark (default 0)")
      ->check(seed_number());
  sub->add_option("--format", o->format, "text (default) or json")
      ->check(CLI::IsMember({"text", "json"}));
  sub->add_option("--label-column", o->source.label_column, "label column of a CSV file (default -1, last)");
  sub->add_option("--labels", o->source.labels, "labels of an NPY file (1-D integer .npy)");
  sub->add_option("--per-dataset", o->per_dataset,
                  "also write each dataset's scores, k, k_hat and labels to FILE, one JSON object "
                  "per line");
  add_inference_options(sub, o->inference);
  add_device_options(sub, o->device, o->threads);
  return [o]() { return run_eval(*o); };
}

}  // namespace ncl::cli

// ncl gen: writes generated datasets to a file — a benchmark (.safetensors, many datasets, read
// by `ncl eval` and by Python baselines) or one dataset as CSV (columns x0..x{D-1}, label),
// e.g. an example input for `ncl cluster`.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "data/benchmark.h"
#include "tensor/error.h"
#include "tensor/file_write.h"

namespace ncl::cli {

namespace {

struct GenOptions {
  std::string data = "mog-k4", out;
  int64_t datasets = 1000, batch = 0;  // 0: the generator's benchmark_batch()
  uint64_t seed = 0;
};

// One dataset as CSV text: a header x0,…,x{D-1},label and one row per point.
std::string dataset_csv(const data::Dataset& d) {
  std::string text;
  for (int64_t j = 0; j < d.dim; ++j) text += "x" + std::to_string(j) + ",";
  text += "label\n";
  char buf[32];
  for (int64_t n = 0; n < d.size(); ++n) {
    for (int64_t j = 0; j < d.dim; ++j) {
      std::snprintf(buf, sizeof buf, "%.9g,", d.points[n * d.dim + j]);
      text += buf;
    }
    text += std::to_string(d.labels[n]) + "\n";
  }
  return text;
}

int run_gen(const GenOptions& o) {
  auto generator = data::make_generator(o.data);
  bool csv = o.out.ends_with(".csv");
  if (!csv && !o.out.ends_with(".safetensors"))
    throw CLI::ValidationError("--out", "a benchmark is written as FILE.safetensors, one dataset "
                                        "as FILE.csv; got " + o.out);
  if (csv && o.datasets != 1)
    throw CLI::ValidationError("--datasets", "a CSV holds one dataset; use --datasets 1, or "
                                             "write a benchmark with --out FILE.safetensors");
  check_writable(o.out);
  data::Benchmark bench = data::generate_benchmark(
      *generator, o.datasets, o.batch > 0 ? o.batch : generator->benchmark_batch(), o.seed);
  if (csv) write_text_file(o.out, dataset_csv(bench.datasets[0]));
  else data::save_benchmark(o.out, bench);
  int64_t points = 0;
  for (const auto& d : bench.datasets) points += d.size();
  std::fprintf(stderr, "wrote %s: %lld datasets from %s (seed %llu), %lld points\n", o.out.c_str(),
               (long long)bench.datasets.size(), o.data.c_str(), (unsigned long long)o.seed,
               (long long)points);
  return 0;
}

}  // namespace

Runner add_gen(CLI::App& app) {
  auto o = std::make_shared<GenOptions>();
  CLI::App* sub = app.add_subcommand(
      "gen", "Generate datasets: a benchmark file (.safetensors) or one dataset as CSV");
  sub->add_option("--data", o->data, "generator: " + generator_list())->required();
  sub->add_option("--datasets", o->datasets, "number of datasets (default 1000)")
      ->check(whole_number(1, kMaxDatasets));
  sub->add_option("--batch", o->batch,
                  "datasets per draw; a draw shares N (default 10; 1 for crp-mog, whose draws "
                  "share the partition)")
      ->check(positive_number());
  sub->add_option("--seed", o->seed, "seed (default 0)")
      ->check(seed_number());
  sub->add_option("--out", o->out, "output: FILE.safetensors (benchmark) or FILE.csv (one dataset)")
      ->required();
  return [o]() { return run_gen(*o); };
}

}  // namespace ncl::cli

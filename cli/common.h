// Pieces the subcommands share: the shipped default checkpoint, loading a trained model with
// its standardisation, data sources by name or file, and a progress line for long loops.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/generator.h"
#include "data/standardize.h"
#include "models/model.h"
#include "tensor/safetensors.h"

namespace ncl::cli {

// "mog-k4, mog, …": the generator names, for --help texts.
std::string generator_list();

// The checkpoint `ncl cluster` uses without --model (shipped in the repository).
std::string default_checkpoint_path();

struct LoadedModel {
  std::unique_ptr<models::ClusteringModel> model;
  data::Standardizer standardizer;  // identity unless trained on a file
  TensorFile checkpoint;            // metadata and tensors as read
};
// Reads an ncl checkpoint written by `ncl train` and rebuilds its model.
LoadedModel load_trained_model(const std::string& path);

// A value printed as "1h05m", "3m20s" or "12s".
std::string format_duration(double seconds);

// A progress callback for InferenceOptions::progress: after the first 2 s it prints
// "<what>: D/T points (P%), <elapsed>, ETA <rest>" on stderr, at most every 2 s.
std::function<void(int64_t, int64_t)> progress_printer(const std::string& what);

// The command line as typed (main records it; `ncl train` stores it in the checkpoint).
void set_command_line(int argc, char** argv);
const std::string& command_line();

// Writes text to path through a temporary file and a rename, so a reader never sees half a
// file; "" or "-" writes to stdout.
void write_text_file(const std::string& path, const std::string& text);

// A file named on the command line, with the flag that named it ("--out", "INPUT").
struct NamedPath {
  std::string flag, path;
};
// Refuses, before any work, an output that is one of the existing input files or another output
// (the same file by any name: a link, "./x", a file redirected to standard input for "-"),
// since writing it would destroy what the run reads or writes. Empty paths and an output "-"
// (stdout) are skipped; inputs that are not files (a generator's name) too.
void check_outputs_apart(const std::vector<NamedPath>& inputs,
                         const std::vector<NamedPath>& outputs);

// Held by `ncl train` for its --out: a second run writing the same checkpoint is refused (the
// two would overwrite each other's saves) while the first is alive. An advisory lock on
// "<path>.lock" beside it, which the kernel drops when the process ends however it ends; the
// file is removed on a normal exit. Where the file system has no locks, nothing is held.
class OutputLock {
 public:
  explicit OutputLock(const std::string& path);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::string lock_path_;
  int fd_ = -1;
};

// SIGINT and SIGTERM end ncl as they would anyway, after removing a half-written output file
// (tensor/file_write.h); one the parent made ncl ignore stays ignored. main installs this;
// `ncl train` has its own handler while it trains.
void end_on_signals();

// Sets the CPU thread count when threads > 0.
void apply_threads(int threads);

// Registers --device (cpu|cuda) and --threads on a subcommand that runs a model.
void add_device_options(CLI::App* sub, std::string& device, int& threads);

// Registers --max-passes and --leftovers (how the filtering models run inference).
void add_inference_options(CLI::App* sub, models::InferenceOptions& options);

// "cpu" or "cuda" (checked: a usable device, else ncl::Error with a hint).
Device parse_device(const std::string& name);

// Option checks whose messages read well ("--steps: 'abc' is not a number", "--steps: must be
// > 0, got -3"); CLI11's PositiveNumber prints its range as a 300-digit number.
// Both refuse infinity, NaN and magnitudes beyond 2^53.
CLI::Validator positive_number();
CLI::Validator non_negative_number();
// An integer in [lo, hi], written as one ("1e3" and "2.5" are refused).
CLI::Validator whole_number(int64_t lo, int64_t hi);
// A seed: a whole number in [0, 2^64), no sign ("-1" would wrap round to 2^64 − 1).
CLI::Validator seed_number();

// --threads' ceiling: far above any core count ncl runs on, far below what makes the thread
// libraries fail (tens of thousands).
constexpr int kMaxThreads = 1024;
// --datasets' ceiling: a benchmark is held in memory (100,000 of mog-12's datasets: ~1.6 GB).
constexpr int64_t kMaxDatasets = 100000;

}  // namespace ncl::cli

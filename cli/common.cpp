#include "cli/common.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "models/registry.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"
#include "tensor/file_write.h"
#include "tensor/ops.h"

namespace ncl::cli {

std::string generator_list() {
  std::string out;
  for (const std::string& name : data::generator_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string default_checkpoint_path() {
  if (const char* env = std::getenv("NCL_DEFAULT_MODEL")) return env;
  return std::string(NCL_SOURCE_DIR) + "/models/checkpoints/dac-mog.safetensors";
}

LoadedModel load_trained_model(const std::string& path) {
  LoadedModel out;
  out.checkpoint = nn::load_checkpoint(path);
  out.model = models::load_model(out.checkpoint, path);
  auto s = out.checkpoint.metadata.find("standardize");
  if (s != out.checkpoint.metadata.end()) {
    nlohmann::json j = nlohmann::json::parse(s->second, nullptr, false);
    NCL_CHECK(!j.is_discarded(), path, ": checkpoint 'standardize' metadata is not valid JSON");
    out.standardizer = data::Standardizer::from_json(j);
    NCL_CHECK(int64_t(out.standardizer.mean.size()) == out.model->dim(), path,
              ": standardisation has ", out.standardizer.mean.size(), " features, the model ",
              out.model->dim());
  }
  return out;
}

std::string format_duration(double seconds) {
  long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

std::function<void(int64_t, int64_t)> progress_printer(const std::string& what) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  auto last = std::make_shared<Clock::time_point>(start);
  return [what, start, last](int64_t done, int64_t total) {
    const Clock::time_point now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (elapsed < 2.0 || std::chrono::duration<double>(now - *last).count() < 2.0 || done <= 0)
      return;
    *last = now;
    const double share = double(done) / double(total);
    std::fprintf(stderr, "%s: %lld/%lld points (%.0f%%), %s, ETA %s\n", what.c_str(),
                 (long long)done, (long long)total, 100.0 * share, format_duration(elapsed).c_str(),
                 format_duration(elapsed * (1.0 - share) / share).c_str());
  };
}

namespace {
std::string g_command_line;
}  // namespace

void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 0; i < argc; ++i) {
    std::string arg = i == 0 ? "ncl" : argv[i];
    bool quote = arg.empty() || arg.find_first_of(" \t\"'{}$*?") != std::string::npos;
    g_command_line += (i ? " " : "") + (quote ? "'" + arg + "'" : arg);
  }
}

const std::string& command_line() { return g_command_line; }

void add_device_options(CLI::App* sub, std::string& device, int& threads) {
  sub->add_option("--device", device, "cpu or cuda (default cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--threads", threads, "CPU threads (default: all cores; fewer on a busy machine)")
      ->check(whole_number(0, kMaxThreads));
}

void add_inference_options(CLI::App* sub, models::InferenceOptions& options) {
  sub->add_option("--max-passes", options.max_passes,
                  "dac/dac-maf: at most this many filtering passes (default 50)")
      ->check(positive_number());
  const std::map<std::string, models::Leftovers> policies{{"nearest", models::Leftovers::Nearest},
                                                          {"own", models::Leftovers::Own},
                                                          {"first", models::Leftovers::First}};
  sub->add_option("--leftovers", options.leftovers,
                  "dac/dac-maf: points no pass claimed go to the cluster of highest weighted "
                  "density (nearest, default), form one more cluster (own), or join cluster 0 "
                  "(first: the reference code's behaviour)")
      ->transform(CLI::CheckedTransformer(policies))
      ->option_text("nearest|own|first");
  sub->add_flag_callback("--no-refine", [&options] { options.refine = false; },
                         "dac/dac-maf: keep each pass's own density and claims, as the reference "
                         "code does (default: propose each cluster's density again from its "
                         "members alone, then give every point to its most probable cluster)")
      ->disable_flag_override();  // `--no-refine=0` is refused, not read as a boolean
  sub->add_flag_callback("--no-prune", [&options] { options.prune = false; },
                         "dac/dac-maf: keep every cluster the passes found (default, with the "
                         "refinement: remove a cluster whose points the others explain within "
                         "the BIC cost of its parameters, ½(2D+1)·ln N)")
      ->disable_flag_override();
  const std::map<std::string, models::Search> searches{{"sample", models::Search::Sample},
                                                       {"beam", models::Search::Beam},
                                                       {"greedy", models::Search::Greedy}};
  sub->add_option("--search", options.search,
                  "ncp: draw S clusterings and keep the most probable (sample, default), beam "
                  "search of width S (beam), or the most probable choice at every point (greedy)")
      ->transform(CLI::CheckedTransformer(searches))
      ->option_text("sample|beam|greedy");
  sub->add_option("--samples", options.samples, "ncp: S, the samples or the beam width (default 100)")
      ->check(positive_number());
  sub->add_option("--inference-seed", options.seed,
                  "seed of the points' reading order and draws (ncp) or anchors (anchored dac) "
                  "(default 0)")
      ->check(seed_number());
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  NCL_CHECK(name == "cuda", "unknown device '", name, "' (cpu or cuda)");
  try {
    ops::require_cuda();
  } catch (const Error& e) {
    throw Error(std::string("--device cuda: ") + e.what(), "--device cuda: " + e.message());
  }
  return Device::CUDA;
}

void write_text_file(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);  // main checks that stdout took it
    return;
  }
  write_file_atomically(path, {text});
}

namespace {
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::equivalent(a, b, ec) && !ec) return true;
  std::error_code ea, eb;
  const auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a), ea);
  const auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b), eb);
  return !ea && !eb && ca == cb;
}
}  // namespace

void check_outputs_apart(const std::vector<NamedPath>& inputs,
                         const std::vector<NamedPath>& outputs) {
  auto skipped = [](const std::string& path) { return path.empty() || path == "-"; };
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedPath& out = outputs[i];
    if (skipped(out.path)) continue;
    std::error_code ec;
    for (const NamedPath& in : inputs) {
      // "-" reads standard input, which may be a file redirected in (`< points.csv`).
      const std::string read = in.path == "-" ? "/dev/stdin" : in.path;
      if (!in.path.empty() && std::filesystem::is_regular_file(read, ec) &&
          same_file(out.path, read))
        throw Error(detail::str(out.flag, " ", out.path, " is the ", in.flag, " file: writing it "
                                "would destroy it; HINT: write to another file"));
    }
    for (size_t j = 0; j < i; ++j)
      if (!skipped(outputs[j].path) && same_file(out.path, outputs[j].path))
        throw Error(detail::str(out.flag, " and ", outputs[j].flag, " name the same file (",
                                out.path, "); HINT: give each output its own file"));
  }
}

OutputLock::OutputLock(const std::string& path) : lock_path_(path + ".lock") {
  fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) return;  // the place itself was checked (check_writable); no lock file, no lock
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  const int error = errno;
  ::close(fd_);
  fd_ = -1;
  NCL_CHECK(error != EWOULDBLOCK, path, ": another `ncl train` is writing this checkpoint (",
            lock_path_, " is locked); HINT: give this run its own --out");
  ::unlink(lock_path_.c_str());  // a file system without locks: leave nothing behind
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());
  ::close(fd_);
}

namespace {
extern "C" void remove_partial_and_end(int signal) {
  remove_partial_write();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}
}  // namespace

void end_on_signals() {
  for (int signal : {SIGINT, SIGTERM}) {
    struct sigaction now {};
    ::sigaction(signal, nullptr, &now);
    // A signal the parent ignores (a background job's SIGINT) stays ignored.
    if (now.sa_handler != SIG_IGN) std::signal(signal, remove_partial_and_end);
  }
}

void apply_threads(int threads) {
  if (threads > 0) ops::set_cpu_threads(threads);
}

namespace {
// A validator that accepts numbers for which ok(value) holds, else says `requirement`.
CLI::Validator number_check(bool (*ok)(double), const std::string& requirement,
                            const std::string& name) {
  return CLI::Validator(
      [ok, requirement](std::string& input) -> std::string {
        double value = 0.0;
        if (!CLI::detail::lexical_cast(input, value)) return "'" + input + "' is not a number";
        // No option takes infinity, NaN or a count beyond doubles' whole numbers (2^53).
        if (!std::isfinite(value) || std::abs(value) > 9007199254740992.0)
          return "must be a finite number of at most 2^53, got " + input;
        return ok(value) ? "" : "must be " + requirement + ", got " + input;
      },
      name, name);
}
}  // namespace

CLI::Validator positive_number() {
  return number_check([](double v) { return v > 0.0; }, "> 0", "POSITIVE");
}

CLI::Validator non_negative_number() {
  return number_check([](double v) { return v >= 0.0; }, ">= 0", "NONNEGATIVE");
}

namespace {
// The whole text as one integer of type T (no sign for an unsigned T, no exponent, no rest).
template <class T>
bool read_whole(const std::string& text, T& value) {
  const char* end = text.data() + text.size();
  auto [p, error] = std::from_chars(text.data(), end, value);
  return !text.empty() && error == std::errc() && p == end;
}
}  // namespace

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const std::string range = "a whole number from " + std::to_string(lo) + " to " +
                            std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        int64_t value = 0;
        const bool ok = read_whole(input, value) && value >= lo && value <= hi;
        return ok ? "" : "must be " + range + ", got " + input;
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", "WHOLE");
}

CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        uint64_t value = 0;
        return read_whole(input, value)
                   ? ""
                   : "must be a whole number from 0 to 18446744073709551615, got " + input;
      },
      "SEED", "SEED");
}

}  // namespace ncl::cli

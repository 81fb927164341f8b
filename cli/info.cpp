// ncl info CKPT: what a checkpoint holds — model, configuration, training step and parameter
// count for checkpoints from `ncl train`, and every metadata entry for any ncl checkpoint.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "nn/checkpoint.h"

namespace ncl::cli {

namespace {

// A stored real number to 15 significant digits (0.00050000000000000001 reads as 0.0005; the
// file keeps every digit, for exact resumes); anything else as stored.
std::string readable(const std::string& value) {
  if (value.find_first_of(".eE") == std::string::npos) return value;
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size()) return value;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

int run_info(const std::string& path) {
  TensorFile file = nn::load_checkpoint(path);
  int64_t parameters = 0, tensors = 0;
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("adam.", 0) == 0) continue;
    parameters += t.numel();
    ++tensors;
  }
  auto get = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string("-") : it->second;
  };
  std::printf("checkpoint  %s\n", path.c_str());
  std::printf("%-11s %s\n", "model", get("model").c_str());
  std::printf("%-11s %s\n", "config", get("config").c_str());
  std::printf("%-11s %s of %s\n", "step", get("step").c_str(), get("steps").c_str());
  std::printf("%-11s %lld in %lld tensors\n", "parameters", (long long)parameters, (long long)tensors);
  for (const auto& [key, value] : file.metadata) {
    if (key == "model" || key == "config" || key == "step" || key == "rng") continue;
    std::printf("%-11s %s\n", key.c_str(), readable(value).c_str());
  }
  return 0;
}

}  // namespace

Runner add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("info", "Print a checkpoint's model, configuration, step "
                                             "and parameter count");
  sub->add_option("CKPT", *path, "checkpoint file (.safetensors)")->required();
  return [path]() { return run_info(*path); };
}

}  // namespace ncl::cli

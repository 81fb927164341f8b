// ncl: the command line. The only place in ncl that catches errors and exits:
// bad usage exits 2 with CLI11's message, library errors exit 1 with one "ncl: error:" line.
//
// Subcommands so far: `ncl info CKPT`. train / cluster / eval / gen arrive with the models.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "nn/checkpoint.h"

namespace {

// ncl info CKPT: what a checkpoint holds.
int run_info(const std::string& path) {
  ncl::nn::TensorFile file = ncl::nn::load_checkpoint(path);
  int64_t parameters = 0, tensors = 0;
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("adam.", 0) == 0) continue;
    parameters += t.numel();
    ++tensors;
  }
  std::printf("checkpoint  %s\n", path.c_str());
  for (const auto& [key, value] : file.metadata) std::printf("%-11s %s\n", key.c_str(), value.c_str());
  std::printf("%-11s %lld in %lld tensors\n", "parameters", (long long)parameters, (long long)tensors);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ncl: amortized clustering on a from-scratch autodiff engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ncl 0.1.0");

  std::string info_path;
  CLI::App* info = app.add_subcommand("info", "Print a checkpoint's model, configuration, step "
                                              "and parameter count");
  info->add_option("CKPT", info_path, "checkpoint file (.safetensors)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*info) return run_info(info_path);
  } catch (const ncl::Error& e) {
    std::fprintf(stderr, "ncl: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ncl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

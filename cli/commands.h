// The ncl subcommands. Each add_* registers its options on `app` and returns the function
// that runs it after parsing. Runners throw ncl::Error for bad input (main prints one line and
// exits 1) and raise CLI::ValidationError for bad combinations of flags (exit 2).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ncl::cli {

using Runner = std::function<int()>;

Runner add_train(CLI::App& app);    // cli/train.cpp
Runner add_cluster(CLI::App& app);  // cli/cluster.cpp
Runner add_eval(CLI::App& app);     // cli/eval.cpp
Runner add_gen(CLI::App& app);      // cli/gen.cpp
Runner add_info(CLI::App& app);     // cli/info.cpp

}  // namespace ncl::cli

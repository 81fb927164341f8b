// ncl: the command line. The only place in ncl that catches errors and exits:
// bad usage exits 2 with one line from CLI11, library errors exit 1 with one "ncl: error:" line.
//
//   ncl train    train a model (cli/train.cpp)
//   ncl cluster  cluster a point file with a trained model (cli/cluster.cpp)
//   ncl eval     score a model on a benchmark (cli/eval.cpp)
//   ncl gen      write generated datasets (cli/gen.cpp)
//   ncl info     describe a checkpoint (cli/info.cpp)
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "tensor/error.h"

int main(int argc, char** argv) {
  ncl::cli::set_command_line(argc, argv);
  ncl::cli::end_on_signals();
  CLI::App app{"ncl: amortized clustering on a from-scratch autodiff engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ncl 0.1.0");
  std::vector<std::pair<CLI::App*, ncl::cli::Runner>> commands;
  for (auto add : {ncl::cli::add_train, ncl::cli::add_cluster, ncl::cli::add_eval,
                   ncl::cli::add_gen, ncl::cli::add_info}) {
    ncl::cli::Runner run = add(app);
    commands.emplace_back(app.get_subcommands([](CLI::App*) { return true; }).back(),
                          std::move(run));
  }
  try {
    app.parse(argc, argv);
    for (auto& [sub, run] : commands)
      if (sub->parsed()) {
        const int code = run();
        // Output lost on the way (a full disk behind stdout) is an error, not a success.
        NCL_CHECK(std::fflush(stdout) == 0 && !std::ferror(stdout),
                  "cannot write to standard output (", std::strerror(errno), ")");
        return code;
      }
  } catch (const CLI::ParseError& e) {
    // CLI11 names a flag that was given a value (`--no-refine=0`) without its dashes.
    const std::string what = e.what(), given = " was given a disallowed flag override";
    if (what.ends_with(given)) {
      std::fprintf(stderr, "--%s takes no value\nRun with --help for more information.\n",
                   what.substr(0, what.size() - given.size()).c_str());
      return 2;
    }
    // CLI11 checks required options before unknown ones: `ncl train --bogus` would be told
    // only that --out is missing, `ncl frobnicate` that a subcommand is. Name what was not
    // understood first.
    const std::vector<std::string> extras = app.remaining(true);
    if (dynamic_cast<const CLI::RequiredError*>(&e) && !extras.empty()) {
      bool any_sub = false;
      for (auto& [sub, run] : commands) any_sub = any_sub || sub->parsed();
      if (!any_sub && !extras.front().starts_with("-")) {
        std::fprintf(stderr, "unknown subcommand '%s' (train, cluster, eval, gen, info)\n"
                             "Run with --help for more information.\n", extras.front().c_str());
        return 2;
      }
      std::string list;
      for (const std::string& arg : extras) list += " " + arg;
      std::fprintf(stderr, "The following arguments were not expected:%s\n"
                           "Run with --help for more information.\n", list.c_str());
      return 2;
    }
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const ncl::Error& e) {
    // The user's line; NCL_DEBUG=1 adds where in the source the check failed.
    bool debug = std::getenv("NCL_DEBUG") != nullptr;
    std::fprintf(stderr, "ncl: error: %s\n", debug ? e.what() : e.message().c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ncl: error: out of memory; HINT: a smaller model, batch or dataset\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ncl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// The ncl binary itself: `ncl info` on a real checkpoint, on a missing and a corrupt file,
// and bad usage (exit codes 0 / 1 / 2, one clear error line).
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::test;


TEST_CASE("ncl info prints a checkpoint's metadata and parameter count", "[cli]") {
  Rng rng(0);
  nn::Linear linear(3, 4, rng);
  std::string path = temp_file("linear.safetensors");
  nn::save_checkpoint(path, linear, nullptr, {{"model", "linear"}, {"step", "7"}});
  Run r = run_ncl("info " + path);
  INFO(r.output);
  REQUIRE(r.code == 0);
  REQUIRE_THAT(r.output, Catch::Contains("model       linear"));
  REQUIRE_THAT(r.output, Catch::Contains("step        7"));
  REQUIRE_THAT(r.output, Catch::Contains("parameters  16 in 2 tensors"));
}

TEST_CASE("ncl: bad input and bad usage give one clear line and a non-zero exit", "[cli]") {
  SECTION("missing checkpoint: exit 1") {
    Run r = run_ncl("info " + temp_file("absent.safetensors"));
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::StartsWith("ncl: error:") && Catch::Contains("cannot open"));
    REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
  SECTION("corrupt checkpoint: exit 1") {
    std::string path = temp_file("corrupt.safetensors");
    std::ofstream(path) << "definitely not a checkpoint";
    Run r = run_ncl("info " + path);
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::StartsWith("ncl: error:"));
  }
  SECTION("unknown flag: exit 2") {
    Run r = run_ncl("info --no-such-flag x");
    REQUIRE(r.code == 2);
  }
  SECTION("an unknown flag is named even when a required option is missing too") {
    Run r = run_ncl("train --no-such-flag 1");
    INFO(r.output);
    REQUIRE(r.code == 2);
    REQUIRE_THAT(r.output, Catch::StartsWith("The following arguments were not expected") &&
                               Catch::Contains("--no-such-flag"));
  }
  SECTION("no subcommand: exit 2") { REQUIRE(run_ncl("").code == 2); }
  SECTION("--help: exit 0") {
    Run r = run_ncl("--help");
    REQUIRE(r.code == 0);
    REQUIRE_THAT(r.output, Catch::Contains("info"));
  }
}

TEST_CASE("ncl: --device is checked before any work", "[cli]") {
  std::string csv = temp_file("device.csv");
  std::ofstream(csv) << "1,2\n3,4\n";
  SECTION("an unknown device is bad usage: exit 2") {
    Run r = run_ncl("cluster --device tpu " + csv);
    REQUIRE(r.code == 2);
    REQUIRE_THAT(r.output, Catch::Contains("--device"));
  }
  SECTION("cuda without a usable device: one line, exit 1") {
    if (ops::cuda_available()) {
      WARN("a CUDA device is present: the no-device error is not reachable here");
      return;
    }
    Run r = run_ncl("cluster --device cuda " + csv);
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::StartsWith("ncl: error:") &&
                               Catch::Contains("no usable CUDA device") && Catch::Contains("HINT"));
    REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
}

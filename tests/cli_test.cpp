// The ncl binary itself: `ncl info` on a real checkpoint, on a missing and a corrupt file,
// and bad usage (exit codes 0 / 1 / 2, one clear error line).
#include <unistd.h>

#include <array>
#include <chrono>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "data/benchmark.h"
#include "data/generator.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"
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

TEST_CASE("ncl: flag values out of range are refused before any work", "[cli]") {
  require_refused({
      {"train --threads 65535 --out x.safetensors", 2, "from 0 to 1024"},
      {"cluster --threads -1 x.csv", 2, "from 0 to 1024"},
      {"eval --datasets 99999999999999", 2, "from 1 to 100000"},
      {"eval --datasets 2.5", 2, "whole number"},
      {"gen --data mog --datasets 0 --out x.safetensors", 2, "from 1 to 100000"},
      {"gen --data mog --seed -1 --out x.safetensors", 2, "--seed"},
      {"train --seed 99999999999999999999999 --out x.safetensors", 2, "--seed"},
      {"cluster --inference-seed -5 x.csv", 2, "--inference-seed"},
      {"train --lr inf --out x.safetensors", 2, "--lr"},
      {"train --lr nan --out x.safetensors", 2, "--lr"},
      {"train --steps 1e300 --out x.safetensors", 2, "--steps"},
      {"train --config '{\"dim_input\":3}' --out x.safetensors", 2,
       "dim_input comes from the data"},
      {"train --config '{\"dim\":16,\"dim\":32}' --out x.safetensors", 2,
       "gives the key 'dim' twice"},
      {"train --config '{\"dim\":1e400}' --out x.safetensors", 2, "must be valid JSON"},
      {"gen --data mog --datasets 2 --out x.csv", 2, "a CSV holds one dataset"},
      {"gen --data mog --datasets 1 --out x.npy", 2, "FILE.safetensors"},
      {"cluster --labels y.npy x.csv", 2, "is for NPY input"},
      {"cluster --label-column 2 x.npy", 2, "is for CSV input"},
      // Label flags the data would ignore.
      {"train --data mog --labels y.npy --out x.safetensors", 2, "is a generator"},
      {"train --label-column 2 --out x.safetensors", 2, "is a generator"},
      {"train --data x.npy --label-column 2 --out x.safetensors", 2, "is for CSV files"},
      {"train --data x.csv --labels y.npy --out x.safetensors", 2, "is for NPY files"},
  });
}

TEST_CASE("ncl: an output never overwrites an input, and a failed write is an error",
          "[cli]") {
  const std::string csv = temp_file("apart.csv");
  std::ofstream(csv) << "x,y,label\n0,0,0\n0.1,0,0\n5,5,1\n5.1,5,1\n";
  const std::string before = read_text(csv);
  SECTION("the input as --out or --plot") {
    for (const std::string flag : {"-o ", "--plot "}) {
      Run r = run_ncl("cluster " + csv + " --label-column label " + flag + csv);
      INFO(r.output);
      REQUIRE(r.code == 1);
      REQUIRE_THAT(r.output, Catch::Contains("is the INPUT file"));
      REQUIRE(read_text(csv) == before);
    }
  }
  SECTION("--out and --plot the same file under two names") {
    const std::string out = temp_file("same.out");
    const std::string dir = std::filesystem::path(out).parent_path().string();
    Run r = run_ncl("cluster " + csv + " --label-column label -o " + out + " --plot " + dir +
                    "/./same.out");
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::Contains("name the same file"));
    REQUIRE_FALSE(std::filesystem::exists(out));
  }
  SECTION("the file behind standard input") {
    Run r = run_shell(std::string(NCL_BINARY) + " cluster - --label-column label -o " + csv +
                      " < " + csv + " 2>&1");
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::Contains("is the INPUT file"));
    REQUIRE(read_text(csv) == before);
  }
  SECTION("training onto its own data file") {
    Run r = run_ncl("train --data " + csv + " --label-column label --steps 1 --out " + csv);
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::Contains("is the --data file"));
    REQUIRE(read_text(csv) == before);
  }
  SECTION("a directory, or a missing one: one line, nothing left behind") {
    const std::string dir = temp_file("a-directory");
    std::filesystem::create_directories(dir);
    Run r = run_ncl("cluster " + csv + " --label-column label -o " + dir);
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::Contains("it is a directory"));
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(dir).parent_path()))
      REQUIRE(entry.path().filename().string().find("a-directory.tmp") == std::string::npos);
    Run missing = run_ncl("train --steps 1 --out " + dir + "/no/such/x.safetensors");
    REQUIRE(missing.code == 1);
    REQUIRE_THAT(missing.output, Catch::Contains("no directory"));
    REQUIRE_THAT(missing.output, !Catch::Contains("step"));  // refused before training
  }
  SECTION("a symbolic link: its target is written, the link stays") {
    const std::string target = temp_file("link-target.csv"), link = temp_file("link.csv");
    std::ofstream(target) << "old\n";
    std::filesystem::remove(link);
    std::filesystem::create_symlink(target, link);
    Run r = run_ncl("cluster " + csv + " --label-column label -o " + link);
    REQUIRE(r.code == 0);
    REQUIRE(std::filesystem::is_symlink(link));
    REQUIRE(read_text(target).starts_with("label\n"));
  }
  SECTION("a device is written in place; a full one is an error") {
    REQUIRE(run_ncl("cluster " + csv + " --label-column label -o /dev/null").code == 0);
    REQUIRE(std::filesystem::is_character_file("/dev/null"));
    if (!std::filesystem::is_character_file("/dev/full")) {
      WARN("no /dev/full here: the full-disk cases are not run");
      return;
    }
    Run file = run_ncl("cluster " + csv + " --label-column label -o /dev/full");
    REQUIRE(file.code == 1);
    REQUIRE_THAT(file.output, Catch::Contains("No space left"));
    REQUIRE(std::filesystem::is_character_file("/dev/full"));
    Run out = run_shell(std::string(NCL_BINARY) + " cluster " + csv + " --label-column label > /dev/full 2>&1");
    REQUIRE(out.code == 1);
  }
}

TEST_CASE("ncl: damaged input files and checkpoints: one error line, exit 1", "[cli]") {
  const std::string csv = temp_file("damaged_points.csv");
  std::ofstream(csv) << "x,y\n0,0\n1,1\n";
  auto require_error = [](const std::string& args, const std::string& says) {
    Run r = run_ncl(args);
    INFO(args << "\n" << r.output);
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::Contains("ncl: error: ") && Catch::Contains(says));
    REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') <= 2);  // and maybe a warning
  };
  SECTION("binary input without a line end is refused at once, not read to its end") {
    require_error("cluster /dev/zero", "binary data");
  }
  SECTION("a value too large for float32's arithmetic gives no clustering of NaNs") {
    const std::string huge = temp_file("huge.csv");
    std::ofstream(huge) << "1,2\n1e39,3\n4,5\n";
    require_error("cluster --format json " + huge, "not finite");
  }
  SECTION("a benchmark or checkpoint given as points, a directory as a checkpoint") {
    const std::string bench = temp_file("as_points.safetensors");
    REQUIRE(run_ncl("gen --data mog-k4 --datasets 2 --out " + bench).code == 0);
    require_error("cluster " + bench, "not points");
    require_error("train --data " + bench + " --out " + temp_file("never.safetensors"),
                  "not points");
    require_error("info " + std::filesystem::path(bench).parent_path().string(),
                  "is a directory");
  }
  SECTION("a benchmark holding a NaN point or a zero standard deviation") {
    data::MogK4 generator(20, 21);
    data::Benchmark b = data::generate_benchmark(generator, 2, 2, 0);
    const std::string nan_point = temp_file("nan_point.safetensors");
    b.datasets[1].points[3] = std::nan("");
    data::save_benchmark(nan_point, b);
    require_error("eval --data " + nan_point, "has the value nan");
    b.datasets[1].points[3] = 0.0;
    b.datasets[0].truth->stddevs[1] = 0.0;
    const std::string zero_sd = temp_file("zero_sd.safetensors");
    data::save_benchmark(zero_sd, b);
    require_error("eval --data " + zero_sd, "standard deviation 0");
  }
  SECTION("checkpoint metadata and shapes that cannot be right") {
    Rng rng(0);
    nn::Linear linear(2, 2, rng);
    const std::string config = temp_file("config_array.safetensors");
    nn::save_checkpoint(config, linear, nullptr, {{"model", "dac"}, {"config", "[]"}});
    require_error("cluster --model " + config + " " + csv, "'config' metadata is not a JSON");
    const std::string wrong = temp_file("config_type.safetensors");
    nn::save_checkpoint(wrong, linear, nullptr, {{"model", "dac"}, {"config", "{\"dim\": \"x\"}"}});
    require_error("cluster --model " + wrong + " " + csv, "checkpoint 'config'");
    // A tensor of shape [-1]: the 8-byte header length, then the header.
    const std::string header = R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})";
    std::string bytes(8, '\0');
    bytes[0] = char(header.size());
    const std::string negative = temp_file("negative_shape.safetensors");
    std::ofstream(negative, std::ios::binary) << bytes << header;
    require_error("info " + negative, "impossible shape [-1]");
  }
  SECTION("resuming from a checkpoint whose Adam step is not a number") {
    const std::string ckpt = temp_file("adam_step.safetensors");
    train_ok(kSmallSetTransformer + " --steps 1", ckpt);
    TensorFile file = load_safetensors(ckpt);
    file.metadata["adam.step"] = "{{garbage";
    save_safetensors(ckpt, file);
    require_error("train --resume " + ckpt + " --out " + ckpt + " --steps 2",
                  "'adam.step' is not a step count");
  }
  SECTION("an unknown subcommand, or an unknown flag before one, is named") {
    Run sub = run_ncl("frobnicate");
    REQUIRE(sub.code == 2);
    REQUIRE_THAT(sub.output, Catch::StartsWith("unknown subcommand 'frobnicate'"));
    Run flag = run_ncl("--bogus info");
    REQUIRE(flag.code == 2);
    REQUIRE_THAT(flag.output, Catch::Contains("not expected: --bogus"));
  }
}

TEST_CASE("ncl: signals", "[cli]") {
  SECTION("train: SIGINT sent twice at once (GNU timeout: the process, then its group) saves") {
    const std::string ckpt = temp_file("twice.safetensors"), log = temp_file("twice.log");
    Run r = run_shell("timeout --preserve-status -s INT 2 " + std::string(NCL_BINARY) +
                      " train " + kSmallSetTransformer + " --steps 1000000 --log-every 0 --out " +
                      ckpt + " > " + log + " 2>&1; echo exit=$?");
    INFO(read_text(log));
    REQUIRE_THAT(r.output, Catch::Contains("exit=130"));
    REQUIRE_THAT(read_text(log), Catch::Contains("interrupted: saved " + ckpt));
    REQUIRE(run_ncl("info " + ckpt).code == 0);
  }
  SECTION("SIGTERM at any moment of a large write leaves no temporary file") {
    // Where the signal lands is timing: the delays span the run, whose last fifth is the write.
    const std::string dir = temp_file("term-gen");
    std::filesystem::create_directories(dir);
    const std::string gen = std::string(NCL_BINARY) + " gen --data mog-12 --datasets 2000 --out " +
                            dir + "/g.safetensors";
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    REQUIRE(run_shell(gen).code == 0);
    const double whole = std::chrono::duration<double>(Clock::now() - start).count();
    for (double share : {0.6, 0.7, 0.8, 0.85, 0.9, 0.95}) {
      run_shell("timeout -s TERM " + std::to_string(share * whole) + " " + gen + " 2>/dev/null");
      for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        INFO("after SIGTERM at " << share * whole << " s of " << whole);
        REQUIRE(entry.path().filename() == "g.safetensors");
      }
    }
  }
}

TEST_CASE("ncl cluster --plot: one point, or identical points, keep the ellipses in the picture",
          "[cli]") {
  for (const std::string text : {"x,y\n1,2\n", "x,y\n1,2\n1,2\n1,2\n"}) {
    const std::string csv = temp_file("plot_points.csv"), svg = temp_file("plot.svg");
    std::ofstream(csv) << text;
    REQUIRE(run_ncl("cluster " + csv + " -o " + temp_file("plot_labels.csv") + " --plot " + svg)
                .code == 0);
    // Every ellipse's centre and radii lie within the 640-pixel picture.
    const std::string picture = read_text(svg);
    const std::regex ellipse("<ellipse cx=\"([-0-9.]+)\" cy=\"([-0-9.]+)\" rx=\"([-0-9.]+)\" "
                             "ry=\"([-0-9.]+)\"");
    int ellipses = 0;
    for (auto it = std::sregex_iterator(picture.begin(), picture.end(), ellipse);
         it != std::sregex_iterator(); ++it, ++ellipses)
      for (int g = 1; g <= 4; ++g) {
        INFO(it->str());
        REQUIRE(std::stod((*it)[g]) >= 0.0);
        REQUIRE(std::stod((*it)[g]) <= 640.0);
      }
    REQUIRE(ellipses >= 2);
  }
}

TEST_CASE("ncl: file names that are not UTF-8 are fine in checkpoints and JSON", "[cli]") {
  // Linux file names are bytes; JSON (and so a checkpoint's header) is UTF-8.
  const std::string ckpt = temp_file("latin1-\xff.safetensors");
  train_ok(kSmallSetTransformer + " --steps 1", "'" + ckpt + "'");
  const std::string csv = temp_file("latin1-\xfe.csv");
  std::ofstream(csv) << "x,y\n0,0\n1,1\n";
  Run r = run_ncl_stdout("cluster --model '" + ckpt + "' --format json '" + csv + "'");
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.output);
  REQUIRE(j["labels"].size() == 2);
  REQUIRE_THAT(j["checkpoint"].get<std::string>(), Catch::Contains("latin1-\xEF\xBF\xBD"));
}

TEST_CASE("ncl train: a second run writing the same --out is refused while the first lives",
          "[cli]") {
  const std::string ckpt = temp_file("locked.safetensors"), log = temp_file("locked.log");
  // The first run in the background until its first progress line; then the second; then the
  // first is stopped (Ctrl-C: it saves and exits 130). A watchdog bounds the whole script.
  const std::string first = std::string(NCL_BINARY) + " train " + kSmallSetTransformer +
                            " --steps 1000000 --log-every 0 --out " + ckpt;
  const std::string script =
      first + " > " + log + " 2>&1 & p=$!; ( sleep 120; kill -KILL $p ) > /dev/null 2>&1 & w=$!; "
      "i=0; while ! grep -qs '^step ' " + log +
      " && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; " + std::string(NCL_BINARY) + " train " + kSmallSetTransformer + " --steps 2 --out " + ckpt +
      " 2>&1; echo second=$?; kill -INT $p; wait $p; echo first=$?; kill $w";
  Run r = run_shell_stdout(script);
  INFO(r.output << read_text(log));
  REQUIRE_THAT(r.output, Catch::Contains("another `ncl train` is writing this checkpoint"));
  REQUIRE_THAT(r.output, Catch::Contains("second=1"));
  REQUIRE_THAT(r.output, Catch::Contains("first=130"));
  REQUIRE_FALSE(std::filesystem::exists(ckpt + ".lock"));  // removed when the first ended
  train_ok(kSmallSetTransformer + " --steps 1", ckpt);      // and the place is free again
}

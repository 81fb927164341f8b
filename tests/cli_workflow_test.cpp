// The ncl binary end to end, on a small model so that it stays fast: train → info → cluster
// (CSV, JSON, SVG, stdin) → eval; a resumed run equal bit for bit to an uninterrupted one;
// Ctrl-C saving a resumable checkpoint; every kind of bad input giving the right exit code and
// one clear line; and the shipped default model.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "models/registry.h"
#include "nn/checkpoint.h"
#include "tensor/safetensors.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::test;
using Catch::Contains;
using nlohmann::json;

namespace {

const std::string& kSmall = kSmallSetTransformer;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Trains the small model for `steps` steps into a new checkpoint at `path`.
void train_small(const std::string& path, int steps, const std::string& extra = "") {
  train_ok(kSmall + " --steps " + std::to_string(steps) + " " + extra, path);
}

// One dataset from mog-k4 (seed 3) as CSV with columns x0, x1, label.
void gen_csv(const std::string& path) {
  Run r = run_ncl("gen --data mog-k4 --datasets 1 --seed 3 --out " + path);
  INFO(r.output);
  REQUIRE(r.code == 0);
}

}  // namespace

TEST_CASE("ncl workflow: train, info, cluster as CSV / JSON / SVG / stdin, eval", "[cli]") {
  const std::string ckpt = temp_file("wf_model.safetensors"), csv = temp_file("wf_points.csv");
  Run train = run_ncl("train " + kSmall + " --steps 3 --lr 0.0005 --log-every 0 --out " + ckpt);
  INFO(train.output);
  REQUIRE(train.code == 0);
  REQUIRE_THAT(train.output, Contains("saved " + ckpt + " (step 3 of 3)"));

  // info: model, step, and the parameter count of the network the config describes.
  Run info = run_ncl("info " + ckpt);
  INFO(info.output);
  REQUIRE(info.code == 0);
  REQUIRE_THAT(info.output, Contains("model       set-transformer"));
  REQUIRE_THAT(info.output, Contains("step        3 of 3"));
  REQUIRE_THAT(info.output, Contains("\nlr          0.0005\n"));  // stored as 0.00050000000000000001
  REQUIRE(nn::load_checkpoint(ckpt).metadata.at("lr") == "0.00050000000000000001");
  TensorFile checkpoint = nn::load_checkpoint(ckpt);
  Rng rng(0);
  auto model = models::make_model("set-transformer", json::parse(checkpoint.metadata.at("config")), rng);
  REQUIRE(model->dim() == 2);
  REQUIRE_THAT(info.output, Contains("parameters  " + std::to_string(model->parameter_count()) +
                                     " in " + std::to_string(model->named_parameters().size()) +
                                     " tensors"));

  gen_csv(csv);
  std::vector<std::string> rows = lines_of(read_text(csv));
  REQUIRE(rows.at(0) == "x0,x1,label");
  const size_t N = rows.size() - 1;
  REQUIRE((N >= 300 && N < 600));
  const std::string cluster = "cluster --model " + ckpt + " " + csv + " --label-column label";

  // CSV on stdout: a "label" header and one label in 0..3 per point.
  Run labels_run = run_ncl_stdout(cluster);
  REQUIRE(labels_run.code == 0);
  std::vector<std::string> label_lines = lines_of(labels_run.output);
  REQUIRE(label_lines.size() == N + 1);
  REQUIRE(label_lines[0] == "label");
  std::vector<int> labels;
  for (size_t n = 1; n <= N; ++n) {
    REQUIRE(std::regex_match(label_lines[n], std::regex("[0-3]")));
    labels.push_back(std::stoi(label_lines[n]));
  }
  // The summary on stderr, scored against the file's label column.
  Run summary = run_ncl(cluster + " -o " + temp_file("wf_labels.csv"));
  INFO(summary.output);
  REQUIRE(summary.code == 0);
  REQUIRE_THAT(summary.output, Contains(std::to_string(N) + " points -> ") &&
                                   Contains("against the file's labels: ARI"));
  REQUIRE(read_text(temp_file("wf_labels.csv")) == labels_run.output);

  // JSON: labels, membership, components, clusters, log_likelihood — mutually consistent.
  const std::string json_path = temp_file("wf_out.json");
  REQUIRE(run_ncl(cluster + " -o " + json_path).code == 0);
  json j = json::parse(read_text(json_path));
  for (const char* key : {"labels", "membership", "components", "clusters", "log_likelihood"}) {
    INFO("key " << key);
    REQUIRE(j.contains(key));
  }
  REQUIRE(j["labels"].get<std::vector<int>>() == labels);
  REQUIRE(j["membership"].size() == N);
  for (size_t n = 0; n < N; ++n) {
    std::vector<double> row = j["membership"][n].get<std::vector<double>>();
    REQUIRE(row.size() == 4);
    double sum = 0.0;
    for (double r : row) {
      REQUIRE((r >= 0.0 && r <= 1.0));
      sum += r;
    }
    REQUIRE(sum == Approx(1.0).margin(1e-9));
    REQUIRE(int(std::max_element(row.begin(), row.end()) - row.begin()) == labels[n]);
  }
  REQUIRE(j["clusters"].get<int>() == int(std::set<int>(labels.begin(), labels.end()).size()));
  REQUIRE(j["components"].size() == 4);
  double weights = 0.0;
  for (const json& c : j["components"]) {
    weights += c["weight"].get<double>();
    REQUIRE(c["mean"].size() == 2);
    for (double s : c["stddev"].get<std::vector<double>>()) REQUIRE(s > 0.0);
  }
  REQUIRE(weights == Approx(1.0).margin(1e-5));
  REQUIRE(std::isfinite(j["log_likelihood"].get<double>()));
  // --format json on stdout is the same document.
  Run json_stdout = run_ncl_stdout(cluster + " --format json");
  REQUIRE(json_stdout.code == 0);
  REQUIRE(json_stdout.output == read_text(json_path));

  // --plot: an SVG with one circle per point and the 1σ and 2σ ellipse of each component.
  const std::string svg_path = temp_file("wf_plot.svg");
  REQUIRE(run_ncl(cluster + " -o " + temp_file("wf_labels2.csv") + " --plot " + svg_path).code == 0);
  std::string svg = read_text(svg_path);
  REQUIRE(svg.rfind("<svg", 0) == 0);
  REQUIRE_THAT(svg, Catch::EndsWith("</svg>\n"));
  auto count = [&](const std::string& tag) {
    size_t c = 0;
    for (size_t at = svg.find(tag); at != std::string::npos; at = svg.find(tag, at + 1)) ++c;
    return c;
  };
  REQUIRE(count("<circle") == N);
  REQUIRE(count("<ellipse") == 8);

  // stdin: the same points without the label column give the same labels.
  const std::string plain = temp_file("wf_plain.csv");
  std::string plain_text;
  for (const std::string& row : rows) plain_text += row.substr(0, row.rfind(',')) + "\n";
  write_text(plain, plain_text);
  Run from_stdin = run_ncl_stdout("cluster --model " + ckpt + " - < " + plain);
  REQUIRE(from_stdin.code == 0);
  REQUIRE(from_stdin.output == labels_run.output);

  // eval: exactly the documented keys, all finite.
  Run eval = run_ncl_stdout("eval --model " + ckpt + " --data mog-k4 --datasets 3 --format json");
  INFO(eval.output);
  REQUIRE(eval.code == 0);
  json e = json::parse(eval.output);
  std::set<std::string> keys;
  for (auto& [key, value] : e.items()) keys.insert(key);
  REQUIRE(keys == std::set<std::string>{"ari", "nmi", "ami", "k_mae", "ll", "oracle_ll", "ll1",
                                        "ms_per_dataset", "model", "checkpoint", "data", "datasets"});
  for (const char* key : {"ari", "nmi", "ami", "k_mae", "ll", "oracle_ll", "ll1", "ms_per_dataset"}) {
    INFO("key " << key);
    REQUIRE(std::isfinite(e[key].get<double>()));
  }
  REQUIRE(e["datasets"].get<int>() == 3);
  REQUIRE(e["model"] == "set-transformer");
  REQUIRE((e["ari"].get<double>() >= -1.0 && e["ari"].get<double>() <= 1.0));
  REQUIRE((e["nmi"].get<double>() >= 0.0 && e["nmi"].get<double>() <= 1.0));
  REQUIRE(e["k_mae"].get<double>() >= 0.0);
  // A 3-step model is far from the truth: the oracle's likelihood is higher.
  REQUIRE(e["oracle_ll"].get<double>() > e["ll"].get<double>());

  // A benchmark file from `ncl gen` (seed 0, batch 10) scores exactly as the generator does.
  const std::string bench = temp_file("wf_bench.safetensors");
  REQUIRE(run_ncl("gen --data mog-k4 --datasets 5 --out " + bench).code == 0);
  Run from_file = run_ncl_stdout("eval --model " + ckpt + " --data " + bench + " --format json");
  Run generated = run_ncl_stdout("eval --model " + ckpt + " --data mog-k4 --datasets 5 --format json");
  REQUIRE(from_file.code == 0);
  REQUIRE(generated.code == 0);
  json a = json::parse(from_file.output), b = json::parse(generated.output);
  REQUIRE(a["datasets"].get<int>() == 5);
  for (const char* key : {"ari", "nmi", "ami", "k_mae", "ll", "oracle_ll", "ll1"}) {
    INFO("key " << key << ": " << a[key] << " from the file, " << b[key] << " generated");
    REQUIRE(a[key].get<double>() == b[key].get<double>());
  }

  for (const std::string& path : {ckpt, csv, json_path, svg_path, plain, bench,
                                  temp_file("wf_labels.csv"), temp_file("wf_labels2.csv")})
    std::filesystem::remove(path);
}

TEST_CASE("ncl train: --until then --resume gives the uninterrupted run's bits", "[cli]") {
  const std::string a = temp_file("resume_a.safetensors"), b = temp_file("resume_b.safetensors"),
                    b3 = temp_file("resume_b3.safetensors");
  // 6 steps: the learning rate drops ×0.1 at step 4 (decay_at 0.7), after the split at step 3.
  // Chunks of one dataset on 2 threads: the two run at once (models/model.cpp), and the resumed
  // run takes the chunk size from the checkpoint.
  train_small(a, 6, "--seed 4 --micro-batch 1 --threads 2");
  train_small(b, 6, "--seed 4 --micro-batch 1 --threads 2 --until 3");
  std::filesystem::copy_file(b, b3);
  REQUIRE(load_safetensors(b).metadata.at("micro_batch") == "1");
  Run resume = run_ncl("train --resume " + b + " --out " + b + " --log-every 0 --threads 2");
  INFO(resume.output);
  REQUIRE(resume.code == 0);
  REQUIRE_THAT(resume.output, Contains("steps 3..6"));

  TensorFile ta = load_safetensors(a), tb = load_safetensors(b), tb3 = load_safetensors(b3);
  REQUIRE(ta.metadata.at("step") == "6");
  REQUIRE(tb.metadata.at("step") == "6");
  REQUIRE(tb3.metadata.at("step") == "3");
  REQUIRE(ta.metadata.at("adam.step") == tb.metadata.at("adam.step"));
  REQUIRE(ta.metadata.at("rng") == tb.metadata.at("rng"));
  REQUIRE(ta.tensors.size() == tb.tensors.size());
  size_t adam_tensors = 0, changed_since_3 = 0;
  for (const auto& [name, t] : ta.tensors) {
    INFO("tensor " << name);
    const Tensor* u = tb.find(name);
    REQUIRE(u != nullptr);
    REQUIRE(u->shape() == t.shape());
    REQUIRE(u->dtype() == t.dtype());
    REQUIRE(std::memcmp(u->raw_data(), t.raw_data(), t.nbytes()) == 0);
    if (name.rfind("adam.", 0) == 0) ++adam_tensors;
    const Tensor* at3 = tb3.find(name);
    REQUIRE(at3 != nullptr);
    if (std::memcmp(at3->raw_data(), t.raw_data(), t.nbytes()) != 0) ++changed_since_3;
  }
  REQUIRE(adam_tensors > 0);
  REQUIRE(changed_since_3 > ta.tensors.size() / 2);  // the resumed steps did train

  SECTION("--resume with --seed or --model is refused: exit 2") {
    for (const char* flag : {"--seed 5", "--model set-transformer"}) {
      Run r = run_ncl("train --resume " + b + " --out " + b + " " + flag);
      INFO(r.output);
      REQUIRE(r.code == 2);
      REQUIRE_THAT(r.output, Contains("comes from the checkpoint when resuming"));
    }
    REQUIRE(load_safetensors(b).metadata.at("step") == "6");  // untouched
  }
  for (const std::string& path : {a, b, b3}) std::filesystem::remove(path);
}

TEST_CASE("ncl train: a diverging run rolls back to its last checkpoint with the lr halved", "[cli]") {
  // 300 healthy steps, then resumed at lr 0.1 (100× the recipe's), which makes this small
  // model's loss explode within a few steps. Each divergence returns to the last healthy
  // checkpoint (step 300, or a later multiple of 50 that the run reached at a halved lr; which
  // one depends on the machine's float rounding) with half the lr; after four roll-backs the
  // run either trains on at 1/16 of that lr or stops with one clear error, and in both cases
  // nothing of the last good checkpoint is lost.
  const std::string ckpt = temp_file("diverge.safetensors");
  train_small(ckpt, 300, "--seed 2");
  Run run = run_ncl("train --resume " + ckpt + " --out " + ckpt +
                    " --steps 600 --lr 0.1 --checkpoint-every 50 --log-every 0 --threads 1");
  INFO(run.output);
  std::vector<long> targets;  // the step of every roll-back, in order
  const std::regex rollback(R"(rolled back to step (\d+) \(.*\) with the lr halved)");
  for (const std::string& line : lines_of(run.output)) {
    std::smatch m;
    if (std::regex_search(line, m, rollback)) targets.push_back(std::stol(m[1]));
  }
  REQUIRE(targets.size() >= 1);
  REQUIRE(targets.size() <= 4);
  REQUIRE(std::is_sorted(targets.begin(), targets.end()));
  for (long step : targets) {
    REQUIRE(step >= 300);
    REQUIRE(step % 50 == 0);  // a checkpoint the run wrote before it diverged
  }
  const long rollbacks = long(targets.size());
  REQUIRE_THAT(run.output, Contains("the loss diverged") || Contains("is inf") || Contains("is nan"));
  TensorFile after = load_safetensors(ckpt);
  if (run.code == 0) {
    REQUIRE(after.metadata.at("step") == "600");
    REQUIRE(std::stol(after.metadata.at("rollbacks")) == rollbacks);
    REQUIRE(std::stod(after.metadata.at("lr_scale")) == std::ldexp(1.0, -int(rollbacks)));
  } else {
    REQUIRE(run.code == 1);
    REQUIRE(rollbacks == 4);
    REQUIRE_THAT(lines_of(run.output).back(), Contains("after 4 roll-backs") && Contains("HINT"));
    // The last good checkpoint, untouched, and still a healthy one to resume from.
    const long kept = std::stol(after.metadata.at("step"));
    REQUIRE(kept >= targets.back());
    REQUIRE(kept % 50 == 0);
    REQUIRE(run_ncl("eval --model " + ckpt + " --data mog-k4 --datasets 2 --threads 1").code == 0);
  }
  std::filesystem::remove(ckpt);
}

TEST_CASE("ncl train: Ctrl-C saves a resumable checkpoint and exits 130", "[cli]") {
  // SIGINT to a background job of a non-interactive sh: the shell starts it with SIGINT
  // ignored, and ncl's own handler (installed before the first step) overrides that. The script
  // waits for the first progress line, interrupts, and reports the exit status; a watchdog
  // kills ncl after 120 s so that a lost signal fails the test instead of hanging it.
  const std::string ckpt = temp_file("sigint.safetensors"), log = temp_file("sigint.log");
  const std::string script =
      std::string(NCL_BINARY) + " train " + kSmall +
      " --steps 1000000 --log-every 0 --out " + ckpt + " > " + log + " 2>&1 & p=$!; "
      "( sleep 120; kill -KILL $p ) > /dev/null 2>&1 & w=$!; "
      "i=0; while ! grep -qs '^step ' " + log + " && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
      "kill -INT $p; wait $p; echo exit=$?; kill $w";
  Run r = run_shell_stdout(script);
  std::string output = read_text(log);
  INFO(r.output << output);
  REQUIRE_THAT(r.output, Contains("exit=130"));
  REQUIRE_THAT(output, Contains("interrupted: saved " + ckpt + " at step "));

  Run info = run_ncl("info " + ckpt);
  INFO(info.output);
  REQUIRE(info.code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(info.output, m, std::regex("step +([0-9]+) of 1000000")));
  const long step = std::stol(m[1]);
  REQUIRE(step > 0);

  // --steps and --until count from the run's start: at or below the checkpoint's step they
  // are refused, not run as nothing.
  for (const std::string flag : {" --steps ", " --until "}) {
    Run behind = run_ncl("train --resume " + ckpt + " --out " + ckpt + flag + std::to_string(step));
    INFO(behind.output);
    REQUIRE(behind.code == 2);
    REQUIRE_THAT(behind.output, Contains("already at step " + std::to_string(step)));
  }
  const std::string target = std::to_string(step + 2);
  Run resume = run_ncl("train --resume " + ckpt + " --out " + ckpt + " --steps " + target);
  INFO(resume.output);
  REQUIRE(resume.code == 0);
  REQUIRE_THAT(run_ncl("info " + ckpt).output, Contains("step        " + target + " of " + target));
  std::filesystem::remove(ckpt);
  std::filesystem::remove(log);
}

TEST_CASE("ncl: bad input gives the right exit code and one clear line", "[cli]") {
  const std::string ckpt = temp_file("bad_model.safetensors"), csv = temp_file("bad_points.csv");
  train_small(ckpt, 1);
  gen_csv(csv);
  // Exit 1: exactly one line, "ncl: error: ...", that contains `what`.
  auto require_error = [](const Run& r, const std::vector<std::string>& what) {
    INFO(r.output);
    REQUIRE(r.code == 1);
    REQUIRE_THAT(r.output, Catch::StartsWith("ncl: error: "));
    REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    for (const std::string& w : what) REQUIRE_THAT(r.output, Contains(w));
  };
  // Exit 2 (usage): CLI11's message names the flag and the value; no 300-digit ranges.
  auto require_usage = [](const Run& r, const std::vector<std::string>& what) {
    INFO(r.output);
    REQUIRE(r.code == 2);
    REQUIRE(r.output.find('\n') < 80);
    for (const std::string& w : what) REQUIRE_THAT(r.output, Contains(w));
  };
  auto file_with = [](const std::string& name, const std::string& text) {
    std::string path = temp_file(name);
    write_text(path, text);
    return path;
  };
  const std::string cluster = "cluster --model " + ckpt + " ";

  SECTION("usage errors: exit 2") {
    const std::string out = " --out " + temp_file("never.safetensors");
    require_usage(run_ncl("train --no-such-flag" + out), {"--no-such-flag"});
    require_usage(run_ncl("train --steps -3" + out), {"--steps", "-3", "> 0"});
    require_usage(run_ncl("train --steps abc" + out), {"--steps", "'abc' is not a number"});
    require_usage(run_ncl("train --model nosuch" + out), {"--model", "nosuch"});
    REQUIRE(!std::filesystem::exists(temp_file("never.safetensors")));
  }
  SECTION("--data that is neither a generator nor a file") {
    require_error(run_ncl("train --data nosuch --out " + temp_file("never.safetensors")),
                  {"'nosuch'", "neither a generator"});
  }
  SECTION("point files: missing, ragged, non-numeric, NaN, empty, wrong dimension") {
    const std::string missing = temp_file("no_such_points.csv");
    require_error(run_ncl(cluster + missing), {missing, "cannot open"});
    std::string ragged = file_with("ragged.csv", "x,y\n1,2\n3,4,5\n");
    require_error(run_ncl(cluster + ragged), {ragged + ":3:", "expected 2 columns, found 3"});
    std::string word = file_with("word.csv", "x,y\n1,2\n3,abc\n");
    require_error(run_ncl(cluster + word), {word + ":3:2:", "'abc' is not a number"});
    std::string nan = file_with("nan.csv", "1,2\nnan,4\n");
    require_error(run_ncl(cluster + nan), {nan + ":2:1:", "'nan' is not finite"});
    std::string empty = file_with("empty.csv", "");
    require_error(run_ncl(cluster + empty), {empty, "no data rows"});
    std::string three = file_with("three.csv", "1,2,3\n4,5,6\n");
    require_error(run_ncl(cluster + three), {"3 features", "expects 2"});
  }
  SECTION("points far beyond any training data: a warning, and still a clustering") {
    std::string far = file_with("far.csv", "x,y\n1e6,2\n");
    Run r = run_ncl(cluster + far + " -o " + temp_file("far_labels.csv"));
    INFO(r.output);
    REQUIRE(r.code == 0);
    REQUIRE_THAT(r.output, Contains("ncl: warning: " + far + ": a point lies 1e+06 from the origin") &&
                               Contains("HINT") && Contains("1 point -> 1 cluster\n"));
    REQUIRE(std::regex_match(read_text(temp_file("far_labels.csv")), std::regex("label\n[0-9]+\n")));
    std::string near = file_with("near.csv", "x,y\n1,2\n3,4\n");
    Run quiet = run_ncl(cluster + near + " -o " + temp_file("far_labels.csv"));
    REQUIRE(quiet.code == 0);
    REQUIRE_THAT(quiet.output, !Contains("warning") && Contains("2 points -> "));
  }
  SECTION("checkpoints: corrupt, truncated, or a benchmark given as --model") {
    std::string corrupt = file_with("corrupt.safetensors", "definitely not a checkpoint");
    require_error(run_ncl("cluster --model " + corrupt + " " + csv), {corrupt, "HINT"});
    std::string bytes = read_text(ckpt);
    std::string half = file_with("half.safetensors", bytes.substr(0, bytes.size() / 2));
    require_error(run_ncl("cluster --model " + half + " " + csv), {half, "data offsets", "truncated"});
    std::string bench = temp_file("bad_bench.safetensors");
    REQUIRE(run_ncl("gen --data mog-k4 --datasets 2 --out " + bench).code == 0);
    require_error(run_ncl("cluster --model " + bench + " " + csv),
                  {bench, "not an ncl checkpoint", "ncl-benchmark"});
  }
  SECTION("eval: a checkpoint as --data, a CSV without labels") {
    require_error(run_ncl("eval --model " + ckpt + " --data " + ckpt), {ckpt, "not an ncl benchmark"});
    std::string plain = file_with("plain.csv", "x0,x1\n1,2\n3,4\n5,6\n");
    require_error(run_ncl("eval --model " + ckpt + " --data " + plain),
                  {plain, "1 features", "scoring needs labels"});
    // Three unlabeled features: the default label column (the last) holds fractions.
    std::string three = file_with("three.csv", "x0,x1,x2\n1,2,0.5\n3,4,1.25\n5,6,2.5\n");
    require_error(run_ncl("eval --model " + ckpt + " --data " + three),
                  {three, "non-integer value", "looks like a feature", "--label-column"});
  }
  std::filesystem::remove(ckpt);
  std::filesystem::remove(csv);
}

TEST_CASE("ncl cluster without --model uses the shipped checkpoint", "[cli][shipped]") {
  // The default of `ncl cluster` (cli/common.cpp): models/checkpoints/ in the repository.
  const std::filesystem::path shipped = std::filesystem::path(__FILE__).parent_path().parent_path() /
                                        "models/checkpoints/dac-mog.safetensors";
  INFO("shipped checkpoint: " << shipped.string());
  REQUIRE(std::filesystem::exists(shipped));
  ::unsetenv("NCL_DEFAULT_MODEL");  // the override of the default, which the binary inherits
  const std::string csv = temp_file("shipped_points.csv");
  gen_csv(csv);
  Run r = run_ncl_stdout("cluster " + csv + " --label-column label --format json");
  REQUIRE(r.code == 0);
  json j = json::parse(r.output);
  REQUIRE(std::filesystem::equivalent(j["checkpoint"].get<std::string>(), shipped));
  REQUIRE(j["model"] == "dac");
  REQUIRE(j["labels"].size() == lines_of(read_text(csv)).size() - 1);
  Run summary = run_ncl("cluster " + csv + " --label-column label -o " + temp_file("shipped.csv"));
  INFO(summary.output);
  REQUIRE(summary.code == 0);
  REQUIRE_THAT(summary.output, Contains("against the file's labels: ARI"));
  std::filesystem::remove(csv);
  std::filesystem::remove(temp_file("shipped.csv"));
}

// `ncl train --eval-data`: held-out scores at the start and every --eval-every steps, a run
// that trains the same bits as one without them, --keep-best saving the state of the best score
// (a resumable checkpoint, equal to the run stopped at that step), the best carried across a
// resume, and bad flags refused before any training.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <vector>

#include "nn/checkpoint.h"
#include "tensor/safetensors.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::test;
using Catch::Contains;
using nlohmann::json;

namespace {

const std::string& kSmall = kSmallSetTransformer;

Run train(const std::string& args, const std::string& out) {
  return train_ok(kSmall + " --seed 4 " + args, out);
}

// The "eval at step S (...): ari A  nmi B ..." lines: step → the named score.
std::vector<std::pair<int, double>> eval_lines(const std::string& output, const std::string& score) {
  std::vector<std::pair<int, double>> out;
  const std::regex line("eval at step ([0-9]+) \\(mog-k4, 3 datasets, [0-9.]+s\\):.*  " + score +
                        " (-?[0-9.]+)");
  for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it)
    out.emplace_back(std::stoi((*it)[1]), std::stod((*it)[2]));
  return out;
}

}  // namespace

TEST_CASE("ncl train --eval-data: scores while training, same bits, --keep-best keeps the best state",
          "[cli]") {
  const std::string plain = temp_file("te_plain.safetensors"), scored = temp_file("te_scored.safetensors"),
                    best = temp_file("te_best.safetensors"), upto = temp_file("te_upto.safetensors");
  train("--steps 6", plain);
  Run r = train("--steps 6 --eval-data mog-k4 --eval-datasets 3 --eval-every 2 --keep-best " + best,
                scored);
  INFO(r.output);

  // Scored at the start, at every second step and at the end; the held-out scoring reads the
  // model only, so the weights, Adam state and Rng are the unscored run's, bit for bit.
  std::vector<std::pair<int, double>> ari = eval_lines(r.output, "ari");
  REQUIRE(ari.size() == 4);
  for (size_t i = 0; i < ari.size(); ++i) REQUIRE(ari[i].first == int(2 * i));
  REQUIRE(eval_lines(r.output, "ll").size() == 4);
  REQUIRE(eval_lines(r.output, "oracle_ll").size() == 4);
  require_same_checkpoint(plain, scored);

  // --keep-best (default score: ARI): the state of the first highest score, saved as a
  // checkpoint equal to the run stopped there (here not the last step: this run's ARI peaks early).
  auto top = std::max_element(ari.begin(), ari.end(),
                              [](const auto& a, const auto& b) { return a.second < b.second; });
  TensorFile kept = load_safetensors(best);
  REQUIRE(kept.metadata.at("step") == std::to_string(top->first));
  json stored = json::parse(kept.metadata.at("eval_best"));
  REQUIRE(stored["metric"] == "ari");
  REQUIRE(stored["data"] == "mog-k4");
  REQUIRE(stored["datasets"] == 3);
  REQUIRE(stored["step"] == top->first);
  REQUIRE(stored["value"].get<double>() == Approx(top->second).margin(5e-5));  // printed to 4 places
  REQUIRE_THAT(r.output, Contains("eval at step " + std::to_string(top->first) + ": best ari so far"));
  if (top->first > 0) {
    train("--steps 6 --until " + std::to_string(top->first), upto);
    require_same_checkpoint(upto, best);
  }

  // The figures are `ncl eval`'s on the same datasets.
  Run eval = run_ncl_stdout("eval --model " + best + " --data mog-k4 --datasets 3 --format json");
  REQUIRE(eval.code == 0);
  REQUIRE(json::parse(eval.output)["ari"].get<double>() == Approx(top->second).margin(5e-5));

  SECTION("a resumed run goes on comparing against the stored best") {
    const std::string part = temp_file("te_part.safetensors"), part_best = temp_file("te_part_best.safetensors");
    train("--steps 6 --until 3 --eval-data mog-k4 --eval-datasets 3 --eval-every 2 --eval-metric ll "
          "--keep-best " + part_best, part);
    const double before = json::parse(load_safetensors(part).metadata.at("eval_best"))["value"];
    Run resume = run_ncl("train --resume " + part + " --out " + part + " --log-every 0 --eval-data "
                         "mog-k4 --eval-datasets 3 --eval-every 2 --eval-metric ll --keep-best " + part_best);
    INFO(resume.output);
    REQUIRE(resume.code == 0);
    std::vector<std::pair<int, double>> again = eval_lines(resume.output, "ll");
    REQUIRE(again.size() == 3);  // steps 3 (the start), 4 and 6
    REQUIRE(again[0].first == 3);
    // Step 3 was scored at the end of the first part; no better than the stored best, it is not saved again.
    REQUIRE_THAT(resume.output, !Contains("eval at step 3: best"));
    const double after = json::parse(load_safetensors(part_best).metadata.at("eval_best"))["value"];
    REQUIRE(after >= before);
    REQUIRE(json::parse(load_safetensors(part).metadata.at("eval_best"))["value"].get<double>() == after);
    require_same_checkpoint(plain, part);
    std::filesystem::remove(part);
    std::filesystem::remove(part_best);
  }
  for (const std::string& path : {plain, scored, best, upto}) std::filesystem::remove(path);
}

TEST_CASE("ncl train --eval-data: bad flags are refused before any training", "[cli]") {
  const std::string out = temp_file("te_never.safetensors"), npy = temp_file("te_points.npy"),
                    csv3 = temp_file("te_three.csv");
  const std::string base = "train " + kSmall + " --steps 2 --out " + out;
  {
    std::ofstream(csv3) << "a,b,c,label\n1,2,3,0\n4,5,6,1\n";
  }
  require_refused({
      {base + " --eval-every 2", 2, "--eval-every: needs --eval-data"},
      {base + " --keep-best " + temp_file("b.safetensors"), 2, "--keep-best: needs --eval-data"},
      {base + " --eval-data mog-k4 --keep-best " + out, 2, "a file other than --out"},
      {base + " --eval-data mog-k4 --eval-metric purity", 2, "--eval-metric"},
      {base + " --eval-data mog-k4 --eval-datasets 0", 2, "--eval-datasets"},
      {base + " --eval-data nosuch", 1, "--eval-data 'nosuch' is neither a generator"},
      {base + " --eval-data " + npy, 1, "NPY file keeps its labels apart"},
      {base + " --eval-data mog-k4 --eval-metric nll", 1, "does not report it"},
      {base + " --eval-data " + csv3, 1, "3 features but the model expects 2"},
  });
  REQUIRE(!std::filesystem::exists(out));
}

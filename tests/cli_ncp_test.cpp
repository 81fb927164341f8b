// The ncl binary with NCP, on a small network: train → info → cluster (JSON with the posterior's
// clusterings and co-clustering, under each search) → eval on crp-mog (with the held-out NLL);
// resuming reproduces the uninterrupted run bit for bit (orderings come from the run's Rng);
// bad NCP options are refused.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tensor/safetensors.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::test;
using Catch::Contains;
using nlohmann::json;

namespace {

const std::string& kSmall = kSmallNcp;

void train(const std::string& args, const std::string& out) { train_ok(kSmall + " " + args, out); }

}  // namespace

TEST_CASE("ncl with ncp: train, info, cluster with each search, eval", "[cli][ncp]") {
  const std::string csv = temp_file("ncp_points.csv"), ckpt = temp_file("ncp_cli.safetensors"),
                    out = temp_file("ncp_cli.json"), svg = temp_file("ncp_cli.svg");
  Run gen = run_ncl("gen --data crp-mog --datasets 1 --seed 4 --out " + csv);
  INFO(gen.output);
  REQUIRE(gen.code == 0);
  train("--steps 3", ckpt);
  Run info = run_ncl("info " + ckpt);
  REQUIRE(info.code == 0);
  REQUIRE_THAT(info.output, Contains("ncp"));
  REQUIRE_THAT(info.output, Contains("crp-mog"));
  REQUIRE_THAT(info.output, Contains("weight_decay 0.01"));
  REQUIRE_THAT(info.output, Contains("[[1200,5e-05],[2200,1e-05]]"));

  for (const std::string search : {"sample --samples 7", "beam --samples 5", "greedy"}) {
    INFO(search);
    Run cluster = run_ncl("cluster --model " + ckpt + " " + csv + " --label-column label -o " + out +
                          " --plot " + svg + " --search " + search);
    INFO(cluster.output);
    REQUIRE(cluster.code == 0);
    REQUIRE_THAT(cluster.output, Contains("distinct clusterings"));
    json j = json::parse(read_text(out));
    const size_t n = j["labels"].size();
    REQUIRE(n >= 5);
    REQUIRE(j["membership"].size() == n);
    REQUIRE(j["coclustering"].size() == n);
    REQUIRE(j["coclustering"][0].size() == n);
    for (size_t i = 0; i < n; ++i) REQUIRE(j["coclustering"][i][i].get<double>() == Approx(1.0));
    const json& top = j["clusterings"];
    REQUIRE(top.size() >= 1);
    REQUIRE(top.size() == std::min<size_t>(10, j["distinct_clusterings"].get<size_t>()));
    REQUIRE(top[0]["labels"] == j["labels"]);
    REQUIRE(top[0]["probability"].get<double>() ==
            Approx(std::exp(-top[0]["nll"].get<double>())));
    if (search == "greedy") REQUIRE(j["distinct_clusterings"] == 1);
    if (search.starts_with("beam")) REQUIRE(j["distinct_clusterings"] == 5);
    REQUIRE_THAT(read_text(svg), Contains("<svg"));
  }

  Run eval = run_ncl("eval --model " + ckpt + " --data crp-mog --datasets 3 --samples 4 --format json 2>/dev/null");
  INFO(eval.output);
  REQUIRE(eval.code == 0);
  json e = json::parse(eval.output);
  for (const char* key : {"ari", "nmi", "ami", "k_mae", "nll", "oracle_ll", "ms_per_dataset"})
    REQUIRE(e.contains(key));
  REQUIRE(e["nll"].get<double>() > 0.0);
  REQUIRE(!e.contains("ll1"));
  // Training from a labeled file: episodes of random class subsets, with different partitions
  // within a batch.
  train("--data " + csv + " --label-column label --steps 2", ckpt);
  REQUIRE_THAT(run_ncl("info " + ckpt).output, Contains("standardize"));
  for (const std::string& path : {csv, ckpt, out, svg}) std::filesystem::remove(path);
}

TEST_CASE("ncl train with ncp: --until then --resume gives the uninterrupted run's bits",
          "[cli][ncp]") {
  require_exact_resume(kSmall + " --seed 5", 4, 2);
}

TEST_CASE("ncl with ncp: bad options give exit 2 (usage) or 1 (error) and one line", "[cli][ncp]") {
  const std::string out = temp_file("ncp_bad.safetensors");
  require_refused({
      {"train --model ncp --loss anc --out " + out, 2, "dac, dac-maf"},
      {"train --model ncp --config '{\"orders\":0}' --out " + out, 1, "orders must be"},
      {"train --model ncp --config '{\"depth\":3}' --out " + out, 1, "unknown key 'depth'"},
      {"cluster --samples 0 -", 2, "--samples"},
      {"cluster --search best -", 2, "--search"},
      {"eval --data crp-mog --samples -3", 2, "--samples"},
      {"gen --data crp-mog --datasets 1 --batch 0 --out x.csv", 2, "--batch"},
  });
  REQUIRE(!std::filesystem::exists(out));
}

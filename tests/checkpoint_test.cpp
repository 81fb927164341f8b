// Checkpoints: bit-exact round trip with optimizer state; truncated, foreign, mis-shaped and
// incomplete files give a clear ncl::Error; a save killed half-way leaves the old file intact.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/functions.h"
#include "nn/attention.h"
#include "nn/checkpoint.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::nn;
using namespace ncl::test;
namespace fs = std::filesystem;

namespace {

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// A tiny model with a couple of Adam steps taken, so the optimizer state is non-trivial.
struct Trained {
  Rng rng;
  ISAB isab;
  Adam adam;
  explicit Trained(uint64_t seed)
      : rng(seed), isab(2, 8, 2, 3, false, rng), adam(isab.named_parameters(), AdamOptions{}) {
    for (int i = 0; i < 2; ++i) {
      adam.zero_grad();
      sum_all(square(isab.forward(Variable(rng.normal_tensor({2, 5, 2}))))).backward();
      adam.step();
    }
  }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("Checkpoint: round trip is bit-exact, optimizer state included", "[nn][checkpoint]") {
  Trained a(1), b(2);
  std::string path = temp_file("round.safetensors");
  save_checkpoint(path, a.isab, &a.adam, {{"model", "isab-test"}, {"step", "2"}});
  TensorFile file = load_checkpoint(path);
  REQUIRE(file.metadata.at("model") == "isab-test");
  REQUIRE(file.metadata.at("format") == "ncl-checkpoint");
  load_parameters(b.isab, file);
  load_optimizer(b.adam, file);
  auto pa = a.isab.named_parameters(), pb = b.isab.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    REQUIRE(bit_equal(pa[i].second.value(), pb[i].second.value()));
  }
  auto sa = a.adam.state(), sb = b.adam.state();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) REQUIRE(bit_equal(sa[i].second, sb[i].second));
  REQUIRE(b.adam.steps_taken() == 2);
  // The layout is plain safetensors: 8-byte length, JSON, data.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 8);
  REQUIRE(bytes[8] == '{');
}

TEST_CASE("Checkpoint: bad files give a clear ncl::Error", "[nn][checkpoint]") {
  Trained a(3), b(4);
  std::string good = temp_file("good.safetensors");
  save_checkpoint(good, a.isab, nullptr, {});
  std::string bytes = read_bytes(good), bad = temp_file("bad.safetensors");

  SECTION("missing file") {
    REQUIRE_THROWS_WITH(load_checkpoint(temp_file("nope.safetensors")),
                        Catch::Contains("cannot open"));
  }
  SECTION("empty and too short") {
    write_bytes(bad, "");
    REQUIRE_THROWS_WITH(load_checkpoint(bad), Catch::Contains("too short"));
  }
  SECTION("truncated in the data") {
    write_bytes(bad, bytes.substr(0, bytes.size() - 10));
    REQUIRE_THROWS_WITH(load_checkpoint(bad), Catch::Contains("data offsets"));
  }
  SECTION("truncated in the header") {
    write_bytes(bad, bytes.substr(0, 40));
    REQUIRE_THROWS_WITH(load_checkpoint(bad), Catch::Contains("header length"));
  }
  SECTION("a foreign file (wrong magic / header)") {
    write_bytes(bad, "PK\x03\x04 this is a zip file, not a checkpoint at all................");
    REQUIRE_THROWS_AS(load_checkpoint(bad), Error);
  }
  SECTION("safetensors but not an ncl checkpoint") {
    save_safetensors(bad, TensorFile{{}, {{"w", Tensor::zeros({2})}}});
    REQUIRE_THROWS_WITH(load_checkpoint(bad), Catch::Contains("not an ncl checkpoint"));
  }
  SECTION("a future format version") {
    TensorFile f = load_checkpoint(good);
    f.metadata["format_version"] = "99";
    save_safetensors(bad, f);
    REQUIRE_THROWS_WITH(load_checkpoint(bad), Catch::Contains("version 99"));
  }
  SECTION("a missing tensor") {
    TensorFile f = load_checkpoint(good);
    f.tensors.erase(f.tensors.begin());
    save_safetensors(bad, f);
    REQUIRE_THROWS_WITH(load_parameters(b.isab, load_checkpoint(bad)), Catch::Contains("missing"));
  }
  SECTION("a mis-shaped tensor") {
    TensorFile f = load_checkpoint(good);
    f.tensors[0].second = Tensor::zeros({3, 3});
    save_safetensors(bad, f);
    REQUIRE_THROWS_WITH(load_parameters(b.isab, load_checkpoint(bad)),
                        Catch::Contains("has shape (3, 3)"));
  }
  SECTION("a NaN or Inf in a parameter") {
    for (double v : {std::nan(""), double(INFINITY)}) {
      TensorFile f = load_checkpoint(good);
      std::vector<double> values = f.tensors[0].second.to_vector();
      values[values.size() / 2] = v;
      f.tensors[0].second = Tensor::from_vector(values, f.tensors[0].second.shape());
      save_safetensors(bad, f);
      const std::string name = f.tensors[0].first, at = std::to_string(values.size() / 2);
      REQUIRE_THROWS_WITH(load_parameters(b.isab, load_checkpoint(bad)),
                          Catch::Contains("'" + name + "' holds a non-finite value") &&
                              Catch::Contains("at element " + at));
    }
  }
  SECTION("a NaN in the optimizer state") {
    save_checkpoint(bad, a.isab, &a.adam, {});
    TensorFile f = load_checkpoint(bad);
    auto state = std::find_if(f.tensors.begin(), f.tensors.end(),
                              [](const auto& e) { return e.first.rfind("adam.", 0) == 0; });
    REQUIRE(state != f.tensors.end());
    std::vector<double> values = state->second.to_vector();
    values[0] = std::nan("");
    state->second = Tensor::from_vector(values, state->second.shape());
    save_safetensors(bad, f);
    const std::string name = state->first;
    REQUIRE_THROWS_WITH(load_optimizer(b.adam, load_checkpoint(bad)),
                        Catch::Contains("optimizer state '" + name + "' holds a non-finite"));
  }
  SECTION("an unexpected tensor") {
    TensorFile f = load_checkpoint(good);
    f.tensors.emplace_back("extra.weight", Tensor::zeros({2}));
    save_safetensors(bad, f);
    REQUIRE_THROWS_WITH(load_parameters(b.isab, load_checkpoint(bad)),
                        Catch::Contains("unexpected tensor 'extra.weight'"));
  }
  SECTION("a failed load leaves the module untouched") {
    TensorFile f = load_checkpoint(good);
    f.tensors.back().second = Tensor::zeros({7});
    save_safetensors(bad, f);
    Tensor before = b.isab.named_parameters()[0].second.value().clone();
    REQUIRE_THROWS_AS(load_parameters(b.isab, load_checkpoint(bad)), Error);
    REQUIRE(bit_equal(before, b.isab.named_parameters()[0].second.value()));
  }
}

TEST_CASE("Checkpoint: a save killed half-way leaves the previous file intact", "[nn][checkpoint]") {
  std::string path = temp_file("atomic.safetensors");
  Trained a(5);
  save_checkpoint(path, a.isab, nullptr, {{"generation", "old"}});
  std::string before = read_bytes(path);

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Keep overwriting the checkpoint with a large file until killed.
    TensorFile big{{{"format", "ncl-checkpoint"}, {"format_version", "1"}, {"generation", "new"}},
                   {{"w", Tensor::zeros({64 << 20})}}};
    while (true) save_safetensors(path, big);
  }
  // Wait until the child is writing its temporary file, then kill it mid-write.
  std::string tmp = path + ".tmp." + std::to_string(child);
  for (int i = 0; i < 2000 && !(fs::exists(tmp) && fs::file_size(tmp) > 0); ++i) ::usleep(1000);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  // Either the old file, or (if a whole save completed first) a complete new one; never a torn one.
  TensorFile after = load_checkpoint(path);
  if (after.metadata.at("generation") == "old") REQUIRE(read_bytes(path) == before);
  else REQUIRE(after.find("w")->numel() == (64 << 20));
  std::remove(tmp.c_str());
}

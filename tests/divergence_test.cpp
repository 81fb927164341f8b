// DivergenceMonitor: quiet on stationary and on decreasing noisy losses, whatever their shift
// and scale; firing within a couple of hundred steps of a steady rise, after the checkpoint
// gate has closed; its state surviving a round trip through checkpoint metadata exactly.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "nn/divergence.h"
#include "tensor/error.h"
#include "tensor/random.h"

using namespace ncl;
using nn::DivergenceMonitor;

namespace {

struct Trace {
  double max_score = 0;
  int64_t first_unhealthy = -1, first_diverged = -1;
};

// Feeds loss(t) for t = 0..steps-1 and records what the monitor said.
Trace feed(DivergenceMonitor& m, int64_t steps, const std::function<double(int64_t)>& loss) {
  Trace tr;
  for (int64_t t = 0; t < steps; ++t) {
    bool diverged = m.update(loss(t));
    tr.max_score = std::max(tr.max_score, m.score());
    if (!m.healthy() && tr.first_unhealthy < 0) tr.first_unhealthy = t;
    if (diverged && tr.first_diverged < 0) tr.first_diverged = t;
  }
  return tr;
}

}  // namespace

TEST_CASE("DivergenceMonitor: stationary and decreasing noisy losses never diverge", "[nn][optim]") {
  for (double shift : {0.0, -10.0}) {
    for (double scale : {1.0, 1000.0}) {
      Rng rng(7);
      DivergenceMonitor m;
      Trace tr = feed(m, 20000, [&](int64_t) { return shift + scale * (1.5 + 0.1 * rng.normal()); });
      INFO("shift " << shift << " scale " << scale << " max score " << tr.max_score);
      CHECK(tr.first_diverged < 0);
      CHECK(tr.max_score < DivergenceMonitor::kHealthyZ);
    }
  }
  // A training curve: falling fast, then slowly, with the same noise.
  Rng rng(8);
  DivergenceMonitor m;
  Trace tr = feed(m, 20000, [&](int64_t t) {
    return 1.5 + 3.0 * std::exp(-double(t) / 2000.0) + 0.1 * rng.normal();
  });
  INFO("max score " << tr.max_score);
  CHECK(tr.first_diverged < 0);
  CHECK(tr.max_score < DivergenceMonitor::kHealthyZ);
}

TEST_CASE("DivergenceMonitor: the score does not depend on the loss's shift or scale", "[nn][optim]") {
  Rng a(9), b(9);
  DivergenceMonitor plain, moved;
  for (int64_t t = 0; t < 5000; ++t) {
    double x = 1.5 + 0.1 * a.normal() + (t > 4000 ? 0.002 * double(t - 4000) : 0.0);
    double y = 1.5 + 0.1 * b.normal() + (t > 4000 ? 0.002 * double(t - 4000) : 0.0);
    plain.update(x);
    moved.update(-20.0 + 50.0 * y);
    REQUIRE(moved.score() == Approx(plain.score()).margin(1e-9));
  }
  CHECK(plain.score() > 1.0);  // the rise at the end did move it
}

TEST_CASE("DivergenceMonitor: a steady rise fires within two hundred steps", "[nn][optim]") {
  Rng rng(10);
  DivergenceMonitor m;
  const int64_t ramp_start = 3000;
  // Noise of standard deviation 0.1 (mean absolute deviation 0.08), then +0.01 per step: the
  // average reaches best + 8 · 0.08 about 110 steps in (it lags the ramp by ~50 steps).
  Trace tr = feed(m, 5000, [&](int64_t t) {
    return 1.5 + 0.1 * rng.normal() + (t >= ramp_start ? 0.01 * double(t - ramp_start) : 0.0);
  });
  INFO("unhealthy at " << tr.first_unhealthy << ", diverged at " << tr.first_diverged);
  REQUIRE(tr.first_diverged >= ramp_start + 50);
  REQUIRE(tr.first_diverged <= ramp_start + 200);
  // The checkpoint gate closed first, so the last checkpoint predates most of the rise.
  REQUIRE(tr.first_unhealthy >= ramp_start);
  REQUIRE(tr.first_unhealthy < tr.first_diverged);
}

TEST_CASE("DivergenceMonitor: state round-trips through checkpoint metadata", "[nn][optim]") {
  Rng rng(11);
  auto loss = [&](int64_t) { return 0.2 + 0.05 * rng.normal(); };
  DivergenceMonitor m;
  feed(m, 1000, loss);
  std::map<std::string, std::string> meta{{"model", "dac"}};
  m.to_metadata(meta);
  DivergenceMonitor restored;
  restored.from_metadata(meta, "x.safetensors");
  for (int64_t t = 0; t < 2000; ++t) {
    double x = loss(t) + (t > 1500 ? 0.001 * double(t - 1500) : 0.0);
    REQUIRE(m.update(x) == restored.update(x));
    REQUIRE(m.score() == restored.score());  // exact: the text holds 17 digits
  }
  CHECK(m.score() > 0.0);

  // Checkpoints from before the monitor start it afresh: in warm-up, score 0.
  DivergenceMonitor fresh;
  fresh.update(5.0);
  fresh.from_metadata({{"model", "dac"}}, "old.safetensors");
  CHECK(fresh.score() == 0.0);
  CHECK(fresh.best() == std::numeric_limits<double>::infinity());

  meta["divergence.noise"] = "abc";
  REQUIRE_THROWS_WITH(restored.from_metadata(meta, "x.safetensors"),
                      Catch::Contains("x.safetensors") && Catch::Contains("divergence.noise") &&
                          Catch::Contains("'abc'"));
  REQUIRE_THROWS_AS(m.update(std::nan("")), Error);
}

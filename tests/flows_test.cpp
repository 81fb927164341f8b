// nn/flows: float64 gradient checks for MaskedLinear, MADE and MAF.log_prob; MADE's
// autoregressive property checked exactly (output d ignores x_≥d, and coordinate 0 ignores the
// context); the MAF density integrates to 1 over a 2-D grid; the reference MAF has DAC-py's
// parameter count.
#include <catch2/catch.hpp>

#include <cmath>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "nn/flows.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::nn;
using namespace ncl::test;

namespace {

// MADE's outputs as one (R, 2D) host vector: [shift | scale] per row.
std::vector<double> made_outputs(const MADE& made, const Tensor& x, const Tensor& context) {
  ShiftScale out = made.forward(Variable(x), Variable(context));
  return concat({out.shift, out.scale}, 1).value().to_vector();
}

// Whether output coordinate d (its shift or its scale) differs between two made_outputs, in
// any row. Exact comparison: a masked path contributes exactly nothing.
bool coordinate_changed(const std::vector<double>& a, const std::vector<double>& b, int64_t rows,
                        int64_t dim, int64_t d) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t half = 0; half < 2; ++half) {
      int64_t i = r * 2 * dim + half * dim + d;
      if (a[i] != b[i]) return true;
    }
  return false;
}

// t (R, D) with 1 added to column j.
Tensor bump_column(const Tensor& t, int64_t j) {
  std::vector<double> values = t.to_vector();
  for (int64_t r = 0; r < t.dim(0); ++r) values[r * t.dim(1) + j] += 1.0;
  return f64(values, t.shape());
}

}  // namespace

TEST_CASE("Flows: gradients match finite differences (F64)", "[nn][flows][grad]") {
  Rng rng(1);
  SECTION("MaskedLinear") {
    Tensor mask = f64({1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0}, {4, 3});
    MaskedLinear layer(3, 4, mask, rng);
    require_module_gradcheck(layer, [&](const std::vector<Variable>& v) { return layer.forward(v[0]); },
                 {random_tensor({5, 3}, 11)});
  }
  SECTION("MADE: shift and scale") {
    MADE made(3, 8, 4, rng);
    require_module_gradcheck(made,
                 [&](const std::vector<Variable>& v) {
                   ShiftScale out = made.forward(v[0], v[1]);
                   return concat({out.shift, out.scale}, 1);
                 },
                 {random_tensor({5, 3}, 12), random_tensor({5, 4}, 13)});
  }
  SECTION("MAF.log_prob with three blocks") {
    MAF maf(3, 4, rng, /*blocks=*/3, /*hidden=*/8);
    require_module_gradcheck(maf, [&](const std::vector<Variable>& v) { return maf.log_prob(v[0], v[1]); },
                 {random_tensor({5, 3}, 14), random_tensor({5, 4}, 15)});
  }
}

TEST_CASE("MaskedLinear: masked weights get no gradient", "[nn][flows]") {
  Rng rng(2);
  MaskedLinear layer(2, 2, f64({1, 0, 1, 1}, {2, 2}), rng);
  sum_all(layer.forward(Variable(random_tensor({3, 2}, 21, DType::F32)))).backward();
  std::vector<double> dweight = layer.weight.grad().to_vector();
  REQUIRE(dweight[1] == 0.0);
  REQUIRE(dweight[0] != 0.0);
}

TEST_CASE("MADE: output d depends exactly on x_<d (and the context for d > 0)", "[nn][flows]") {
  const int64_t R = 5, D = 4, C = 3;
  Rng rng(3);
  MADE made(D, 16, C, rng);
  made.to(DType::F64);
  Tensor x = random_tensor({R, D}, 31), context = random_tensor({R, C}, 32);
  std::vector<double> base = made_outputs(made, x, context);

  for (int64_t j = 0; j < D; ++j) {
    std::vector<double> bumped = made_outputs(made, bump_column(x, j), context);
    for (int64_t d = 0; d < D; ++d) {
      INFO("input coordinate " << j << ", output coordinate " << d);
      // j >= d: masked out, bit-for-bit unchanged; j < d: a live path, so it must move.
      REQUIRE(coordinate_changed(base, bumped, R, D, d) == (j < d));
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    std::vector<double> bumped = made_outputs(made, x, bump_column(context, c));
    for (int64_t d = 0; d < D; ++d) {
      INFO("context feature " << c << ", output coordinate " << d);
      REQUIRE(coordinate_changed(base, bumped, R, D, d) == (d > 0));
    }
  }
}

TEST_CASE("MAF: the density integrates to 1 over a 2-D grid", "[nn][flows]") {
  const int64_t C = 3;
  Rng rng(4);
  MAF maf(2, C, rng, /*blocks=*/4, /*hidden=*/16);
  maf.to(DType::F64);
  // Shrink the weights so the warping stays mild and the mass sits well inside the grid.
  for (Variable& p : maf.parameters()) p.set_value(ops::scale(p.value(), 0.5));

  const double lo = -8.0, step = 0.05;
  const int64_t n = 321;  // lo + step·(n − 1) = 8
  std::vector<double> grid, context;
  std::vector<double> c = random_tensor({C}, 41).to_vector();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      grid.push_back(lo + step * double(i));
      grid.push_back(lo + step * double(k));
      context.insert(context.end(), c.begin(), c.end());
    }
  Variable log_p =
      maf.log_prob(Variable(f64(grid, {n * n, 2})), Variable(f64(context, {n * n, C})));
  double mass = 0.0;
  for (double v : log_p.value().to_vector()) mass += std::exp(v);
  mass *= step * step;
  REQUIRE(mass == Approx(1.0).margin(1e-2));
}

TEST_CASE("MAF: the reference configuration has DAC-py's parameter count and names",
          "[nn][flows]") {
  Rng rng(5);
  MAF maf(2, 128, rng);  // 4 blocks, hidden 128, context 128 (reference doc §3.4)
  REQUIRE(maf.parameter_count() == 4 * 33796);
  auto named = maf.named_parameters();
  REQUIRE(named.front().first == "blocks.0.input.weight");
  REQUIRE(named.back().first == "blocks.3.output.bias");
}

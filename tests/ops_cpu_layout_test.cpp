// Forward values of the layout half of tensor/ops.h (permute, transpose, broadcast_to, sum_to,
// concat, slice, index_select, index_add, combine_rows) against hand-computed tensors, their range errors,
// and one fused Adam / AdamW update against a scalar re-derivation (steps 1 and 2).
#include <catch2/catch.hpp>

#include <cmath>

#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using ncl::test::f64;
using ncl::test::i32;
using ncl::test::require_close;

namespace {
// x (2, 3, 4) with x[i, j, k] = 100 i + 10 j + k: every value names its own index.
Tensor indexed() {
  std::vector<double> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) v.push_back(100 * i + 10 * j + k);
  return f64(v, {2, 3, 4});
}
}  // namespace

TEST_CASE("permute and transpose move every element to its new index", "[tensor]") {
  Tensor x = indexed();
  Tensor p = ops::permute(x, {2, 0, 1});  // out[k, i, j] = x[i, j, k]
  REQUIRE(p.shape() == Shape{4, 2, 3});
  std::vector<double> expected;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) expected.push_back(100 * i + 10 * j + k);
  CHECK(p.to_vector() == expected);
  CHECK(ops::permute(x, {-1, 0, 1}).to_vector() == expected);  // negative axes

  Tensor t = ops::transpose(x, 0, -1);  // out[k, j, i]
  REQUIRE(t.shape() == Shape{4, 3, 2});
  expected.clear();
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) expected.push_back(100 * i + 10 * j + k);
  CHECK(t.to_vector() == expected);

  CHECK_THROWS_AS(ops::permute(x, {0, 1}), Error);
  CHECK_THROWS_AS(ops::permute(x, {0, 1, 1}), Error);
}

TEST_CASE("broadcast_to repeats size-1 and new axes; sum_to is its adjoint", "[tensor]") {
  Tensor col = f64({1, 2, 3}, {3, 1});
  Tensor b = ops::broadcast_to(col, {2, 3, 4});  // out[i, j, k] = col[j]
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 1; j <= 3; ++j)
      for (int k = 0; k < 4; ++k) expected.push_back(j);
  CHECK(b.to_vector() == expected);
  CHECK(ops::broadcast_to(f64({7, 8}, {2}), {3, 2}).to_vector() ==
        std::vector<double>{7, 8, 7, 8, 7, 8});
  CHECK(ops::broadcast_to(f64({4}, {}), {2, 2}).to_vector() == std::vector<double>{4, 4, 4, 4});
  CHECK_THROWS_AS(ops::broadcast_to(f64({1, 2, 3}, {3}), {2, 4}), Error);
  CHECK_THROWS_AS(ops::broadcast_to(Tensor::zeros({2, 3}, DType::F64), {3}), Error);

  Tensor x = indexed();
  // (2, 3, 4) -> (3, 1): sum over i and k of 100 i + 10 j + k = 4·100 + 8·10 j + 2·6.
  require_close(ops::sum_to(x, {3, 1}), f64({412, 492, 572}, {3, 1}), 0, 0);
  // (2, 3, 4) -> (2, 1, 4): sum over j = 300 i + 30 + 3 k.
  require_close(ops::sum_to(x, {2, 1, 4}),
                f64({30, 33, 36, 39, 330, 333, 336, 339}, {2, 1, 4}), 0, 0);
  // (2, 3, 4) -> (): Σ 100 i = 100·12, Σ 10 j = 10·3·8, Σ k = 6·6.
  require_close(ops::sum_to(x, {}), f64({100 * 12 + 10 * 3 * 8 + 6 * 6}, {}), 0, 0);
  CHECK(ops::sum_to(x, {2, 3, 4}).shares_storage_with(x));  // nothing to sum
  CHECK_THROWS_AS(ops::sum_to(x, {2, 4}), Error);
}

TEST_CASE("concat and slice", "[tensor]") {
  Tensor a = f64({1, 2, 3, 4}, {2, 1, 2}), b = f64({5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 2});
  Tensor c = ops::concat({a, b}, 1);
  REQUIRE(c.shape() == Shape{2, 3, 2});
  CHECK(c.to_vector() == std::vector<double>{1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12});
  CHECK(ops::concat({a, a}, -1).to_vector() == std::vector<double>{1, 2, 1, 2, 3, 4, 3, 4});
  CHECK_THROWS_AS(ops::concat({a, b}, 2), Error);  // differ off the axis
  CHECK_THROWS_AS(ops::concat({}, 0), Error);

  Tensor x = indexed();
  Tensor s = ops::slice(x, 1, 1, 3);
  REQUIRE(s.shape() == Shape{2, 2, 4});
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 1; j < 3; ++j)
      for (int k = 0; k < 4; ++k) expected.push_back(100 * i + 10 * j + k);
  CHECK(s.to_vector() == expected);
  CHECK(ops::slice(x, -1, 3, 4).to_vector() == std::vector<double>{3, 13, 23, 103, 113, 123});
  CHECK(ops::slice(x, 0, 1, 1).numel() == 0);
  CHECK_THROWS_AS(ops::slice(x, 1, 2, 4), Error);
  CHECK_THROWS_AS(ops::slice(x, 1, 2, 1), Error);
  CHECK_THROWS_AS(ops::slice(x, 1, -1, 2), Error);
}

TEST_CASE("index_select gathers rows; index_add scatter-adds them", "[tensor]") {
  Tensor x = f64({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  Tensor g = ops::index_select(x, i32({3, 0, 3}, {3}));
  REQUIRE(g.shape() == Shape{3, 2});
  CHECK(g.to_vector() == std::vector<double>{7, 8, 1, 2, 7, 8});
  // Higher-rank rows: x (2, 2, 2) picks whole (2, 2) blocks.
  CHECK(ops::index_select(x.reshape({2, 2, 2}), i32({1}, {1})).to_vector() ==
        std::vector<double>{5, 6, 7, 8});
  CHECK_THROWS_WITH(ops::index_select(x, i32({0, 4}, {2})), Catch::Matchers::Contains("index 4"));
  CHECK_THROWS_AS(ops::index_select(x, i32({-1}, {1})), Error);
  CHECK_THROWS_AS(ops::index_select(x, f64({0}, {1})), Error);

  Tensor src = f64({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor sum = ops::index_add(src, i32({1, 0, 1}, {3}), 3);
  REQUIRE(sum.shape() == Shape{3, 2});
  CHECK(sum.to_vector() == std::vector<double>{3, 4, 6, 8, 0, 0});  // row 2 receives nothing
  CHECK_THROWS_WITH(ops::index_add(src, i32({0, 3, 1}, {3}), 3),
                    Catch::Matchers::Contains("out of range"));
  CHECK_THROWS_AS(ops::index_add(src, i32({0, -1, 1}, {3}), 3), Error);
  CHECK_THROWS_AS(ops::index_add(src, i32({0, 1}, {2}), 3), Error);  // one index per row
}

TEST_CASE("combine_rows applies a sparse row map and its transpose", "[tensor]") {
  Tensor x = f64({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  RowMapBuilder b;  // M (3 × 4): {2·x3 − x0}, {}, {x1 + x1}
  b.add(3, 2.0), b.add(0, -1.0), b.end_row();
  b.end_row();
  b.add(1), b.add(1), b.end_row();
  RowMap m = b.build(4, DType::F64);
  REQUIRE(m.rows == 3);
  CHECK(m.entries() == 4);
  Tensor y = ops::combine_rows(x, m);
  REQUIRE(y.shape() == Shape{3, 2});
  CHECK(y.to_vector() == std::vector<double>{13, 14, 0, 0, 6, 8});
  // Mᵀ (4 × 3) applied to y's shape of rows: column c of M gathers back.
  Tensor t = ops::combine_rows(f64({1, 10, 100, 1000, 5, 50}, {3, 2}), m, true);
  CHECK(t.to_vector() == std::vector<double>{-1, -10, 10, 100, 0, 0, 2, 20});
  CHECK_THROWS_WITH(ops::combine_rows(x.reshape({2, 4}), m), Catch::Matchers::Contains("4 rows"));
  CHECK_THROWS_WITH(ops::combine_rows(x.to(DType::F32), m), Catch::Matchers::Contains("map is"));
  RowMapBuilder bad;
  bad.add(4), bad.end_row();
  CHECK_THROWS_WITH(bad.build(4), Catch::Matchers::Contains("column 4 is out of range"));
}

namespace {
// One Adam step written out per scalar, straight from Kingma & Ba (and Loshchilov & Hutter
// for the decoupled decay), as the reference for the fused kernel.
void reference_adam(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                    std::vector<double>& v, const AdamArgs& a) {
  for (size_t i = 0; i < p.size(); ++i) {
    double grad = g[i];
    if (a.decoupled) p[i] = p[i] * (1 - a.lr * a.weight_decay);
    else grad = grad + a.weight_decay * p[i];
    m[i] = a.beta1 * m[i] + (1 - a.beta1) * grad;
    v[i] = a.beta2 * v[i] + (1 - a.beta2) * grad * grad;
    double m_hat = m[i] / (1 - std::pow(a.beta1, double(a.step)));
    double v_hat = v[i] / (1 - std::pow(a.beta2, double(a.step)));
    p[i] -= a.lr * m_hat / (std::sqrt(v_hat) + a.eps);
  }
}
}  // namespace

TEST_CASE("adam_step: coupled L2 and decoupled AdamW, steps 1 and 2", "[tensor]") {
  for (bool decoupled : {false, true})
    DYNAMIC_SECTION((decoupled ? "AdamW" : "Adam with L2")) {
      AdamArgs args;
      args.lr = 0.1, args.weight_decay = 0.01, args.decoupled = decoupled;
      std::vector<double> p{1.0, -2.0, 0.5}, m(3, 0.0), v(3, 0.0);
      const std::vector<double> g1{0.5, -0.1, 0.0}, g2{-0.25, 0.3, 2.0};
      Tensor param = f64(p, {3}), mt = f64(m, {3}), vt = f64(v, {3});

      args.step = 1;
      ops::adam_step(param, f64(g1, {3}), mt, vt, args);
      reference_adam(p, g1, m, v, args);
      require_close(param, f64(p, {3}), 1e-14, 1e-15);
      require_close(mt, f64(m, {3}), 1e-14, 1e-15);
      require_close(vt, f64(v, {3}), 1e-14, 1e-15);
      // Step 1 by hand: m̂ = g', v̂ = g'², so p moves by lr·g'/(|g'| + eps) ≈ lr·sign(g').
      // Element 0, Adam: g' = 0.5 + 0.01·1 = 0.51 -> 1 - 0.1·0.51/(0.51 + 1e-8).
      // Element 0, AdamW: p = 1·(1 - 0.001) = 0.999, g' = 0.5 -> 0.999 - 0.1·0.5/(0.5 + 1e-8).
      double hand = decoupled ? 0.999 - 0.1 * 0.5 / (0.5 + 1e-8) : 1 - 0.1 * 0.51 / (0.51 + 1e-8);
      CHECK(param.to_vector()[0] == Approx(hand).epsilon(1e-14));

      args.step = 2;
      ops::adam_step(param, f64(g2, {3}), mt, vt, args);
      reference_adam(p, g2, m, v, args);
      require_close(param, f64(p, {3}), 1e-14, 1e-15);
      require_close(mt, f64(m, {3}), 1e-14, 1e-15);
      require_close(vt, f64(v, {3}), 1e-14, 1e-15);
    }
  Tensor p = Tensor::zeros({3}, DType::F64), m = Tensor::zeros({2}, DType::F64);
  CHECK_THROWS_AS(ops::adam_step(p, p, m, m, AdamArgs{}), Error);
}

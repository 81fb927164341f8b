// Forward values of differentiable functions where gradcheck proves nothing: a wrong constant
// or a wrong broadcast can still have a matching gradient. Covers numpy broadcasting in the
// binary functions, the composites (prelu, bce_with_logits, gaussian_log_density,
// reparameterize) against their textbook formulas, and max's gradient on ties.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <functional>
#include <numbers>

#include "autograd/functions.h"
#include "tests/helpers.h"

using namespace ncl;
using ncl::test::f64;
using ncl::test::i32;
using ncl::test::random_tensor;
using ncl::test::require_close;

TEST_CASE("binary functions broadcast like numpy, in either operand order", "[autograd]") {
  // a (3, 1, 2) with b (4, 1) -> (3, 4, 2): out[i, j, k] = a[i, 0, k] (op) b[j, 0].
  Tensor ta = random_tensor({3, 1, 2}, 1), tb = random_tensor({4, 1}, 2, DType::F64, 0.5, 2);
  std::vector<double> av = ta.to_vector(), bv = tb.to_vector();
  Variable a(ta), b(tb);
  auto expected = [&](auto op, bool swapped) {
    std::vector<double> out;
    for (size_t i = 0; i < 3; ++i)
      for (size_t j = 0; j < 4; ++j)
        for (size_t k = 0; k < 2; ++k)
          out.push_back(swapped ? op(bv[j], av[i * 2 + k]) : op(av[i * 2 + k], bv[j]));
    return f64(out, {3, 4, 2});
  };
  require_close((a + b).value(), expected(std::plus<>(), false), 1e-15, 0);
  require_close((a - b).value(), expected(std::minus<>(), false), 1e-15, 0);
  require_close((b - a).value(), expected(std::minus<>(), true), 1e-15, 0);
  require_close((a * b).value(), expected(std::multiplies<>(), false), 1e-15, 0);
  require_close((a / b).value(), expected(std::divides<>(), false), 1e-15, 0);
  require_close((b / a).value(), expected(std::divides<>(), true), 1e-15, 0);
  CHECK_THROWS_AS(a + Variable(Tensor::zeros({3}, DType::F64)), Error);  // (3, 1, 2) vs (3)
}

TEST_CASE("composite functions match their formulas", "[autograd]") {
  SECTION("prelu: x if x > 0 else slope·x, shared and per channel") {
    Variable x(f64({-2, 3, -0.5, 1, -1, -4}, {2, 3}));
    require_close(prelu(x, Variable(f64({0.1}, {1}))).value(),
                  f64({-0.2, 3, -0.05, 1, -0.1, -0.4}, {2, 3}), 1e-15, 1e-15);
    require_close(prelu(x, Variable(f64({0.1, 0.2, 0.3}, {3}))).value(),
                  f64({-0.2, 3, -0.15, 1, -0.2, -1.2}, {2, 3}), 1e-15, 1e-15);
    CHECK_THROWS_AS(prelu(x, Variable(f64({0.1, 0.2}, {2}))), Error);
  }
  SECTION("bce_with_logits = -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)), also at +-100") {
    std::vector<double> x{-3, -0.5, 0, 2, 100, -100}, t{0, 1, 0.5, 0.25, 0, 1}, expected;
    for (size_t i = 0; i < x.size(); ++i) {
      // log sigmoid(x) = -log1p(e^-x) and log(1 - sigmoid(x)) = -x - log1p(e^-x), in a form
      // that stays finite at +-100.
      double log_p = x[i] >= 0 ? -std::log1p(std::exp(-x[i])) : x[i] - std::log1p(std::exp(x[i]));
      double log_q = log_p - x[i];
      expected.push_back(-t[i] * log_p - (1 - t[i]) * log_q);
    }
    Tensor y = bce_with_logits(Variable(f64(x, {6})), Variable(f64(t, {6}))).value();
    require_close(y, f64(expected, {6}), 1e-13, 1e-15);
  }
  SECTION("gaussian_log_density: x (B,N,1,D) against mean, sigma (B,1,K,D) -> (B,N,K)") {
    const int64_t B = 2, N = 3, K = 4, D = 5;
    Tensor x = random_tensor({B, N, 1, D}, 1), mu = random_tensor({B, 1, K, D}, 2);
    Tensor sigma = random_tensor({B, 1, K, D}, 3, DType::F64, 0.5, 1.5);
    std::vector<double> xv = x.to_vector(), mv = mu.to_vector(), sv = sigma.to_vector(), expected;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          double log_density = 0;
          for (int64_t d = 0; d < D; ++d) {
            double xd = xv[size_t((b * N + n) * D + d)];
            double md = mv[size_t((b * K + k) * D + d)], sd = sv[size_t((b * K + k) * D + d)];
            log_density += -0.5 * std::pow((xd - md) / sd, 2) - std::log(sd) -
                           0.5 * std::log(2 * std::numbers::pi);
          }
          expected.push_back(log_density);
        }
    Tensor y = gaussian_log_density(Variable(x), Variable(mu), Variable(sigma)).value();
    require_close(y, f64(expected, {B, N, K}), 1e-13, 1e-14);
  }
  SECTION("gaussian_log_density: the fused layouts equal the composition, values and grads") {
    // (x, mean, sigma shapes): a mixture's components, one Gaussian per group, and leading
    // axes of their own; float64 and float32.
    const std::vector<std::array<Shape, 2>> layouts{
        {Shape{2, 7, 1, 3}, Shape{2, 1, 4, 3}}, {Shape{3, 9, 2}, Shape{3, 1, 2}},
        {Shape{2, 3, 6, 2}, Shape{2, 3, 1, 2}}};
    for (DType dtype : {DType::F64, DType::F32})
      for (const auto& [xs, ps] : layouts) {
        INFO("x " << xs << " mean " << ps << " " << dtype);
        Tensor x = random_tensor(xs, 4, dtype), mu = random_tensor(ps, 5, dtype);
        Tensor sigma = random_tensor(ps, 6, dtype, 0.5, 1.5);
        Variable a(x, true), m(mu, true), s(sigma, true);
        Variable fused = gaussian_log_density(a, m, s);
        Variable b(x, true), m2(mu, true), s2(sigma, true);
        Variable z = (b - m2) / s2;
        Variable composed = add_scalar(sum(scale(square(z), -0.5) - log(s2), -1),
                                       -0.5 * double(xs[-1]) * std::log(2.0 * std::numbers::pi));
        REQUIRE(fused.shape() == composed.shape());
        const double tol = dtype == DType::F64 ? 1e-13 : 2e-6;
        require_close(fused.value(), composed.value(), tol, tol);
        Tensor seed = random_tensor(fused.shape(), 7, dtype);
        fused.backward(seed);
        composed.backward(seed);
        require_close(a.grad(), b.grad(), tol, tol);
        require_close(m.grad(), m2.grad(), tol, tol);
        require_close(s.grad(), s2.grad(), tol, tol);
      }
  }
  SECTION("reparameterize = mean + sigma·eps") {
    Tensor y = reparameterize(Variable(f64({1, 2}, {2})), Variable(f64({0.5, 3}, {2})),
                              f64({2, -1}, {2}))
                   .value();
    require_close(y, f64({2, -1}, {2}), 0, 0);
  }
}

TEST_CASE("max sends the gradient to the first maximum only", "[autograd]") {
  Variable x(f64({1, 5, 5, 2, 7, 7, 7, 0}, {2, 4}), true);
  max(x, 1).backward(f64({10, 20}, {2}));
  require_close(x.grad(), f64({0, 10, 0, 0, 20, 0, 0, 0}, {2, 4}), 0, 0);
}

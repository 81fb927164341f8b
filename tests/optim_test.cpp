// Optimizer: Adam and AdamW against hand-computed steps, clipping, LR schedules, and a small
// MLP that must fit a toy regression.
#include <catch2/catch.hpp>
#include <cmath>

#include "autograd/functions.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::nn;
using namespace ncl::test;

namespace {
// Adam by hand for one scalar, following the textbook update.
struct ScalarAdam {
  double p, m = 0, v = 0;
  int t = 0;
  void step(double g, const AdamOptions& o) {
    ++t;
    if (o.decoupled) p -= o.lr * o.weight_decay * p;
    else g += o.weight_decay * p;
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g * g;
    double mhat = m / (1 - std::pow(o.beta1, t)), vhat = v / (1 - std::pow(o.beta2, t));
    p -= o.lr * mhat / (std::sqrt(vhat) + o.eps);
  }
};
}  // namespace

TEST_CASE("Adam: two steps match a hand computation (Adam with L2, and AdamW)", "[nn][optim]") {
  for (bool decoupled : {false, true}) {
    DYNAMIC_SECTION("decoupled=" << decoupled) {
      AdamOptions o;
      o.lr = 0.1;
      o.weight_decay = 0.05;
      o.decoupled = decoupled;
      std::vector<double> start = {1.0, -2.0, 0.5};
      std::vector<std::vector<double>> grads = {{0.5, 0.1, -0.3}, {-0.2, 0.4, 0.05}};
      Variable p(Tensor::from_vector(start, {3}, DType::F64), true);
      Adam adam({{"p", p}}, o);
      std::vector<ScalarAdam> ref;
      for (double s : start) ref.push_back({s});
      for (const auto& g : grads) {
        p.set_grad(Tensor::from_vector(g, {3}, DType::F64));
        adam.step();
        for (size_t i = 0; i < 3; ++i) ref[i].step(g[i], o);
      }
      std::vector<double> got = p.value().to_vector();
      for (size_t i = 0; i < 3; ++i) REQUIRE(got[i] == Approx(ref[i].p).epsilon(1e-14));
      // And the first step is the familiar "lr · sign(g)" move of Adam without decay.
      REQUIRE(adam.steps_taken() == 2);
    }
  }
}

TEST_CASE("Adam in float32: the vectorized update rounds as the scalar formula does",
          "[nn][optim]") {
  // 1003 elements: vector blocks and a scalar tail; 70001 on 2 threads: split between them.
  const int threads = ops::cpu_threads();
  for (int64_t n : {int64_t(1003), int64_t(70001)}) {
    for (bool decoupled : {false, true}) {
      DYNAMIC_SECTION("n=" << n << " decoupled=" << decoupled) {
        ops::set_cpu_threads(n > 50000 ? 2 : 1);
        AdamOptions o;
        o.lr = 0.01;
        o.weight_decay = 0.1;
        o.decoupled = decoupled;
        const size_t count = static_cast<size_t>(n);
        std::vector<float> p(count), m(count, 0.0f), v(count, 0.0f);
        for (int64_t i = 0; i < n; ++i) p[size_t(i)] = std::sin(0.37f * float(i));
        Variable param(Tensor::from_vector(std::vector<double>(p.begin(), p.end()), {n}), true);
        Adam adam({{"p", param}}, o);
        const float lr = float(o.lr), b1 = float(o.beta1), b2 = float(o.beta2);
        const float wd = float(o.weight_decay), eps = float(o.eps);
        for (int t = 1; t <= 3; ++t) {
          std::vector<double> g(count);
          for (int64_t i = 0; i < n; ++i) g[size_t(i)] = std::cos(0.11 * double(i * t)) * 1e-2;
          param.set_grad(Tensor::from_vector(g, {n}));
          adam.step();
          const float inv_c1 = float(1.0 / (1.0 - std::pow(o.beta1, t)));
          const float inv_sqrt_c2 = float(1.0 / std::sqrt(1.0 - std::pow(o.beta2, t)));
          for (size_t i = 0; i < count; ++i) {
            float gi = float(g[i]);
            if (decoupled) p[i] -= (lr * wd) * p[i];
            else gi = gi + wd * p[i];
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] -= lr * (m[i] * inv_c1) / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
          }
        }
        ops::set_cpu_threads(threads);
        std::vector<double> got = param.value().to_vector();
        int64_t differ = 0;
        for (size_t i = 0; i < count; ++i) differ += float(got[i]) != p[i];
        REQUIRE(differ == 0);
      }
    }
  }
}

TEST_CASE("Adam: restart() continues as a newly built optimiser would", "[nn][optim]") {
  AdamOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.01;
  Variable p(Tensor::from_vector({1.0, -2.0}, {2}, DType::F64), true);
  Adam adam({{"p", p}}, o);
  for (double g : {0.5, -0.25}) {
    p.set_grad(Tensor::from_vector({g, g}, {2}, DType::F64));
    adam.step();
  }
  adam.restart();
  REQUIRE(adam.steps_taken() == 0);
  Variable fresh_p(p.value().clone(), true);
  Adam fresh({{"p", fresh_p}}, o);
  for (Variable* v : {&p, &fresh_p}) v->set_grad(Tensor::from_vector({0.3, -0.7}, {2}, DType::F64));
  adam.step();
  fresh.step();
  REQUIRE(p.value().to_vector() == fresh_p.value().to_vector());
}

TEST_CASE("Adam: parameters without a gradient are left alone", "[nn][optim]") {
  Variable a(Tensor::full({2}, 1.0, DType::F64), true), b(Tensor::full({2}, 1.0, DType::F64), true);
  Adam adam({{"a", a}, {"b", b}}, AdamOptions{});
  a.set_grad(Tensor::full({2}, 1.0, DType::F64));
  adam.step();
  REQUIRE(a.value().to_vector()[0] == Approx(1.0 - 1e-3));
  REQUIRE(b.value().to_vector()[0] == 1.0);
}

TEST_CASE("clip_grad_norm rescales to the maximum norm and reports the norm", "[nn][optim]") {
  Variable a(Tensor::from_vector({3, 0}, {2}, DType::F64), true);
  Variable b(Tensor::from_vector({4}, {1}, DType::F64), true);
  a.set_grad(Tensor::from_vector({3, 0}, {2}, DType::F64));
  b.set_grad(Tensor::from_vector({4}, {1}, DType::F64));
  REQUIRE(clip_grad_norm({a, b}, 10.0) == Approx(5.0));  // below the limit: unchanged
  REQUIRE(a.grad().to_vector()[0] == 3.0);
  REQUIRE(clip_grad_norm({a, b}, 1.0) == Approx(5.0));
  REQUIRE(a.grad().to_vector()[0] == Approx(3.0 / (5.0 + 1e-6)));
  REQUIRE(b.grad().to_vector()[0] == Approx(4.0 / (5.0 + 1e-6)));
}

TEST_CASE("LR schedules: step and cosine", "[nn][optim]") {
  StepSchedule step{1e-3, {35000}, 0.1};
  REQUIRE(step.lr(0) == 1e-3);
  REQUIRE(step.lr(34999) == 1e-3);
  REQUIRE(step.lr(35000) == Approx(1e-4));
  CosineSchedule cosine{5e-4, 100, 0.0};
  REQUIRE(cosine.lr(0) == Approx(5e-4));
  REQUIRE(cosine.lr(50) == Approx(2.5e-4));
  REQUIRE(cosine.lr(100) == 0.0);
  REQUIRE(cosine.lr(200) == 0.0);
}

TEST_CASE("A small MLP fits a toy regression with Adam", "[nn][optim]") {
  Rng rng(7);
  MLP mlp({1, 32, 32, 1}, Activation::ReLU, rng);
  Adam adam(mlp.named_parameters(), AdamOptions{.lr = 1e-2});
  Tensor x = rng.uniform_tensor({64, 1}, -3, 3);
  std::vector<double> xs = x.to_vector(), ys;
  for (double v : xs) ys.push_back(std::sin(v));
  Variable target(Tensor::from_vector(ys, {64, 1}));
  auto loss_now = [&] { return mean_all(square(mlp.forward(Variable(x)) - target)); };
  double initial = loss_now().value().item();
  for (int i = 0; i < 600; ++i) {
    adam.zero_grad();
    Variable loss = loss_now();
    loss.backward();
    adam.step();
  }
  double final_loss = loss_now().value().item();
  INFO("MSE from " << initial << " to " << final_loss);
  REQUIRE(final_loss < 0.01);
  REQUIRE(final_loss < initial / 20);
}

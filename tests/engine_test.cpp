// The backward engine (autograd/engine.cpp, variable.cpp): accumulation, when a graph is and
// is not built, detach and scale_grad, the errors for a released graph and a missing seed,
// that intermediates keep no gradient, that 100000-op chains neither recurse in backward nor
// in destruction, that leaf gradients never alias one another, and GradientSink (concurrent
// backward passes over shared leaves).
#include <catch2/catch.hpp>
#include <pthread.h>

#include <cmath>
#include <exception>
#include <thread>

#include "autograd/functions.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using ncl::test::f64;
using ncl::test::i32;
using Catch::Matchers::Contains;
using ncl::test::random_tensor;
using ncl::test::require_close;

TEST_CASE("engine: a variable used twice accumulates both paths", "[autograd]") {
  // y = x*x + x, dy/dx = 2x + 1.
  Variable x(f64({-1.5, 0.0, 2.0}, {3}), true);
  Variable y = x * x + x;
  y.backward(Tensor::full({3}, 1.0, DType::F64));
  require_close(x.grad(), f64({-2.0, 1.0, 5.0}, {3}), 0, 0);

  // A second backward through a fresh graph adds to the leaf's gradient.
  sum_all(x * x + x).backward();
  require_close(x.grad(), f64({-4.0, 2.0, 10.0}, {3}), 0, 0);
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("engine: every gradient has its leaf's shape and dtype", "[autograd]") {
  Variable a(random_tensor({2, 3, 5}, 1), true), b(random_tensor({5}, 2), true);
  Variable w(random_tensor({5, 4}, 3), true);
  Variable loss = mean_all(matmul(a * b, w));
  loss.backward();
  for (const Variable& v : {a, b, w}) {
    REQUIRE(v.grad().defined());
    CHECK(v.grad().shape() == v.shape());
    CHECK(v.grad().dtype() == DType::F64);
  }
}

TEST_CASE("engine: no graph without grad mode or without a leaf that asks", "[autograd]") {
  Variable x(random_tensor({3}, 1), true), c(random_tensor({3}, 2), false);
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    Variable y = exp(x) * x;
    CHECK(y.node() == nullptr);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK(grad_enabled());
  Variable z = exp(c) * c;
  CHECK(z.node() == nullptr);
  CHECK_FALSE(z.requires_grad());
  CHECK_THROWS_WITH(sum_all(z).backward(), Contains("does not require a gradient"));

  Variable mixed = x * c;  // one input asks: a node, and c gets nothing
  REQUIRE(mixed.node() != nullptr);
  CHECK(mixed.node()->needs_grad == std::vector<bool>{true, false});
  sum_all(mixed).backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("engine: detach stops gradients, scale_grad scales them", "[autograd]") {
  Variable x(f64({1.0, 2.0}, {2}), true);
  // y = x·detach(x): the detached factor is a constant, so dy/dx = x, not 2x.
  Variable d = detach(x);
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  sum_all(x * d).backward();
  require_close(x.grad(), f64({1.0, 2.0}, {2}), 0, 0);

  x.zero_grad();
  Variable s = scale_grad(x, -0.25);
  require_close(s.value(), x.value(), 0, 0);  // identity forward
  sum_all(s * 3.0).backward();
  require_close(x.grad(), f64({-0.75, -0.75}, {2}), 0, 0);

  x.zero_grad();
  sum_all(scale_grad(x, 0.0) + x).backward();  // s = 0 stops this path only
  require_close(x.grad(), f64({1.0, 1.0}, {2}), 0, 0);
}

TEST_CASE("engine: misuse is reported", "[autograd]") {
  Variable x(random_tensor({2, 3}, 1), true);
  SECTION("backward twice through one graph") {
    Variable loss = sum_all(exp(x));
    loss.backward();
    CHECK_THROWS_AS(loss.backward(), Error);
    CHECK_THROWS_WITH(loss.backward(), Contains("released"));
  }
  SECTION("a non-scalar output needs a seed") {
    Variable y = exp(x);
    CHECK_THROWS_WITH(y.backward(), Contains("seed"));
    CHECK_THROWS_AS(y.backward(Tensor::zeros({3, 2}, DType::F64)), Error);  // wrong seed shape
    CHECK_NOTHROW(y.backward(Tensor::full({2, 3}, 1.0, DType::F64)));
  }
  SECTION("a backward closure returning the wrong shape") {
    Variable bad = make_result("bad", x.value(), {x},
                               [](const Tensor&, const std::vector<bool>&) {
                                 return std::vector<Tensor>{Tensor::zeros({6}, DType::F64)};
                               });
    CHECK_THROWS_WITH(sum_all(bad).backward(), Contains("bad"));
  }
}

TEST_CASE("engine: intermediate gradients are not kept", "[autograd]") {
  Variable x(random_tensor({4}, 1), true);
  Variable h = exp(x);
  Variable g = h * h;
  Variable loss = sum_all(g);
  loss.backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(h.grad().defined());
  CHECK_FALSE(g.grad().defined());
  CHECK_FALSE(loss.grad().defined());
}

namespace {
// Runs fn on a thread with a 1 MiB stack, an eighth of the usual main-thread stack: code that
// recurses once per graph vertex crashes there well before 100000 vertices, so passing proves
// the traversal is iterative rather than lucky. Exceptions are carried back to this thread.
template <class Fn>
void run_on_small_stack(Fn fn) {
  struct Job {
    Fn fn;
    std::exception_ptr error;
  } job{std::move(fn), nullptr};
  auto body = [](void* arg) -> void* {
    auto* j = static_cast<Job*>(arg);
    try {
      j->fn();
    } catch (...) {
      j->error = std::current_exception();
    }
    return nullptr;
  };
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t(1) << 20);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, body, &job);
  pthread_attr_destroy(&attr);
  REQUIRE(rc == 0);
  pthread_join(thread, nullptr);
  if (job.error) std::rethrow_exception(job.error);
}
}  // namespace

TEST_CASE("engine: a 100000-op chain neither recurses in backward nor in destruction",
          "[autograd]") {
  const int depth = 100000;
  Variable x(f64({0.5}, {1}), true);
  SECTION("backward, then destruction") {
    Tensor y_value;
    run_on_small_stack([&] {
      Variable y = x;
      for (int i = 0; i < depth; ++i) y = add_scalar(y, 1e-5);
      sum_all(y).backward();
      y_value = y.value();
    });
    require_close(x.grad(), f64({1.0}, {1}), 0, 0);
    require_close(y_value, f64({0.5 + depth * 1e-5}, {1}), 1e-9, 0);
  }
  SECTION("destruction of a graph that never ran backward") {
    bool required_grad = false;
    run_on_small_stack([&] {
      Variable y = x;
      for (int i = 0; i < depth; ++i) y = scale(y, 1.0);
      required_grad = y.requires_grad();
    });  // the whole chain was freed when y went out of scope, on the small stack
    CHECK(required_grad);
  }
  SECTION("destruction of a chain whose ops use their input twice") {
    run_on_small_stack([&] {
      Variable y = x;
      for (int i = 0; i < depth; ++i) y = y * y;  // each node holds its input on two edges
    });
    SUCCEED("no stack overflow");
  }
  SECTION("a graph shared between two outputs survives the first one's destruction") {
    Variable h = exp(x);
    Variable kept = h * 2.0;
    { Variable dropped = h + 1.0; }
    sum_all(kept).backward();
    require_close(x.grad(), f64({2 * std::exp(0.5)}, {1}), 1e-15, 0);
  }
}

TEST_CASE("engine: leaf gradients do not alias each other", "[autograd]") {
  // y = a + b sends the same dy to both inputs; each leaf must receive its own copy, so an
  // optimizer that scales one gradient in place cannot change the other.
  Variable a(f64({1, 2, 3}, {3}), true), b(f64({4, 5, 6}, {3}), true);
  Tensor seed = f64({1, 1, 1}, {3});
  (a + b).backward(seed);
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK_FALSE(a.grad().shares_storage_with(b.grad()));
  CHECK_FALSE(a.grad().shares_storage_with(seed));
  Tensor ga = a.grad();
  ga.data<double>()[0] = 100;
  CHECK(b.grad().to_vector() == std::vector<double>{1, 1, 1});
  CHECK(seed.to_vector() == std::vector<double>{1, 1, 1});
}

TEST_CASE("engine: accumulating in place never changes a tensor someone else holds",
          "[autograd]") {
  // The engine adds a second gradient into the first in place when no other Tensor shares
  // it. `held` is returned as a gradient by two nodes and kept here; `fresh` gradients are new.
  Tensor held = f64({1, 2, 3}, {3});
  auto returns = [](const Variable& v, Tensor g) {
    auto backward = [g](const Tensor&, const std::vector<bool>&) { return std::vector<Tensor>{g}; };
    return make_result("returns", v.value().clone(), {v}, backward);
  };
  Variable x(f64({0, 0, 0}, {3}), true);
  Variable h = x * 1.0;  // an intermediate: its gradient is accumulated, then passed on
  (returns(h, held) + returns(h, held)).backward(f64({1, 1, 1}, {3}));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4, 6});
  CHECK(held.to_vector() == std::vector<double>{1, 2, 3});
  x.zero_grad();
  h = x * 1.0;
  Variable fresh = returns(h, f64({10, 20, 30}, {3}));
  (returns(h, held) + returns(h, held) + fresh).backward(f64({1, 1, 1}, {3}));
  CHECK(x.grad().to_vector() == std::vector<double>{12, 24, 36});
  CHECK(held.to_vector() == std::vector<double>{1, 2, 3});
  // A leaf's gradient the caller kept is not changed by the next backward's accumulation.
  Tensor before = x.grad();
  (returns(x, held) + returns(x, held)).backward(f64({1, 1, 1}, {3}));
  CHECK(before.to_vector() == std::vector<double>{12, 24, 36});
  CHECK(x.grad().to_vector() == std::vector<double>{14, 28, 42});
  CHECK(held.to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("engine: a GradientSink holds leaf gradients back until merge()", "[autograd]") {
  // y = Σ w·x with w = [1, 2, 3]: dy/dx = w, so two backward passes into the sink give 2w.
  Variable x(f64({0.5, -1.0, 2.0}, {3}), true);
  Tensor w = f64({1, 2, 3}, {3});
  x.set_grad(f64({10, 10, 10}, {3}));  // an earlier gradient the merge must add to
  GradientSink sink;
  {
    CollectGradients collect(sink);
    sum_all(x * Variable(w)).backward();
    sum_all(x * Variable(w)).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{10, 10, 10});  // untouched so far
  }
  sum_all(x * Variable(w)).backward();  // the guard is gone: straight to the leaf
  CHECK(x.grad().to_vector() == std::vector<double>{11, 12, 13});
  sink.merge();
  CHECK(x.grad().to_vector() == std::vector<double>{13, 16, 19});
  sink.merge();  // emptied by the first merge
  CHECK(x.grad().to_vector() == std::vector<double>{13, 16, 19});
}

TEST_CASE("engine: threads with their own sinks backpropagate through shared leaves at once",
          "[autograd]") {
  // Each thread runs 50 backward passes of a small graph over the same two leaves; merged,
  // the gradients equal 50 × both threads' serial gradients (integers: exact in float64).
  Variable a(f64({1, -2, 3, 0.5}, {2, 2}), true), b(f64({2, 1}, {2, 1}), true);
  auto loss = [&](double scale) { return sum_all(matmul(a, b) * scale + a * a); };
  std::vector<double> ga, gb;
  for (double scale : {1.0, 2.0}) loss(scale).backward();
  ga = a.grad().to_vector(), gb = b.grad().to_vector();
  a.zero_grad(), b.zero_grad();
  GradientSink sinks[2];
  std::exception_ptr errors[2];
  auto work = [&](int t) {
    try {
      CollectGradients collect(sinks[t]);
      for (int i = 0; i < 50; ++i) loss(t + 1.0).backward();
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::thread first(work, 0), second(work, 1);
  first.join(), second.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  CHECK_FALSE(a.grad().defined());
  for (auto& sink : sinks) sink.merge();
  for (size_t i = 0; i < ga.size(); ++i) CHECK(a.grad().to_vector()[i] == 50 * ga[i]);
  for (size_t i = 0; i < gb.size(); ++i) CHECK(b.grad().to_vector()[i] == 50 * gb[i]);
}

TEST_CASE("engine: merge_all adds every sink to its leaves as merges one after another would",
          "[autograd]") {
  // Five leaves of different sizes (one of 40,000 elements: merged alone, split by the add);
  // sink 0 reaches leaves 0-3, sink 1 leaves 1-4 (leaf 4 only there). 2 threads share them.
  std::vector<int64_t> sizes{3, 700, 40000, 5, 64};
  std::vector<Variable> leaves;
  for (size_t i = 0; i < sizes.size(); ++i)
    leaves.emplace_back(random_tensor({sizes[i]}, 10 + i), true);
  auto fill = [&](std::vector<GradientSink>& sinks) {
    for (int s = 0; s < 2; ++s) {
      CollectGradients collect(sinks[size_t(s)]);
      for (size_t i = size_t(s); i < size_t(s) + 4; ++i)
        sum_all(leaves[i] * leaves[i] * double(s + 1)).backward();
    }
  };
  const int threads = ops::cpu_threads();
  ops::set_cpu_threads(2);
  std::vector<GradientSink> one_by_one(2), all(2);
  fill(one_by_one);
  for (GradientSink& sink : one_by_one) sink.merge();
  std::vector<std::vector<double>> expected;
  for (Variable& leaf : leaves) {
    expected.push_back(leaf.grad().to_vector());
    leaf.zero_grad();
  }
  fill(all);
  GradientSink::merge_all(all);
  ops::set_cpu_threads(threads);
  for (size_t i = 0; i < leaves.size(); ++i) {
    INFO("leaf " << i);
    REQUIRE(leaves[i].grad().defined());
    CHECK(leaves[i].grad().to_vector() == expected[i]);
  }
  GradientSink::merge_all(all);  // emptied: nothing added twice
  CHECK(leaves[0].grad().to_vector() == expected[0]);
}

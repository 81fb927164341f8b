// Float64 gradient checks (ncl::gradcheck, default tolerances: central differences, NaN-poisoned
// gradients, a second backward that must double them) for every differentiable function in
// autograd/functions.h, table-driven: one DYNAMIC_SECTION per {name, fn, inputs} case. Last,
// gradcheck itself must reject a wrong gradient and a gradient with unwritten elements.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "autograd/functions.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/helpers.h"

using namespace ncl;
using ncl::test::random_tensor;
using ncl::test::require_gradcheck;

namespace {

struct Case {
  std::string name;
  GradcheckFn fn;
  std::vector<Tensor> inputs;
};
using V = std::vector<Variable>;

// Inputs: values in [-1, 1); positive ones in [0.5, 2); ones at least 0.2 away from 0 (for the
// kinks of relu, elu and prelu, far beyond the 1e-6 step); and distinct ones spaced 0.1 apart
// in a random order (for max, so no two entries are within a step of a tie).
Tensor uni(const Shape& s, uint64_t seed, double lo, double hi) {
  return random_tensor(s, seed, DType::F64, lo, hi);
}
Tensor rnd(const Shape& s, uint64_t seed) { return uni(s, seed, -1.0, 1.0); }
Tensor pos(const Shape& s, uint64_t seed) { return uni(s, seed, 0.5, 2.0); }
Tensor away(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (double& x : v) x = (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.2, 1.0);
  return Tensor::from_vector(v, s, DType::F64);
}
Tensor distinct(const Shape& s, uint64_t seed) {
  std::vector<int64_t> order = Rng(seed).permutation(s.numel());
  std::vector<double> v;
  for (int64_t k : order) v.push_back(0.1 * double(k - s.numel() / 2));
  return Tensor::from_vector(v, s, DType::F64);
}
Tensor i32(const std::vector<double>& v, const Shape& s) {
  return Tensor::from_vector(v, s, DType::I32);
}

void run_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases)
    DYNAMIC_SECTION(c.name) { require_gradcheck(gradcheck(c.fn, c.inputs)); }
}

}  // namespace

TEST_CASE("gradcheck: binary ops under every broadcast", "[grad]") {
  using Fn = Variable (*)(const Variable&, const Variable&);
  struct Op { const char* name; Fn fn; };
  const std::vector<Op> op_list{{"add", ncl::add}, {"sub", ncl::sub}, {"mul", ncl::mul},
                                {"div", ncl::div}};
  struct Shapes { const char* name; Shape a, b; };
  const std::vector<Shapes> shape_list{
      {"same", {2, 3, 5}, {2, 3, 5}},    {"scalar", {2, 3, 5}, {1}},
      {"scalar first", {1}, {2, 3, 5}},  {"row", {2, 3, 5}, {5}},
      {"row first", {5}, {2, 3, 5}},     {"column", {2, 3, 5}, {2, 3, 1}},
      {"numpy", {3, 1, 5}, {4, 1}},      {"numpy first", {4, 1}, {3, 1, 5}},
  };
  std::vector<Case> cases;
  for (const Op& op : op_list)
    for (const Shapes& s : shape_list) {
      Fn fn = op.fn;
      // Divisors stay in [0.5, 2) so 1/b is smooth across the step.
      Tensor b = std::string(op.name) == "div" ? pos(s.b, 2) : rnd(s.b, 2);
      cases.push_back({std::string(op.name) + " " + s.name,
                       [fn](const V& v) { return fn(v[0], v[1]); }, {rnd(s.a, 1), b}});
    }
  run_cases(cases);
}

TEST_CASE("gradcheck: unary and scalar elementwise functions", "[grad]") {
  const Shape s{2, 3, 5};
  run_cases({
      {"neg", [](const V& v) { return ncl::neg(v[0]); }, {rnd(s, 1)}},
      {"operator- (unary)", [](const V& v) { return -v[0]; }, {rnd(s, 1)}},
      {"exp", [](const V& v) { return ncl::exp(v[0]); }, {rnd(s, 2)}},
      {"log", [](const V& v) { return ncl::log(v[0]); }, {pos(s, 3)}},
      {"sqrt", [](const V& v) { return ncl::sqrt(v[0]); }, {pos(s, 4)}},
      {"square", [](const V& v) { return ncl::square(v[0]); }, {rnd(s, 5)}},
      {"relu", [](const V& v) { return ncl::relu(v[0]); }, {away(s, 6)}},
      {"sigmoid", [](const V& v) { return ncl::sigmoid(v[0]); }, {uni(s, 7, -4, 4)}},
      {"tanh", [](const V& v) { return ncl::tanh(v[0]); }, {uni(s, 8, -2, 2)}},
      {"softplus", [](const V& v) { return ncl::softplus(v[0]); }, {uni(s, 9, -4, 4)}},
      {"elu", [](const V& v) { return ncl::elu(v[0]); }, {away(s, 10)}},
      {"prelu, shared slope", [](const V& v) { return ncl::prelu(v[0], v[1]); },
       {away(s, 11), Tensor::from_vector({0.25}, {1}, DType::F64)}},
      {"prelu, per-channel slope", [](const V& v) { return ncl::prelu(v[0], v[1]); },
       {away(s, 12), rnd({5}, 13)}},
      {"scale", [](const V& v) { return ncl::scale(v[0], -1.75); }, {rnd(s, 14)}},
      {"add_scalar", [](const V& v) { return ncl::add_scalar(v[0], 0.5); }, {rnd(s, 15)}},
      {"scalar operators", [](const V& v) { return (2.0 * v[0] - 1.0) / 4.0 + 3.0; },
       {rnd(s, 16)}},
      {"pow_scalar 2.5", [](const V& v) { return ncl::pow_scalar(v[0], 2.5); }, {pos(s, 17)}},
      {"pow_scalar 3 (negative x)", [](const V& v) { return ncl::pow_scalar(v[0], 3.0); },
       {rnd(s, 18)}},
      {"where", [](const V& v) {
         Tensor cond = i32({1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0,
                            1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1}, {2, 3, 5});
         return ncl::where(cond, v[0], v[1]);
       }, {rnd(s, 19), rnd(s, 20)}},
      // Identity both ways only at s = 1; other s deliberately break the forward/backward
      // match (see "gradcheck sees scale_grad's scaling" below and engine_test.cpp).
      {"scale_grad (s = 1)", [](const V& v) { return ncl::scale_grad(v[0], 1.0); }, {rnd(s, 21)}},
  });
}

TEST_CASE("gradcheck: reductions over each axis", "[grad]") {
  const Shape s{2, 3, 5};
  std::vector<Case> cases;
  for (int axis : {0, 1, 2, -1})
    for (bool keepdim : {false, true}) {
      std::string suffix = " axis " + std::to_string(axis) + (keepdim ? " keepdim" : "");
      cases.push_back({"sum" + suffix, [=](const V& v) { return ncl::sum(v[0], axis, keepdim); },
                       {rnd(s, 1)}});
      cases.push_back({"mean" + suffix, [=](const V& v) { return ncl::mean(v[0], axis, keepdim); },
                       {rnd(s, 2)}});
      cases.push_back({"max" + suffix, [=](const V& v) { return ncl::max(v[0], axis, keepdim); },
                       {distinct(s, 3)}});
    }
  cases.push_back({"sum_all", [](const V& v) { return ncl::sum_all(v[0]); }, {rnd(s, 4)}});
  cases.push_back({"mean_all", [](const V& v) { return ncl::mean_all(v[0]); }, {rnd(s, 5)}});
  run_cases(cases);
}

TEST_CASE("gradcheck: matmul", "[grad]") {
  const int64_t B = 2, M = 3, K = 5, N = 4;
  auto mat = [](int64_t rows, int64_t cols, bool t) {
    return t ? Shape{cols, rows} : Shape{rows, cols};
  };
  auto bmat = [](int64_t b, int64_t rows, int64_t cols, bool t) {
    return t ? Shape{b, cols, rows} : Shape{b, rows, cols};
  };
  std::vector<Case> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      std::string flags = std::string(" ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0");
      auto fn = [ta, tb](const V& v) { return ncl::matmul(v[0], v[1], ta, tb); };
      cases.push_back({"2-D" + flags, fn, {rnd(mat(M, K, ta), 1), rnd(mat(K, N, tb), 2)}});
      cases.push_back(
          {"batched" + flags, fn, {rnd(bmat(B, M, K, ta), 3), rnd(bmat(B, K, N, tb), 4)}});
      if (!ta)  // a shared b needs an untransposed a (it folds the batch into rows)
        cases.push_back(
            {"shared 2-D b" + flags, fn, {rnd(bmat(B, M, K, false), 5), rnd(mat(K, N, tb), 6)}});
      auto scaled = [ta, tb](const V& v) { return ncl::matmul(v[0], v[1], ta, tb, -0.37); };
      cases.push_back({"scaled by alpha" + flags, scaled,
                       {rnd(bmat(B, M, K, ta), 7), rnd(bmat(B, K, N, tb), 8)}});
    }
  run_cases(cases);
}

TEST_CASE("gradcheck: linear, with and without bias", "[grad]") {
  const int64_t R = 5, IN = 3, OUT = 4;
  run_cases({{"with bias", [](const V& v) { return ncl::linear(v[0], v[1], v[2]); },
              {rnd({R, IN}, 1), rnd({OUT, IN}, 2), rnd({OUT}, 3)}},
             {"without bias", [](const V& v) { return ncl::linear(v[0], v[1], Variable()); },
              {rnd({R, IN}, 4), rnd({OUT, IN}, 5)}}});
  // The value is x Wᵀ + b exactly as the composed ops give it.
  Tensor x = rnd({R, IN}, 6), w = rnd({OUT, IN}, 7), b = rnd({OUT}, 8);
  Variable composed = ncl::matmul(Variable(x), Variable(w), false, true) + Variable(b);
  ncl::test::require_close(ncl::linear(Variable(x), Variable(w), Variable(b)).value(), composed.value(), 1e-14,
                1e-14);
}

TEST_CASE("gradcheck: attention products on heads in place", "[grad]") {
  const int64_t B = 2, Nq = 3, Nk = 5, D = 6, H = 3;
  run_cases({{"attention_scores", [](const V& v) { return attention_scores(v[0], v[1], H, 0.7); },
              {rnd({B, Nq, D}, 1), rnd({B, Nk, D}, 2)}},
             {"attention_output",
              [](const V& v) { return attention_output(v[0], v[1], v[2], H); },
              {rnd({H * B, Nq, Nk}, 3), rnd({B, Nk, D}, 4), rnd({B, Nq, D}, 5)}}});
}

// The in-place head products equal the composed form: split heads into (H·B, N, Dh) copies
// (reshape, permute), batched matmul, merge back.
TEST_CASE("attention products equal split-heads matmul", "[grad]") {
  const int64_t B = 2, Nq = 4, Nk = 3, D = 8, H = 2, Dh = D / H;
  auto split = [&](const Variable& x) {
    int64_t N = x.dim(1);
    return reshape(permute(reshape(x, {B, N, H, Dh}), {2, 0, 1, 3}), {H * B, N, Dh});
  };
  Variable q(rnd({B, Nq, D}, 6)), k(rnd({B, Nk, D}, 7)), v(rnd({B, Nk, D}, 8));
  Variable scores = attention_scores(q, k, H, 0.5);
  ncl::test::require_close(scores.value(), ncl::matmul(split(q), split(k), false, true, 0.5).value(),
                           1e-14, 1e-14);
  Variable a = softmax(scores);
  Variable merged = reshape(permute(reshape(ncl::matmul(a, split(v)), {H, B, Nq, Dh}), {1, 2, 0, 3}),
                            {B, Nq, D});
  ncl::test::require_close(attention_output(a, v, q, H).value(), (q + merged).value(), 1e-14, 1e-14);
}

TEST_CASE("gradcheck: layout functions", "[grad]") {
  const Shape s{2, 3, 5};
  run_cases({
      {"reshape", [](const V& v) { return ncl::reshape(v[0], {5, 6}); }, {rnd(s, 1)}},
      {"permute", [](const V& v) { return ncl::permute(v[0], {2, 0, 1}); }, {rnd(s, 2)}},
      {"permute, negative axes", [](const V& v) { return ncl::permute(v[0], {-2, -1, 0}); },
       {rnd(s, 3)}},
      {"transpose", [](const V& v) { return ncl::transpose(v[0], 0, 2); }, {rnd(s, 4)}},
      {"broadcast_to", [](const V& v) { return ncl::broadcast_to(v[0], {2, 3, 5}); },
       {rnd({3, 1}, 5)}},
      {"sum_to", [](const V& v) { return ncl::sum_to(v[0], {3, 1}); }, {rnd(s, 6)}},
      {"concat of 3", [](const V& v) { return ncl::concat({v[0], v[1], v[2]}, 1); },
       {rnd({2, 1, 5}, 7), rnd({2, 3, 5}, 8), rnd({2, 2, 5}, 9)}},
      {"slice", [](const V& v) { return ncl::slice(v[0], 2, 1, 4); }, {rnd(s, 10)}},
      {"slice to the end", [](const V& v) { return ncl::slice(v[0], 0, 1, 2); }, {rnd(s, 11)}},
      {"index_select, repeated indices", [](const V& v) {
         return ncl::index_select(v[0], i32({2, 0, 2, 3, 2}, {5}));
       }, {rnd({4, 3}, 12)}},
      {"index_add", [](const V& v) {
         return ncl::index_add(v[0], i32({1, 0, 1, 3, 1}, {5}), 4);  // row 2 receives nothing
       }, {rnd({5, 3}, 13)}},
      {"combine_rows: weights, a repeated column, an empty row", [](const V& v) {
         RowMapBuilder b;  // rows of M (4 × 5): {0.5·x0 − 2·x3}, {}, {x1 + x1 + x4}, {−x2}
         b.add(0, 0.5), b.add(3, -2.0), b.end_row();
         b.end_row();
         b.add(1), b.add(1), b.add(4), b.end_row();
         b.add(2, -1.0), b.end_row();
         return ncl::combine_rows(v[0], std::make_shared<RowMap>(b.build(5, DType::F64)));
       }, {rnd({5, 2, 3}, 14)}},
  });
}

TEST_CASE("gradcheck: softmax family, with and without key masks", "[grad]") {
  // Masks: per row, x (G=3, Q=1, C=5) with mask (3, 5), the last row fully masked; and
  // head-grouped, x (H*B=4, Q=3, C=5) with mask (B=2, C=5), set 1 fully masked.
  Tensor row_mask = i32({0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1}, {3, 5});
  Tensor head_mask = i32({0, 0, 1, 0, 1, 1, 1, 1, 1, 1}, {2, 5});
  const Shape rows{3, 1, 5}, heads{4, 3, 5}, plain{2, 3, 5};
  // logsumexp of a fully masked row is -inf; `where` swaps it for 0 before gradcheck weighs
  // the output, and checks that no gradient (and no NaN) flows back from that row.
  auto finite_lse = [](const Tensor& mask, const Shape& lse_shape) {
    return [mask, lse_shape](const V& v) {
      Variable y = ncl::logsumexp(v[0], mask);
      std::vector<double> finite;
      for (double x : y.value().to_vector()) finite.push_back(std::isfinite(x) ? 1 : 0);
      Variable zero(Tensor::zeros(lse_shape, DType::F64));
      return ncl::where(i32(finite, lse_shape), y, zero);
    };
  };
  run_cases({
      {"softmax", [](const V& v) { return ncl::softmax(v[0]); }, {rnd(plain, 1)}},
      {"log_softmax", [](const V& v) { return ncl::log_softmax(v[0]); }, {rnd(plain, 2)}},
      {"logsumexp", [](const V& v) { return ncl::logsumexp(v[0]); }, {rnd(plain, 3)}},
      {"softmax, row mask", [=](const V& v) { return ncl::softmax(v[0], row_mask); },
       {rnd(rows, 4)}},
      {"log_softmax, row mask", [=](const V& v) { return ncl::log_softmax(v[0], row_mask); },
       {rnd(rows, 5)}},
      {"logsumexp, row mask", finite_lse(row_mask, {3, 1}), {rnd(rows, 6)}},
      {"softmax, head mask", [=](const V& v) { return ncl::softmax(v[0], head_mask); },
       {rnd(heads, 7)}},
      {"log_softmax, head mask", [=](const V& v) { return ncl::log_softmax(v[0], head_mask); },
       {rnd(heads, 8)}},
      {"logsumexp, head mask", finite_lse(head_mask, {4, 3}), {rnd(heads, 9)}},
      // Down the columns: x (E=4, R=5, C=3), entry e using mask row e % 2 (set 1 fully masked).
      {"softmax_columns", [](const V& v) { return ncl::softmax_columns(v[0]); },
       {rnd({4, 5, 3}, 10)}},
      {"softmax_columns, key mask",
       [=](const V& v) { return ncl::softmax_columns(v[0], head_mask); }, {rnd({4, 5, 3}, 11)}},
  });
}

TEST_CASE("gradcheck: layer norm, losses, reparameterisation", "[grad]") {
  Tensor eps = Rng(3).normal_tensor({2, 3}, 0.0, 1.0, DType::F64);
  run_cases({
      {"layer_norm (x, gamma, beta)",
       [](const V& v) { return ncl::layer_norm(v[0], v[1], v[2]); },
       {uni({2, 3, 5}, 1, -2, 2), away({5}, 2), rnd({5}, 3)}},
      {"bce_with_logits", [](const V& v) { return ncl::bce_with_logits(v[0], v[1]); },
       {uni({2, 3, 5}, 4, -3, 3), uni({2, 3, 5}, 5, 0, 1)}},
      {"gaussian_log_density, x (B,N,1,D) against (B,1,K,D)",
       [](const V& v) { return ncl::gaussian_log_density(v[0], v[1], v[2]); },
       {rnd({2, 3, 1, 4}, 6), rnd({2, 1, 3, 4}, 7), uni({2, 1, 3, 4}, 8, 0.5, 1.5)}},
      {"gaussian_log_density, x (B,N,D) against (B,1,D)",
       [](const V& v) { return ncl::gaussian_log_density(v[0], v[1], v[2]); },
       {rnd({2, 5, 3}, 11), rnd({2, 1, 3}, 12), uni({2, 1, 3}, 13, 0.5, 1.5)}},
      {"gaussian_log_density, composed: x (N,D) against (D)",
       [](const V& v) { return ncl::gaussian_log_density(v[0], v[1], v[2]); },
       {rnd({4, 3}, 14), rnd({3}, 15), uni({3}, 16, 0.5, 1.5)}},
      {"reparameterize", [=](const V& v) { return ncl::reparameterize(v[0], v[1], eps); },
       {rnd({2, 3}, 9), pos({2, 3}, 10)}},
  });
}

TEST_CASE("gradcheck: inputs left out with wrt get no gradient", "[grad]") {
  GradcheckOptions options;
  options.wrt = {true, false};
  require_gradcheck(gradcheck([](const V& v) { return v[0] * v[1]; },
                              {rnd({2, 3}, 1), rnd({2, 3}, 2)}, options));
}

TEST_CASE("gradcheck rejects wrong and unwritten gradients", "[grad]") {
  const std::vector<Tensor> x{rnd({2, 3, 5}, 1)};
  SECTION("identity whose backward returns 2·dy") {
    auto doubled = [](const V& v) {
      return make_result("doubled_identity", v[0].value(), {v[0]},
                         [](const Tensor& dy, const std::vector<bool>&) {
                           return std::vector<Tensor>{ops::scale(dy, 2.0)};
                         });
    };
    GradcheckResult result = gradcheck(doubled, x);
    INFO(result.message);
    REQUIRE(!result.ok);
    CHECK(result.max_abs_error > 0.1);
  }
  SECTION("backward that leaves its result unwritten (Tensor::empty)") {
    auto unwritten = [](const V& v) {
      return make_result("unwritten", v[0].value(), {v[0]},
                         [](const Tensor& dy, const std::vector<bool>&) {
                           return std::vector<Tensor>{Tensor::empty(dy.shape(), dy.dtype())};
                         });
    };
    GradcheckResult result = gradcheck(unwritten, x);
    INFO(result.message);
    REQUIRE(!result.ok);
    CHECK_THAT(result.message, Catch::Matchers::Contains("unwritten"));
  }
  SECTION("backward that forgets a single element") {
    auto forgets_last = [](const V& v) {
      return make_result("forgets_last", v[0].value(), {v[0]},
                         [](const Tensor& dy, const std::vector<bool>&) {
                           Tensor dx = Tensor::empty(dy.shape(), dy.dtype());
                           std::copy(dy.data<double>(), dy.data<double>() + dy.numel() - 1,
                                     dx.data<double>());
                           return std::vector<Tensor>{dx};
                         });
    };
    GradcheckResult result = gradcheck(forgets_last, x);
    INFO(result.message);
    REQUIRE(!result.ok);
  }
  SECTION("gradcheck sees scale_grad's scaling") {
    GradcheckResult result = gradcheck([](const V& v) { return ncl::scale_grad(v[0], 0.5); }, x);
    INFO(result.message);
    REQUIRE(!result.ok);  // backward gives 0.5·dy where the forward's derivative is dy
  }
}

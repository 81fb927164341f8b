// Forward values of the compute ops in tensor/ops.h on the CPU, against hand-computed numbers
// or an independent scalar reference: elementwise ops and each broadcast mode, reductions,
// matmul against the naive GEMM oracle, the masked softmax family and layer norm. (Layout ops
// and Adam: ops_cpu_layout_test.cpp.)
#include <catch2/catch.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "tensor/backend.h"
#include "tensor/cpu/vec_exp.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using ncl::test::f64;
using ncl::test::i32;
using ncl::test::random_tensor;
using ncl::test::require_close;

namespace {
bool all_finite(const Tensor& t) {
  for (double x : t.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}
}  // namespace

TEST_CASE("unary: every UnaryOp against std:: math", "[tensor]") {
  struct Case {
    UnaryOp op;
    const char* name;
    double alpha;
    std::function<double(double)> f;
    std::vector<double> x;
  };
  const std::vector<double> mixed{-2.0, -0.5, 0.0, 0.25, 3.0};
  const std::vector<double> positive{0.125, 0.5, 1.0, 2.0, 9.0};
  const std::vector<Case> cases{
      {UnaryOp::Neg, "neg", 0, [](double v) { return -v; }, mixed},
      {UnaryOp::Exp, "exp", 0, [](double v) { return std::exp(v); }, mixed},
      {UnaryOp::Log, "log", 0, [](double v) { return std::log(v); }, positive},
      {UnaryOp::Sqrt, "sqrt", 0, [](double v) { return std::sqrt(v); }, positive},
      {UnaryOp::Abs, "abs", 0, [](double v) { return std::abs(v); }, mixed},
      {UnaryOp::Square, "square", 0, [](double v) { return v * v; }, mixed},
      {UnaryOp::Reciprocal, "reciprocal", 0, [](double v) { return 1 / v; }, positive},
      {UnaryOp::Relu, "relu", 0, [](double v) { return v > 0 ? v : 0.0; }, mixed},
      {UnaryOp::Step, "step", 0, [](double v) { return v > 0 ? 1.0 : 0.0; }, mixed},
      {UnaryOp::Sigmoid, "sigmoid", 0, [](double v) { return 1 / (1 + std::exp(-v)); }, mixed},
      {UnaryOp::Tanh, "tanh", 0, [](double v) { return std::tanh(v); }, mixed},
      {UnaryOp::Softplus, "softplus", 0, [](double v) { return std::log(1 + std::exp(v)); }, mixed},
      {UnaryOp::Elu, "elu", 0, [](double v) { return v > 0 ? v : std::exp(v) - 1; }, mixed},
      {UnaryOp::EluDeriv, "elu_deriv", 0, [](double v) { return v > 0 ? 1 : std::exp(v); }, mixed},
      {UnaryOp::Scale, "scale", -1.5, [](double v) { return -1.5 * v; }, mixed},
      {UnaryOp::AddScalar, "add_scalar", 0.75, [](double v) { return v + 0.75; }, mixed},
      {UnaryOp::PowScalar, "pow_scalar", 1.5, [](double v) { return std::pow(v, 1.5); }, positive},
  };
  for (const Case& c : cases) {
    for (DType dtype : {DType::F64, DType::F32}) {
      DYNAMIC_SECTION(c.name << " " << dtype) {
        Tensor x = Tensor::from_vector(c.x, {5}, dtype);
        std::vector<double> expected;
        for (double v : x.to_vector()) expected.push_back(c.f(v));
        Tensor y = ops::unary(c.op, x, c.alpha);
        CHECK(y.dtype() == dtype);
        double tol = dtype == DType::F64 ? 1e-14 : 1e-6;
        require_close(y, f64(expected, {5}), tol, tol);
      }
    }
  }
}

TEST_CASE("unary: softplus and sigmoid at +-1000 do not overflow", "[tensor]") {
  for (DType dtype : {DType::F64, DType::F32}) {
    Tensor x = Tensor::from_vector({-1000, 1000}, {2}, dtype);
    CHECK(ops::unary(UnaryOp::Softplus, x).to_vector() == std::vector<double>{0.0, 1000.0});
    CHECK(ops::unary(UnaryOp::Sigmoid, x).to_vector() == std::vector<double>{0.0, 1.0});
  }
}

TEST_CASE("binary: every op under every broadcast mode", "[tensor]") {
  // a (2, 3), positive so Pow and Div are defined.
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  struct Mode {
    const char* name;
    Tensor b;
    Broadcast expected_mode;
    std::function<double(int64_t, int64_t)> b_at;  // b's value for a[r, c]
  };
  const std::vector<Mode> modes{
      {"none", f64({0.5, 3, 2, 4, 1, 8}, {2, 3}), Broadcast::None,
       [](int64_t r, int64_t c) {
         return std::vector<double>{0.5, 3, 2, 4, 1, 8}[size_t(r * 3 + c)];
       }},
      {"scalar", f64({2}, {}), Broadcast::Scalar, [](int64_t, int64_t) { return 2.0; }},
      {"scalar (1, 1)", f64({3}, {1, 1}), Broadcast::Scalar, [](int64_t, int64_t) { return 3.0; }},
      {"row (3)", f64({0.5, 2, 4}, {3}), Broadcast::Row,
       [](int64_t, int64_t c) { return std::vector<double>{0.5, 2, 4}[size_t(c)]; }},
      {"row (1, 3)", f64({0.5, 2, 4}, {1, 3}), Broadcast::Row,
       [](int64_t, int64_t c) { return std::vector<double>{0.5, 2, 4}[size_t(c)]; }},
      {"column (2, 1)", f64({2, 5}, {2, 1}), Broadcast::Column,
       [](int64_t r, int64_t) { return std::vector<double>{2, 5}[size_t(r)]; }},
  };
  struct Op {
    BinaryOp op;
    const char* name;
    std::function<double(double, double)> f;
  };
  const std::vector<Op> op_list{
      {BinaryOp::Add, "add", [](double u, double v) { return u + v; }},
      {BinaryOp::Sub, "sub", [](double u, double v) { return u - v; }},
      {BinaryOp::Mul, "mul", [](double u, double v) { return u * v; }},
      {BinaryOp::Div, "div", [](double u, double v) { return u / v; }},
      {BinaryOp::Pow, "pow", [](double u, double v) { return std::pow(u, v); }},
      {BinaryOp::Max, "max", [](double u, double v) { return std::max(u, v); }},
      {BinaryOp::Min, "min", [](double u, double v) { return std::min(u, v); }},
      {BinaryOp::Greater, "greater", [](double u, double v) { return u > v ? 1.0 : 0.0; }},
      {BinaryOp::ReluGrad, "relu_grad", [](double u, double v) { return v > 0 ? u : 0.0; }},
  };
  for (const Mode& m : modes)
    for (const Op& o : op_list)
      DYNAMIC_SECTION(o.name << " with b " << m.name) {
        Broadcast mode;
        REQUIRE(ops::broadcast_supported(a.shape(), m.b.shape(), &mode));
        CHECK(mode == m.expected_mode);
        std::vector<double> av = a.to_vector(), expected;
        for (int64_t r = 0; r < 2; ++r)
          for (int64_t c = 0; c < 3; ++c)
            expected.push_back(o.f(av[size_t(r * 3 + c)], m.b_at(r, c)));
        require_close(ops::binary(o.op, a, m.b), f64(expected, {2, 3}), 1e-15, 0);
        // F32 runs the same kernel template; one check that it is wired up.
        Tensor y32 = ops::binary(o.op, a.to(DType::F32), m.b.to(DType::F32));
        CHECK(y32.dtype() == DType::F32);
        require_close(y32, f64(expected, {2, 3}), 1e-6, 1e-6);
      }
}

TEST_CASE("binary: unsupported broadcasts and mismatched inputs throw", "[tensor]") {
  Tensor a = Tensor::zeros({2, 3}, DType::F64);
  Broadcast mode;
  for (const Shape& bad : {Shape{2}, Shape{3, 1}, Shape{1, 2, 3}, Shape{2, 2}}) {
    INFO("b " << bad);
    CHECK_FALSE(ops::broadcast_supported(a.shape(), bad, &mode));
    CHECK_THROWS_WITH(ops::add(a, Tensor::zeros(bad, DType::F64)),
                      Catch::Matchers::Contains("broadcast_to"));  // the HINT
  }
  CHECK_THROWS_AS(ops::add(a, Tensor::zeros({2, 3}, DType::F32)), Error);  // dtypes differ
  CHECK_THROWS_AS(ops::neg(Tensor::zeros({2}, DType::I32)), Error);        // not floating
}

TEST_CASE("where picks by an I32 condition", "[tensor]") {
  Tensor cond = i32({1, 0, 0, 1}, {2, 2});
  Tensor y = ops::where(cond, f64({1, 2, 3, 4}, {2, 2}), f64({-1, -2, -3, -4}, {2, 2}));
  CHECK(y.to_vector() == std::vector<double>{1, -2, -3, 4});
  CHECK_THROWS_AS(ops::where(cond.to(DType::F64), y, y), Error);
  CHECK_THROWS_AS(ops::where(i32({1, 0}, {2}), y, y), Error);
}

TEST_CASE("reductions over each axis of a rank-3 tensor, with argmax", "[tensor]") {
  // x (2, 3, 4): distinct values, 7 is coprime with 24, so every entry differs.
  const int64_t D0 = 2, D1 = 3, D2 = 4;
  std::vector<double> v(24);
  for (size_t i = 0; i < 24; ++i) v[i] = double((i * 7) % 24) - 11.5;
  Tensor x = f64(v, {D0, D1, D2});
  auto at = [&](int64_t i, int64_t j, int64_t k) { return v[size_t((i * D1 + j) * D2 + k)]; };
  const int64_t dims[3] = {D0, D1, D2};

  for (int axis = 0; axis < 3; ++axis)
    for (bool keepdim : {false, true})
      DYNAMIC_SECTION("axis " << axis << (keepdim ? " keepdim" : "")) {
        // The two remaining axes, in order, and the expected output shape.
        std::vector<int> rest;
        for (int d = 0; d < 3; ++d)
          if (d != axis) rest.push_back(d);
        Shape expected_shape = keepdim ? Shape{D0, D1, D2}.with(axis, 1)
                                       : Shape{dims[rest[0]], dims[rest[1]]};
        std::vector<double> sums, maxes, args;
        for (int64_t p = 0; p < dims[rest[0]]; ++p)
          for (int64_t q = 0; q < dims[rest[1]]; ++q) {
            double s = 0, best = -INFINITY, best_l = -1;
            for (int64_t l = 0; l < dims[axis]; ++l) {
              int64_t idx[3];
              idx[axis] = l, idx[rest[0]] = p, idx[rest[1]] = q;
              double value = at(idx[0], idx[1], idx[2]);
              s += value;
              if (value > best) best = value, best_l = double(l);
            }
            sums.push_back(s), maxes.push_back(best), args.push_back(best_l);
          }
        std::vector<double> means;
        for (double s : sums) means.push_back(s / double(dims[axis]));

        require_close(ops::sum(x, axis, keepdim), f64(sums, expected_shape), 1e-15, 1e-15);
        require_close(ops::sum(x, axis - 3, keepdim), f64(sums, expected_shape), 1e-15, 1e-15);
        require_close(ops::mean(x, axis, keepdim), f64(means, expected_shape), 1e-15, 1e-15);
        Tensor argmax;
        Tensor m = ops::max(x, axis, keepdim, &argmax);
        require_close(m, f64(maxes, expected_shape), 0, 0);
        CHECK(argmax.dtype() == DType::I32);
        CHECK(argmax.shape() == expected_shape);
        CHECK(argmax.to_vector() == args);
      }
  SECTION("sum_all and the first maximum on ties") {
    CHECK(ops::sum_all(x).shape() == Shape{});
    CHECK(ops::sum_all(x).item() == Approx(0.0).margin(1e-12));  // symmetric around 0
    Tensor argmax;
    ops::max(f64({1, 5, 5, 2}, {4}), 0, false, &argmax);
    CHECK(argmax.item() == 1);
  }
}

namespace {
// op(a)·op(b) through ops::matmul versus gemm_naive on the same GEMM view.
void check_matmul(DType dtype, bool ta, bool tb, int64_t batch, bool shared_b, uint64_t seed) {
  const int64_t M = 5, N = 7, K = 37;
  auto mat = [&](int64_t rows, int64_t cols) { return std::vector<int64_t>{rows, cols}; };
  std::vector<int64_t> da = ta ? mat(K, M) : mat(M, K), db = tb ? mat(N, K) : mat(K, N);
  if (batch > 1) {
    da.insert(da.begin(), batch);
    if (!shared_b) db.insert(db.begin(), batch);
  }
  Tensor a = random_tensor(Shape(da), seed, dtype), b = random_tensor(Shape(db), seed + 1, dtype);
  Tensor c = ops::matmul(a, b, ta, tb);
  std::vector<int64_t> dc{M, N};
  if (batch > 1) dc.insert(dc.begin(), batch);
  REQUIRE(c.shape() == Shape(dc));

  GemmArgs g;
  g.batch = batch, g.m = M, g.n = N, g.k = K, g.trans_a = ta, g.trans_b = tb;
  g.stride_a = M * K, g.stride_b = shared_b ? 0 : N * K;
  Tensor expected = Tensor::zeros(Shape(dc), dtype);
  cpu::gemm_naive(a, b, expected, g);
  // F32: K = 37 products of values in [-1, 1], rounding error ~ K·2^-24 ≈ 2.2e-6.
  double tol = dtype == DType::F64 ? 1e-13 : 1e-5;
  require_close(c, expected, tol, tol);
}
}  // namespace

TEST_CASE("matmul against the naive oracle", "[tensor]") {
  for (DType dtype : {DType::F64, DType::F32})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        std::string flags = std::string(" ta=") + (ta ? "1" : "0") + " tb=" + (tb ? "1" : "0");
        DYNAMIC_SECTION(dtype << flags) { check_matmul(dtype, ta, tb, 1, false, 1); }
        DYNAMIC_SECTION(dtype << " batched" << flags) { check_matmul(dtype, ta, tb, 3, false, 2); }
        DYNAMIC_SECTION(dtype << " shared b" << flags) { check_matmul(dtype, ta, tb, 3, true, 3); }
      }
  SECTION("an empty inner dimension (K = 0) gives zeros, batched too") {
    Tensor c = ops::matmul(Tensor::zeros({3, 4, 0}), Tensor::zeros({3, 0, 5}));
    REQUIRE(c.shape() == Shape({3, 4, 5}));
    for (double v : c.to_vector()) REQUIRE(v == 0.0);
    Tensor c2 = ops::matmul(Tensor::zeros({4, 0}), Tensor::zeros({0, 5}));
    for (double v : c2.to_vector()) REQUIRE(v == 0.0);
  }
  SECTION("mismatched inner dimensions throw") {
    CHECK_THROWS_AS(ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), Error);
    CHECK_THROWS_AS(ops::matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 5})), Error);
  }
}

// The threaded paths of cpu::gemm (row blocks of one large product, batch entries split over
// threads) and the two-level strides with leading dimensions (a head block inside (B, N, D)),
// each against the naive oracle with the same GemmArgs, run with 2 threads.
TEST_CASE("cpu::gemm: threaded paths and head-block strides match the naive oracle", "[tensor]") {
  int saved = ops::cpu_threads();
  ops::set_cpu_threads(2);
  auto check = [](const GemmArgs& g, const Shape& sa, const Shape& sb, const Shape& sc) {
    Tensor a = random_tensor(sa, 1, DType::F64), b = random_tensor(sb, 2, DType::F64);
    Tensor c = random_tensor(sc, 3, DType::F64), expected = c.clone();
    cpu::gemm(a, b, c, g);
    cpu::gemm_naive(a, b, expected, g);
    require_close(c, expected, 1e-12, 1e-12);
  };
  SECTION("one large product split into row blocks, both transposes, beta = 0.5") {
    for (bool ta : {false, true}) {
      GemmArgs g;
      g.m = 300, g.n = 64, g.k = 64, g.trans_a = ta, g.trans_b = true, g.beta = 0.5;
      check(g, ta ? Shape{64, 300} : Shape{300, 64}, {64, 64}, {300, 64});
    }
  }
  SECTION("many batch entries over threads") {
    GemmArgs g;
    g.batch = 40, g.m = 64, g.n = 64, g.k = 64, g.stride_a = 64 * 64, g.stride_b = 64 * 64;
    check(g, {40, 64, 64}, {40, 64, 64}, {40, 64, 64});
  }
  SECTION("head blocks: entry h·B + b reads (B, N, D) in place and writes per-head output") {
    const int64_t B = 3, N = 70, D = 12, H = 3, Dh = D / H;
    GemmArgs g;  // S_hb = X_hb Y_hbᵀ with X, Y (B, N, D) heads, S (H·B, N, N)
    g.batch = H * B, g.inner = B, g.m = N, g.n = N, g.k = Dh, g.trans_b = true;
    g.outer_stride_a = g.outer_stride_b = Dh, g.stride_a = g.stride_b = N * D, g.lda = g.ldb = D;
    g.stride_c = N * N, g.outer_stride_c = B * N * N;
    check(g, {B, N, D}, {B, N, D}, {H * B, N, N});
    GemmArgs o;  // O_hb += P_hbᵀ V_hb written into the head blocks of O (B, N, D)
    o.batch = H * B, o.inner = B, o.m = N, o.n = Dh, o.k = N, o.trans_a = true, o.beta = 1.0;
    o.stride_a = N * N, o.outer_stride_a = B * N * N;
    o.outer_stride_b = o.outer_stride_c = Dh, o.stride_b = o.stride_c = N * D, o.ldb = o.ldc = D;
    check(o, {H * B, N, N}, {B, N, D}, {B, N, D});
  }
  ops::set_cpu_threads(saved);
}

TEST_CASE("matmul_into: c = alpha a.b + beta c accumulates", "[tensor]") {
  Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({1, 0, 1, 1}, {2, 2});
  Tensor c = f64({10, 20, 30, 40}, {2, 2});
  // a·b = [[3, 2], [7, 4]]
  ops::matmul_into(a, b, c, false, false, 1.0, 1.0);
  CHECK(c.to_vector() == std::vector<double>{13, 22, 37, 44});
  ops::matmul_into(a, b, c, false, false, 2.0, 0.5);
  CHECK(c.to_vector() == std::vector<double>{12.5, 15, 32.5, 30});
  Tensor wrong = Tensor::zeros({2, 3}, DType::F64);
  CHECK_THROWS_AS(ops::matmul_into(a, b, wrong, false, false, 1.0, 0.0), Error);
}

namespace {
// Reference masked softmax of one row (mask may be empty): softmax, log-softmax (0 where
// masked) and logsumexp (-inf when every key is masked).
struct RowSoftmax {
  std::vector<double> p, logp;
  double lse;
};
RowSoftmax reference_softmax(const std::vector<double>& x, const std::vector<double>& mask) {
  double mx = -INFINITY;
  for (size_t c = 0; c < x.size(); ++c)
    if (mask.empty() || !mask[c]) mx = std::max(mx, x[c]);
  double s = 0;
  for (size_t c = 0; c < x.size(); ++c)
    if (mask.empty() || !mask[c]) s += std::exp(x[c] - mx);
  RowSoftmax r{std::vector<double>(x.size(), 0.0), std::vector<double>(x.size(), 0.0),
               s == 0 ? -INFINITY : mx + std::log(s)};
  for (size_t c = 0; c < x.size(); ++c)
    if ((mask.empty() || !mask[c]) && s > 0) {
      r.logp[c] = x[c] - mx - std::log(s);
      r.p[c] = std::exp(r.logp[c]);
    }
  return r;
}
}  // namespace

TEST_CASE("softmax family: stable at +-1e4", "[tensor]") {
  const double big = 1e4, l = std::log1p(std::exp(-1.0));  // log(1 + e^-1)
  for (DType dtype : {DType::F64, DType::F32}) {
    Tensor x = Tensor::from_vector({big, -big, big - 1, 0}, {1, 4}, dtype);
    Tensor p = ops::softmax(x), logp = ops::log_softmax(x), lse = ops::logsumexp(x);
    REQUIRE(all_finite(p));
    REQUIRE(all_finite(logp));
    REQUIRE(all_finite(lse));
    double tol = dtype == DType::F64 ? 1e-14 : 1e-6;
    require_close(p, f64({1 / (1 + std::exp(-1.0)), 0, std::exp(-1.0) / (1 + std::exp(-1.0)), 0},
                         {1, 4}), tol, tol);
    require_close(logp, f64({-l, -2 * big - l, -1 - l, -big - l}, {1, 4}), tol, tol);
    CHECK(lse.shape() == Shape{1});
    require_close(lse, f64({big + l}, {1}), tol, 0);
  }
}

TEST_CASE("softmax family: masked keys, fully masked rows, head-grouped masks", "[tensor]") {
  SECTION("masked keys get 0; a fully masked row is all zeros and logsumexp -inf") {
    // x (G=2, Q=1, C=4): one row per group, so each row has its own mask row.
    Tensor x = f64({0.5, -1, 2, 0.25, 3, 1, -2, 0}, {2, 1, 4});
    Tensor mask = i32({0, 1, 0, 1, 1, 1, 1, 1}, {2, 4});
    Tensor p = ops::softmax(x, mask), logp = ops::log_softmax(x, mask);
    Tensor lse = ops::logsumexp(x, mask);
    RowSoftmax r = reference_softmax({0.5, -1, 2, 0.25}, {0, 1, 0, 1});
    std::vector<double> zeros(4, 0.0);
    std::vector<double> p_expected = r.p, logp_expected = r.logp;
    p_expected.insert(p_expected.end(), zeros.begin(), zeros.end());
    logp_expected.insert(logp_expected.end(), zeros.begin(), zeros.end());
    require_close(p, f64(p_expected, {2, 1, 4}), 1e-15, 1e-15);
    require_close(logp, f64(logp_expected, {2, 1, 4}), 1e-15, 1e-15);
    std::vector<double> l = lse.to_vector();
    CHECK(lse.shape() == Shape{2, 1});
    CHECK(l[0] == Approx(r.lse).epsilon(1e-15));
    CHECK(std::isinf(l[1]));
    CHECK(l[1] < 0);
  }
  SECTION("x (H*B, Q, C) with mask (B, C): group g uses mask row g % B") {
    const int64_t H = 2, B = 3, Q = 2, C = 5;
    Tensor x = random_tensor({H * B, Q, C}, 11, DType::F64, -3, 3);
    std::vector<double> m{0, 1, 0, 0, 1,   // set 0
                          1, 1, 1, 1, 1,   // set 1: fully masked
                          0, 0, 0, 1, 0};  // set 2
    Tensor mask = i32(m, {B, C});
    std::vector<double> xv = x.to_vector(), p, logp, lse;
    for (int64_t g = 0; g < H * B; ++g)
      for (int64_t q = 0; q < Q; ++q) {
        auto row_begin = xv.begin() + (g * Q + q) * C;
        auto mask_begin = m.begin() + (g % B) * C;
        RowSoftmax r = reference_softmax({row_begin, row_begin + C}, {mask_begin, mask_begin + C});
        p.insert(p.end(), r.p.begin(), r.p.end());
        logp.insert(logp.end(), r.logp.begin(), r.logp.end());
        lse.push_back(r.lse);
      }
    require_close(ops::softmax(x, mask), f64(p, x.shape()), 1e-14, 1e-15);
    require_close(ops::log_softmax(x, mask), f64(logp, x.shape()), 1e-14, 1e-15);
    require_close(ops::logsumexp(x, mask), f64(lse, {H * B, Q}), 1e-14, 1e-15);
    // A mask whose rows cannot be shared evenly by the groups is refused.
    CHECK_THROWS_AS(ops::softmax(x, i32(std::vector<double>(4 * C, 0.0), {4, C})), Error);
    CHECK_THROWS_AS(ops::softmax(x, i32(std::vector<double>(B * 4, 0.0), {B, 4})), Error);
  }
}

TEST_CASE("layer_norm: normalised rows and the saved statistics", "[tensor]") {
  const int64_t R = 3, C = 7;
  Tensor x = random_tensor({R, C}, 5, DType::F64, -2, 3);
  std::vector<double> xv = x.to_vector();
  std::vector<double> mean(R), rstd(R);
  for (int64_t r = 0; r < R; ++r) {
    double s = 0, ss = 0;
    for (int64_t c = 0; c < C; ++c) s += xv[size_t(r * C + c)];
    mean[size_t(r)] = s / C;
    for (int64_t c = 0; c < C; ++c) ss += std::pow(xv[size_t(r * C + c)] - mean[size_t(r)], 2);
    rstd[size_t(r)] = 1 / std::sqrt(ss / C + 1e-5);  // biased variance, like PyTorch
  }
  SECTION("gamma = 1, beta = 0, eps = 0: every row has mean 0 and variance 1") {
    auto out = ops::layer_norm(x, Tensor::full({C}, 1.0, DType::F64),
                               Tensor::zeros({C}, DType::F64), 0.0);
    std::vector<double> y = out.y.to_vector();
    for (int64_t r = 0; r < R; ++r) {
      double s = 0, ss = 0;
      for (int64_t c = 0; c < C; ++c) s += y[size_t(r * C + c)];
      for (int64_t c = 0; c < C; ++c) ss += y[size_t(r * C + c)] * y[size_t(r * C + c)];
      CHECK(std::abs(s / C) < 1e-14);
      CHECK(std::abs(ss / C - 1) < 1e-13);
    }
  }
  SECTION("y = (x - mean) * rstd * gamma + beta with eps = 1e-5") {
    Tensor gamma = f64({1, 2, -1, 0.5, 3, 1, -2}, {C}), beta = f64({0, 1, 2, 3, -1, 0, 4}, {C});
    auto out = ops::layer_norm(x, gamma, beta, 1e-5);
    require_close(out.mean, f64(mean, {R}), 1e-14, 1e-15);
    require_close(out.rstd, f64(rstd, {R}), 1e-14, 0);
    std::vector<double> g = gamma.to_vector(), b = beta.to_vector(), y;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c)
        y.push_back((xv[size_t(r * C + c)] - mean[size_t(r)]) * rstd[size_t(r)] * g[size_t(c)] +
                    b[size_t(c)]);
    require_close(out.y, f64(y, {R, C}), 1e-13, 1e-14);
    CHECK_THROWS_AS(ops::layer_norm(x, f64({1, 1}, {2}), beta, 1e-5), Error);
  }
}

TEST_CASE("The CPU backend flushes denormal floats to zero on every thread", "[tensor]") {
  // Denormals slow every arithmetic instruction down (NCP's late gradients, tensor/cpu/gemm.cpp).
  // Values are inspected as bits: converting a denormal to double would itself read it as 0.
  ops::matmul(Tensor::full({2, 2}, 1.0), Tensor::full({2, 2}, 1.0));  // the backend's setup
  const int64_t n = 1 << 18;  // enough for every thread to take a chunk
  auto all_zero_bits = [&](const Tensor& t) {
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(t.raw_data());
    return std::all_of(bits, bits + n, [](uint32_t b) { return b == 0; });
  };
  Tensor tiny = Tensor::empty({n});
  uint32_t* bits = reinterpret_cast<uint32_t*>(tiny.raw_data());
  std::fill(bits, bits + n, 0x00400000u);  // 5.9e-39, a denormal F32
  REQUIRE(!all_zero_bits(tiny));
  REQUIRE(all_zero_bits(ops::scale(tiny, 1.0)));                           // read as 0 (DAZ)
  REQUIRE(all_zero_bits(ops::scale(Tensor::full({n}, 1e-30), 1e-10)));    // 1e-40 written as 0 (FTZ)
}

TEST_CASE("Strided copies and fills large enough to be split over the threads", "[tensor]") {
  // 64·300·40 = 768,000 entries: many row chunks, each copied by one thread.
  Tensor x = random_tensor({64, 300, 40}, 7, DType::F32);
  const std::vector<double> v = x.to_vector();
  const std::vector<double> p = ops::permute(x, {1, 2, 0}).to_vector();  // (300, 40, 64)
  for (int64_t a = 0; a < 64; ++a)
    for (int64_t b = 0; b < 300; ++b)
      for (int64_t c = 0; c < 40; ++c) REQUIRE(p[(b * 40 + c) * 64 + a] == v[(a * 300 + b) * 40 + c]);
  Tensor row = random_tensor({1, 1, 40}, 8, DType::F32);
  const std::vector<double> r = row.to_vector();
  const std::vector<double> wide = ops::broadcast_to(row, {64, 300, 40}).to_vector();
  for (size_t i = 0; i < wide.size(); ++i) REQUIRE(wide[i] == r[i % 40]);
  const std::vector<double> filled = Tensor::full({768000}, 2.5, DType::F32).to_vector();
  REQUIRE(std::all_of(filled.begin(), filled.end(), [](double f) { return f == 2.5; }));
}

TEST_CASE("The vectorised F32 exp is within 2^-23 relative over float's range", "[tensor]") {
  // Every 1/1024 from −90 to 90 plus the edges; results are compared with float64's exp
  // (2^-23 relative is 1 to 2 ulp; the polynomial measures at most 1.01 ulp).
  std::vector<float> x;
  for (int i = -90 * 1024; i <= 90 * 1024; ++i) x.push_back(float(i) / 1024.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.7228f, -87.3365f, inf, -inf}) x.push_back(v);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  std::vector<float> y(x.size());
  if (!cpu::exp_vector(x.data(), y.data(), int64_t(x.size()))) {
    WARN("this CPU has no AVX2+FMA (std::exp is used): skipped");
    return;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("exp(" << x[i] << ") = " << y[i]);
    const double expected = std::exp(double(x[i]));
    if (std::isnan(x[i])) REQUIRE(std::isnan(y[i]));
    else if (x[i] < -87.3366f) REQUIRE(y[i] == 0.0f);  // below FLT_MIN: flushed
    else if (x[i] > 88.7229f) REQUIRE(y[i] == inf);
    else if (expected >= double(std::numeric_limits<float>::min()))
      REQUIRE(std::abs(double(y[i]) - expected) <= 0x1p-23 * expected);
  }
}

TEST_CASE("F32 softmax and log-softmax are accurate to float rounding", "[tensor]") {
  // Rows spanning exp's whole float range below the maximum: entries down to 100 below it
  // underflow to 0, the rest must match float64 to a few ulp.
  // The reference runs in float64 on the same (float-rounded) inputs.
  Tensor x32 = random_tensor({64, 257}, 41, DType::F32, -100.0, 20.0), x64 = x32.to(DType::F64);
  const std::vector<double> expected = ops::softmax(x64).to_vector();
  const std::vector<double> got = ops::softmax(x32).to_vector();
  const std::vector<double> log_expected = ops::log_softmax(x64).to_vector();
  const std::vector<double> log_got = ops::log_softmax(x32).to_vector();
  const std::vector<double> x = x64.to_vector();
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("entry " << i << " of expected " << expected[i]);
    // Float rounding of x − max alone moves exp by |x − max|·2^-24 relative; then a few ulp.
    const size_t row = i / 257;
    const double top = *std::max_element(x.begin() + row * 257, x.begin() + (row + 1) * 257);
    const double tolerance = (std::abs(x[i] - top) * 6e-8 + 5e-7) * expected[i] + 1e-37;
    REQUIRE(std::abs(got[i] - expected[i]) <= tolerance);
    REQUIRE(log_got[i] == Approx(log_expected[i]).epsilon(1e-6).margin(1e-5));
  }
}

TEST_CASE("F32 softmax on rows of 1 to 72 keys, and its backward, match float64", "[tensor]") {
  // Rows of 8·V keys without a mask are held in registers (vec_exp.cpp's short-row path); other
  // widths take the general one. Each width's rows span a range of 30 below their maximum, and
  // one row is all −inf (a softmax of nothing: zeros). The backward is checked on the same rows.
  for (int64_t n = 1; n <= 72; ++n) {
    INFO("row of " << n << " keys");
    Tensor x32 = random_tensor({6, n}, 100 + uint64_t(n), DType::F32, -30.0, 0.0);
    Tensor dy32 = random_tensor({6, n}, 200 + uint64_t(n), DType::F32, -1.0, 1.0);
    Tensor x64 = x32.to(DType::F64), dy64 = dy32.to(DType::F64);
    const std::vector<double> expected = ops::softmax(x64).to_vector();
    const std::vector<double> got = ops::softmax(x32).to_vector();
    for (size_t i = 0; i < got.size(); ++i)
      REQUIRE(std::abs(got[i] - expected[i]) <= 3e-6 * expected[i] + 1e-37);
    const Tensor y64 = ops::softmax(x64);
    const std::vector<double> dx_expected = ops::softmax_backward(y64, dy64, {}, false).to_vector();
    const std::vector<double> dx =
        ops::softmax_backward(y64.to(DType::F32), dy32, {}, false).to_vector();
    // Float rounding of y, dy and each product: a few ulp of the terms
    // y_i·(|dy_i| + Σ|dy_j|·y_j) (dy_i − Σ dy_j·y_j cancels where the sum is close to dy_i).
    const std::vector<double> y = y64.to_vector(), g = dy64.to_vector();
    for (size_t i = 0; i < dx.size(); ++i) {
      const size_t row = i / size_t(n);
      double terms = 0;
      for (size_t j = row * size_t(n); j < (row + 1) * size_t(n); ++j)
        terms += std::abs(g[j]) * y[j];
      const double tolerance = 4 * 6e-8 * y[i] * (std::abs(g[i]) + terms) + 1e-37;
      REQUIRE(std::abs(dx[i] - dx_expected[i]) <= tolerance);
    }
    std::vector<double> none(size_t(n), -std::numeric_limits<double>::infinity());
    REQUIRE(ops::softmax(Tensor::from_vector(none, {1, n}, DType::F32)).to_vector() ==
            std::vector<double>(size_t(n), 0.0));
  }
}

TEST_CASE("softmax down the columns, F32 and F64, with masks: the row softmax's results",
          "[tensor]") {
  // Columns 1 to 72 wide (the F32 path's strips of 32, 24, 16 and 8 columns and the scalar
  // columns after them), 3 entries of 37 rows; mask (3, 37): entry 0 loses rows 1 and 5,
  // entry 1 none, entry 2 all (zeros). Float64 against the row softmax of the transpose (an
  // independent code path), float32 against float64, and both backwards the same way.
  std::vector<double> mask_values(3 * 37, 0.0);
  mask_values[1] = mask_values[5] = 1.0;
  for (int r = 0; r < 37; ++r) mask_values[2 * 37 + size_t(r)] = 1.0;
  const Tensor mask = i32(mask_values, {3, 37});
  for (int64_t n = 1; n <= 72; ++n) {
    INFO("columns " << n);
    Tensor x32 = random_tensor({3, 37, n}, 300 + uint64_t(n), DType::F32, -30.0, 5.0);
    Tensor dy32 = random_tensor({3, 37, n}, 400 + uint64_t(n), DType::F32, -1.0, 1.0);
    Tensor x64 = x32.to(DType::F64), dy64 = dy32.to(DType::F64);
    const Tensor y64 = ops::softmax_columns(x64, mask);
    const Tensor rows = ops::transpose(ops::softmax(ops::transpose(x64, 1, 2), mask), 1, 2);
    require_close(y64, rows, 1e-14, 1e-300);
    const std::vector<double> expected = y64.to_vector();
    const std::vector<double> got = ops::softmax_columns(x32, mask).to_vector();
    for (size_t i = 0; i < got.size(); ++i)
      REQUIRE(std::abs(got[i] - expected[i]) <= 3e-6 * expected[i] + 1e-37);
    for (size_t i = 2 * 37 * size_t(n); i < got.size(); ++i) REQUIRE(got[i] == 0.0);
    const Tensor dx64 = ops::softmax_columns_backward(y64, dy64);
    const Tensor dx_rows = ops::transpose(
        ops::softmax_backward(ops::transpose(y64, 1, 2), ops::transpose(dy64, 1, 2), mask, false),
        1, 2);
    require_close(dx64, dx_rows, 1e-12, 1e-15);
    const std::vector<double> dx_expected = dx64.to_vector();
    const std::vector<double> dx =
        ops::softmax_columns_backward(y64.to(DType::F32), dy32).to_vector();
    // As the row test above, a few ulp of y_i·|dy_i|, and the float sum of the column's 37
    // products (one after another on the scalar columns): up to 37 ulp of y_i·Σ_j |dy_j|·y_j.
    const std::vector<double> y = expected, g = dy64.to_vector();
    for (size_t i = 0; i < dx.size(); ++i) {
      const size_t entry = i / (37 * size_t(n)), column = i % size_t(n);
      double terms = 0;
      for (size_t r = 0; r < 37; ++r) {
        const size_t j = (entry * 37 + r) * size_t(n) + column;
        terms += std::abs(g[j]) * y[j];
      }
      const double tolerance = 6e-8 * y[i] * (4 * std::abs(g[i]) + 37 * terms) + 1e-37;
      REQUIRE(std::abs(dx[i] - dx_expected[i]) <= tolerance);
    }
  }
}

TEST_CASE("exp_shifted (softmax's exp of x − max ≤ 0) equals the full-range vector exp",
          "[tensor]") {
  // Every 1/1024 from −100 to 0 (a multiple of 8 entries, so exp_vector's vector loop covers
  // them all): the cheaper non-positive form must give the same bits, and the sum of them.
  std::vector<float> x;
  for (int i = -100 * 1024; i < 0; ++i) x.push_back(float(i) / 1024.0f);
  const int64_t n = int64_t(x.size());
  std::vector<float> shifted(x.size()), full(x.size());
  if (!cpu::exp_vector(x.data(), full.data(), n)) {
    WARN("this CPU has no AVX2+FMA (std::exp is used): skipped");
    return;
  }
  const float sum = cpu::exp_shifted(x.data(), nullptr, 0.0f, shifted.data(), n);
  double total = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("exp(" << x[i] << ")");
    REQUIRE(shifted[i] == full[i]);
    total += full[i];
  }
  REQUIRE(std::abs(double(sum) - total) <= 1e-6 * total);
  // A shift of 3 with masked entries above it (as masked keys may be): they give 0.
  std::vector<float> row{1.0f, 5.0f, 2.0f, 9.0f, 3.0f};
  std::vector<int32_t> mask{0, 1, 0, 1, 0};
  std::vector<float> out(row.size());
  const float s = cpu::exp_shifted(row.data(), mask.data(), 3.0f, out.data(), 5);
  REQUIRE(out[1] == 0.0f);
  REQUIRE(out[3] == 0.0f);
  REQUIRE(out[4] == Approx(1.0f));
  REQUIRE(s == Approx(std::exp(-2.0f) + std::exp(-1.0f) + 1.0f));
}

TEST_CASE("run_cpu_shares runs every item once, the large ones first on this thread",
          "[tensor]") {
  const int threads = ops::cpu_threads();
  ops::set_cpu_threads(2);
  std::vector<int64_t> sizes{5, 100, 1 << 20, 7, 0, 300, 2, 1 << 16, 40};
  std::vector<int> runs(sizes.size(), 0);
  std::vector<int> order;  // the large items' order
  std::vector<int> thread_of(sizes.size(), -1);
  ops::run_cpu_shares(sizes, 1 << 16, [&](size_t i) {
    ++runs[i];  // each item is run by one thread: no two write the same slot
    thread_of[i] = omp_get_thread_num();
    if (sizes[i] >= (1 << 16)) order.push_back(int(i));
  });
  ops::set_cpu_threads(threads);
  for (size_t i = 0; i < sizes.size(); ++i) CHECK(runs[i] == 1);
  CHECK(order == std::vector<int>{2, 7});
  CHECK(thread_of[2] == 0);
  // The small items (454 elements) go to the thread whose half their first element falls in:
  // 5, 100, 7, 0, 300 start below 227 (the first thread), 2 and 40 at 412 and 414.
  for (size_t i : {0, 1, 3, 4, 5}) CHECK(thread_of[i] == 0);
  for (size_t i : {6, 8}) CHECK(thread_of[i] == 1);
}

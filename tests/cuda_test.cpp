// CPU-vs-GPU parity of every CUDA kernel (tensor/cuda/*.cu), reached through tensor/ops.h so the
// dispatcher is exercised too; a float64 gradient check through the GPU path; and one Set
// Transformer training step on both devices.
//
// Protocol (ggml's test-backend-ops): the same random inputs go to both backends; every GPU
// result is allocated under a PoisonGuard (NaN-filled), so an element a kernel forgets to write
// fails the comparison. The CPU reference runs in F64 on the same values (F32 widens exactly),
// so an F32 comparison measures the GPU's rounding alone, not the CPU's F32 rounding as well.
// Shapes cross the warp (32) and block (256 threads, 8 rows) boundaries and include size 1.
// Agreement: |gpu - cpu| <= tol·(|cpu| + max|cpu|), i.e. relative error tol, measured against
// the result's scale where elements are near zero; tol = 1e-5 in F32 (TF32 off), 1e-12 in F64.
// Indices and I32 results must be equal.
//
// Without a usable device (or in a build without CUDA) each case prints one notice and passes.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>

#include "autograd/functions.h"
#include "data/generator.h"
#include "models/set_transformer.h"
#include "tensor/backend.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using ncl::test::random_tensor;
using ncl::test::require_close;
using ncl::test::require_gradcheck;

namespace {

bool no_device() {
  if (cuda::available()) return false;
  WARN("no CUDA device: skipped");
  return true;
}

Tensor gpu(const Tensor& t) { return t.to(Device::CUDA); }
double tol(DType dtype) { return dtype == DType::F32 ? 1e-5 : 1e-12; }

// The largest finite |x| (infinities, e.g. a fully masked logsumexp, must match exactly).
double scale_of(const Tensor& t) {
  double s = 0;
  for (double v : t.to_vector())
    if (std::isfinite(v)) s = std::max(s, std::abs(v));
  return s;
}

// An F32 or F64 tensor as F64 (exact), for the CPU reference; masks and indices unchanged.
Tensor widened(const Tensor& t) {
  return t.defined() && is_floating(t.dtype()) ? t.to(DType::F64) : t;
}

// gpu_result (on the device, F32 or F64) agrees with the F64 reference as the header says.
void require_parity(const Tensor& gpu_result, const Tensor& reference, double tolerance) {
  REQUIRE(gpu_result.device() == Device::CUDA);
  require_close(gpu_result.to(Device::CPU), reference, tolerance, tolerance * scale_of(reference));
}

// Runs f on the GPU copies of the inputs (results NaN-poisoned) and on their F64 CPU
// widenings, and compares.
using Op = std::function<Tensor(const std::vector<Tensor>&)>;
void check_op(const Op& f, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> on_gpu, reference_inputs;
  for (const Tensor& t : inputs) {
    on_gpu.push_back(t.defined() ? gpu(t) : t);
    reference_inputs.push_back(widened(t));
  }
  Tensor actual;
  {
    PoisonGuard poison;
    actual = f(on_gpu);
  }
  require_parity(actual, f(reference_inputs), tol(actual.dtype()));
}

Tensor uniform(const Shape& shape, uint64_t seed, DType dtype, double lo = -1, double hi = 1) {
  return random_tensor(shape, seed, dtype, lo, hi);
}

// I32 values drawn from [0, hi): indices, or 0/1 masks with hi = 2.
Tensor random_ints(const Shape& shape, uint64_t seed, int64_t hi) {
  Rng rng(seed);
  std::vector<double> v(size_t(shape.numel()));
  for (double& x : v) x = double(rng.randint(0, hi));
  return Tensor::from_vector(v, shape, DType::I32);
}

void require_equal_ints(const Tensor& gpu_result, const Tensor& cpu_result) {
  REQUIRE(gpu_result.device() == Device::CUDA);
  REQUIRE(gpu_result.to(Device::CPU).to_vector() == cpu_result.to_vector());
}

const DType kFloatTypes[] = {DType::F32, DType::F64};
// Flat sizes: one element, around a warp, across blocks and across many grid-stride blocks.
const int64_t kFlatSizes[] = {1, 31, 32, 33, 257, 70001};
// (rows, cols) for row kernels: warp and 8-row block boundaries, a long row, many rows.
const std::pair<int64_t, int64_t> kRowShapes[] = {{1, 1},   {3, 31},   {5, 32},   {9, 33},
                                                  {17, 64}, {33, 257}, {2, 1500}, {4100, 8}};

}  // namespace

TEST_CASE("cuda: copies, fill and cast round-trip exactly", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : {DType::F32, DType::F64, DType::I32}) {
    INFO(dtype);
    Tensor x = dtype == DType::I32 ? random_ints({70001}, 1, 1000) : uniform({70001}, 1, dtype);
    Tensor on_device = gpu(x);
    REQUIRE(on_device.device() == Device::CUDA);
    CHECK(on_device.to(Device::CPU).to_vector() == x.to_vector());
    CHECK(on_device.clone().to(Device::CPU).to_vector() == x.to_vector());
    Tensor filled = Tensor::full({33, 5}, 3.0, dtype, Device::CUDA);
    CHECK(filled.to(Device::CPU).to_vector() == std::vector<double>(165, 3.0));
    ops::fill_(filled, -2.0);
    CHECK(filled.to(Device::CPU).to_vector() == std::vector<double>(165, -2.0));
    for (DType target : {DType::F32, DType::F64, DType::I32})
      CHECK(on_device.to(target).to(Device::CPU).to_vector() == x.to(target).to_vector());
  }
}

TEST_CASE("cuda: unary ops", "[cuda]") {
  if (no_device()) return;
  for (int op = int(UnaryOp::Neg); op <= int(UnaryOp::PowScalar); ++op) {
    UnaryOp u = UnaryOp(op);
    bool positive = u == UnaryOp::Log || u == UnaryOp::Sqrt || u == UnaryOp::Reciprocal ||
                    u == UnaryOp::PowScalar;
    for (DType dtype : kFloatTypes)
      for (int64_t n : kFlatSizes) {
        INFO("op " << op << " " << dtype << " n " << n);
        Tensor x = positive ? uniform({n}, 2, dtype, 0.1, 3) : uniform({n}, 2, dtype, -4, 4);
        check_op([u](const auto& v) { return ops::unary(u, v[0], 1.5); }, {x});
      }
  }
}

TEST_CASE("cuda: binary ops under every broadcast mode", "[cuda]") {
  if (no_device()) return;
  for (int op = int(BinaryOp::Add); op <= int(BinaryOp::ReluGrad); ++op)
    for (DType dtype : kFloatTypes)
      for (auto [rows, cols] : kRowShapes) {
        // a > 0 for Pow; b away from 0 for Div; the ranges overlap for Max, Min, Greater; b of
        // both signs for ReluGrad.
        Tensor a = uniform({rows, cols}, 3, dtype, 0.1, 2);
        for (Shape b_shape : {Shape{rows, cols}, Shape{1}, Shape{cols}, Shape{rows, 1}}) {
          INFO("op " << op << " " << dtype << " a " << a.shape() << " b " << b_shape);
          const bool signs = BinaryOp(op) == BinaryOp::ReluGrad;
          Tensor b = uniform(b_shape, 4, dtype, signs ? -2 : 0.5, 2);
          check_op([op](const auto& v) { return ops::binary(BinaryOp(op), v[0], v[1]); }, {a, b});
        }
      }
}

TEST_CASE("cuda: where picks by an I32 condition", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes)
    for (int64_t n : kFlatSizes)
      check_op([](const auto& v) { return ops::where(v[0], v[1], v[2]); },
               {random_ints({n}, 5, 2), uniform({n}, 6, dtype), uniform({n}, 7, dtype)});
}

TEST_CASE("cuda: layout copies: permute, broadcast_to, sum_to, concat, slice", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes) {
    INFO(dtype);
    Tensor x = uniform({2, 3, 33, 5}, 8, dtype);
    check_op([](const auto& v) { return ops::permute(v[0], {3, 1, 0, 2}); }, {x});
    check_op([](const auto& v) { return ops::transpose(v[0], 0, 2); }, {x});
    Tensor row = uniform({3, 1, 5}, 9, dtype), extra = uniform({2, 3, 1, 5}, 10, dtype);
    check_op([](const auto& v) { return ops::broadcast_to(v[0], {2, 3, 33, 5}); }, {row});
    check_op([](const auto& v) { return ops::sum_to(v[0], {3, 1, 5}); }, {x});
    check_op([](const auto& v) { return ops::concat({v[0], v[1], v[0]}, 2); }, {x, extra});
    check_op([](const auto& v) { return ops::slice(v[0], 2, 7, 31); }, {x});
  }
  Tensor ints = random_ints({2, 3, 33, 5}, 11, 100);  // copy_strided moves I32 too
  require_equal_ints(ops::permute(gpu(ints), {2, 0, 3, 1}), ops::permute(ints, {2, 0, 3, 1}));
}

TEST_CASE("cuda: sum, mean, max and argmax over every axis", "[cuda]") {
  if (no_device()) return;
  // inner < 32 takes the warp-per-output kernel, inner >= 32 the column-tile kernel.
  const Shape shapes[] = {{1}, {70001}, {3, 33, 5}, {2, 40, 70}, {257, 2, 33}, {9, 1000, 1}};
  for (DType dtype : kFloatTypes)
    for (const Shape& shape : shapes) {
      // Positive values: long F32 sums then differ only by rounding, not by cancellation.
      Tensor x = uniform(shape, 12, dtype, 0.1, 1);
      for (int axis = 0; axis < shape.rank(); ++axis) {
        INFO(dtype << " " << shape << " axis " << axis);
        check_op([axis](const auto& v) { return ops::sum(v[0], axis); }, {x});
        check_op([axis](const auto& v) { return ops::mean(v[0], axis, true); }, {x});
        Tensor cpu_index, gpu_index;
        Tensor expected = ops::max(widened(x), axis, false, &cpu_index);
        PoisonGuard poison;
        require_parity(ops::max(gpu(x), axis, false, &gpu_index), expected, tol(dtype));
        require_equal_ints(gpu_index, cpu_index);
      }
      check_op([](const auto& v) { return ops::sum_all(v[0]); }, {x});
    }
}

TEST_CASE("cuda: matmul with both transposes, batches, a shared b, alpha and beta", "[cuda]") {
  if (no_device()) return;
  struct Size {
    int64_t m, n, k;
  };
  for (DType dtype : kFloatTypes)
    for (Size s : {Size{1, 1, 1}, Size{17, 33, 5}, Size{64, 31, 130}, Size{130, 64, 33}})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          INFO(dtype << " m " << s.m << " n " << s.n << " k " << s.k << " ta " << ta << " tb "
                     << tb);
          Shape a2 = ta ? Shape{s.k, s.m} : Shape{s.m, s.k};
          Shape b2 = tb ? Shape{s.n, s.k} : Shape{s.k, s.n};
          auto product = [ta, tb](const auto& v) { return ops::matmul(v[0], v[1], ta, tb, 0.75); };
          Tensor a = uniform(a2, 13, dtype), b = uniform(b2, 14, dtype);
          check_op(product, {a, b});
          // Batched (3, ·, ·) x (3, ·, ·), and (2, 3, ·, ·) against one shared 2-D b.
          check_op(product,
                   {uniform({3, a2[0], a2[1]}, 15, dtype), uniform({3, b2[0], b2[1]}, 16, dtype)});
          check_op(product, {uniform({2, 3, a2[0], a2[1]}, 17, dtype), b});
          // c = -2·op(a)·op(b) + 0.5·c, in place.
          Tensor c = uniform({s.m, s.n}, 18, dtype), c_gpu = gpu(c), c_ref = widened(c);
          ops::matmul_into(gpu(a), gpu(b), c_gpu, ta, tb, -2.0, 0.5);
          ops::matmul_into(widened(a), widened(b), c_ref, ta, tb, -2.0, 0.5);
          require_parity(c_gpu, c_ref, tol(dtype));
        }
}

TEST_CASE("cuda: a Linear layer's forward with and without its bias", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes)
    for (bool with_bias : {true, false}) {
      INFO(dtype << " bias " << with_bias);
      auto layer = [with_bias](const auto& v) {
        return ops::linear(v[0], v[1], with_bias ? v[2] : Tensor());
      };
      check_op(layer, {uniform({70, 128}, 21, dtype), uniform({64, 128}, 22, dtype),
                       uniform({64}, 23, dtype)});
    }
}

TEST_CASE("cuda: per-head products (two-level GEMM batch, leading dimensions)", "[cuda]") {
  if (no_device()) return;
  const int64_t B = 3, Nx = 33, Ny = 17, D = 16, H = 4;
  for (DType dtype : kFloatTypes) {
    INFO(dtype);
    Tensor x = uniform({B, Nx, D}, 19, dtype), y = uniform({B, Ny, D}, 20, dtype);
    check_op([](const auto& v) { return ops::head_scores(v[0], v[1], H, 0.5); }, {x, y});
    for (bool trans_p : {false, true})
      for (double beta : {0.0, 1.0}) {
        INFO("trans_p " << trans_p << " beta " << beta);
        Tensor p = uniform(trans_p ? Shape{H * B, Ny, Nx} : Shape{H * B, Nx, Ny}, 21, dtype);
        Tensor v = uniform({B, Ny, D}, 22, dtype), out = uniform({B, Nx, D}, 23, dtype);
        Tensor out_gpu = gpu(out), out_ref = widened(out);
        if (beta == 0) ops::fill_(out_gpu, std::numeric_limits<double>::quiet_NaN());
        ops::head_apply_into(gpu(p), trans_p, gpu(v), out_gpu, H, 1.5, beta);
        ops::head_apply_into(widened(p), trans_p, widened(v), out_ref, H, 1.5, beta);
        require_parity(out_gpu, out_ref, tol(dtype));
      }
  }
}

TEST_CASE("cuda: softmax family with masked keys and fully masked rows", "[cuda]") {
  if (no_device()) return;
  const int64_t H = 2, B = 3;
  for (DType dtype : kFloatTypes)
    for (int64_t q : {1, 5})
      for (int64_t c : {1, 31, 32, 33, 300, 1500})
        for (double spread : {3.0, 1e4}) {  // 1e4: stability needs the max subtracted
          INFO(dtype << " Q " << q << " C " << c << " spread " << spread);
          Tensor x = uniform({H * B, q, c}, 24, dtype, -spread, spread);
          Tensor dy = uniform({H * B, q, c}, 25, dtype);
          std::vector<double> m = random_ints({B, c}, 26, 2).to_vector();  // half removed
          for (int64_t j = 0; j < c; ++j) m[size_t(c + j)] = 1;  // set 1: every key removed
          Tensor mask = Tensor::from_vector(m, {B, c}, DType::I32);
          for (const Tensor& key_mask : {Tensor(), mask}) {
            INFO("masked " << key_mask.defined());
            check_op([](const auto& v) { return ops::softmax(v[0], v[1]); }, {x, key_mask});
            check_op([](const auto& v) { return ops::log_softmax(v[0], v[1]); }, {x, key_mask});
            check_op([](const auto& v) { return ops::logsumexp(v[0], v[1]); }, {x, key_mask});
            for (bool log : {false, true}) {
              Tensor y = log ? ops::log_softmax(x, key_mask) : ops::softmax(x, key_mask);
              check_op(
                  [log](const auto& v) { return ops::softmax_backward(v[0], v[1], v[2], log); },
                  {y, dy, key_mask});
            }
          }
        }
}

TEST_CASE("cuda: softmax down the columns with masked rows and fully masked sets", "[cuda]") {
  if (no_device()) return;
  const int64_t B = 3;
  for (DType dtype : kFloatTypes)
    for (int64_t rows : {1, 33, 500})
      for (int64_t cols : {1, 16, 128}) {
        INFO(dtype << " rows " << rows << " columns " << cols);
        Tensor x = uniform({2 * B, rows, cols}, 29, dtype, -30, 30);
        Tensor dy = uniform({2 * B, rows, cols}, 30, dtype);
        std::vector<double> m = random_ints({B, rows}, 31, 2).to_vector();  // half removed
        for (int64_t r = 0; r < rows; ++r) m[size_t(rows + r)] = 1;  // set 1: every row removed
        Tensor mask = Tensor::from_vector(m, {B, rows}, DType::I32);
        for (const Tensor& key_mask : {Tensor(), mask}) {
          INFO("masked " << key_mask.defined());
          check_op([](const auto& v) { return ops::softmax_columns(v[0], v[1]); }, {x, key_mask});
          Tensor y = ops::softmax_columns(x, key_mask);
          check_op([](const auto& v) { return ops::softmax_columns_backward(v[0], v[1]); },
                   {y, dy});
        }
      }
}

TEST_CASE("cuda: layer norm forward and backward", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes)
    for (auto [rows, cols] : kRowShapes) {
      INFO(dtype << " rows " << rows << " cols " << cols);
      Tensor x = uniform({rows, cols}, 27, dtype, -2, 3), dy = uniform({rows, cols}, 28, dtype);
      Tensor gamma = uniform({cols}, 29, dtype, 0.5, 1.5), beta = uniform({cols}, 30, dtype);
      ops::LayerNormOutput expected =
          ops::layer_norm(widened(x), widened(gamma), widened(beta), 1e-5);
      ops::LayerNormGrads expected_grads = ops::layer_norm_backward(
          widened(x), widened(gamma), expected.mean, expected.rstd, widened(dy));
      PoisonGuard poison;
      ops::LayerNormOutput out = ops::layer_norm(gpu(x), gpu(gamma), gpu(beta), 1e-5);
      ops::LayerNormGrads grads =
          ops::layer_norm_backward(gpu(x), gpu(gamma), out.mean, out.rstd, gpu(dy));
      require_parity(out.y, expected.y, tol(dtype));
      require_parity(out.mean, expected.mean, tol(dtype));
      require_parity(out.rstd, expected.rstd, tol(dtype));
      require_parity(grads.dx, expected_grads.dx, tol(dtype));
      require_parity(grads.dgamma, expected_grads.dgamma, tol(dtype));
      require_parity(grads.dbeta, expected_grads.dbeta, tol(dtype));
    }
}

TEST_CASE("cuda: Gaussian log-density forward and backward", "[cuda]") {
  if (no_device()) return;
  // (G, N, K, D): a mixture's components, one Gaussian per group (DAC), many points (the
  // dmean / dsigma threads loop over all N), and one of everything.
  const std::vector<std::array<int64_t, 4>> shapes{{3, 37, 4, 2}, {5, 300, 1, 2},
                                                   {2, 700, 3, 5}, {1, 1, 1, 1}};
  for (DType dtype : kFloatTypes)
    for (auto [G, N, K, D] : shapes) {
      INFO(dtype << " G " << G << " N " << N << " K " << K << " D " << D);
      Tensor x = uniform({G, N, D}, 31, dtype, -2, 2), mean = uniform({G, K, D}, 32, dtype);
      Tensor sigma = uniform({G, K, D}, 33, dtype, 0.5, 1.5), dout = uniform({G, N, K}, 34, dtype);
      Tensor expected = ops::gaussian_log_density(widened(x), widened(mean), widened(sigma));
      ops::GaussianGrads expected_grads = ops::gaussian_log_density_backward(
          widened(x), widened(mean), widened(sigma), widened(dout));
      PoisonGuard poison;
      Tensor out = ops::gaussian_log_density(gpu(x), gpu(mean), gpu(sigma));
      ops::GaussianGrads grads =
          ops::gaussian_log_density_backward(gpu(x), gpu(mean), gpu(sigma), gpu(dout));
      require_parity(out, expected, tol(dtype));
      require_parity(grads.dx, expected_grads.dx, tol(dtype));
      require_parity(grads.dmean, expected_grads.dmean, tol(dtype));
      require_parity(grads.dsigma, expected_grads.dsigma, tol(dtype));
    }
}

TEST_CASE("cuda: index_select gathers and index_add scatter-adds (repeated rows)", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes) {
    INFO(dtype);
    Tensor index = random_ints({200}, 31, 50);  // 200 picks of 50 rows: many repeats
    check_op([&](const auto& v) { return ops::index_select(v[0], v[1]); },
             {uniform({50, 3, 7}, 32, dtype), index});
    check_op([&](const auto& v) { return ops::index_add(v[0], v[1], 50); },
             {uniform({200, 3, 7}, 33, dtype), index});
  }
  Tensor bad = Tensor::from_vector({0, 50}, {2}, DType::I32, Device::CUDA);
  Tensor x = gpu(uniform({50, 4}, 34, DType::F32));
  CHECK_THROWS_WITH(ops::index_select(x, bad), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(ops::index_select(x, bad.to(Device::CPU)), Catch::Contains("index on cpu"));
}

TEST_CASE("cuda: fused prelu forward and backward, one slope and per column", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes)
    for (int64_t slopes : {1, 7}) {
      INFO(dtype << ", " << slopes << " slopes");
      Tensor slope = uniform({slopes}, 37, dtype);
      check_op([&](const auto& v) { return ops::prelu(v[0], v[1]); },
               {uniform({300, 7}, 38, dtype), slope});
      check_op([&](const auto& v) { return ops::prelu_backward(v[0], v[1], v[2]).first; },
               {uniform({300, 7}, 38, dtype), slope, uniform({300, 7}, 39, dtype)});
      check_op([&](const auto& v) { return ops::prelu_backward(v[0], v[1], v[2]).second; },
               {uniform({300, 7}, 38, dtype), slope, uniform({300, 7}, 39, dtype)});
    }
}

TEST_CASE("cuda: combine_rows and its transpose match the CPU", "[cuda]") {
  if (no_device()) return;
  RowMapBuilder b;  // 300 rows of 0..6 entries over 80 columns, with repeats and empty rows
  Rng rng(35);
  for (int r = 0; r < 300; ++r) {
    for (int64_t j = rng.randint(0, 7); j > 0; --j) b.add(rng.randint(0, 80), rng.normal());
    b.end_row();
  }
  for (DType dtype : kFloatTypes)
    for (bool transpose : {false, true}) {
      INFO(dtype << (transpose ? " transposed" : ""));
      check_op([&](const auto& v) {
        return ops::combine_rows(v[0], b.build(80, v[0].dtype(), v[0].device()), transpose);
      }, {uniform({transpose ? 300 : 80, 3, 5}, 36, dtype)});
    }
}

TEST_CASE("cuda: adam_step, coupled and decoupled weight decay", "[cuda]") {
  if (no_device()) return;
  for (DType dtype : kFloatTypes)
    for (bool decoupled : {false, true})
      for (int64_t step : {1, 2, 10}) {
        INFO(dtype << " decoupled " << decoupled << " step " << step);
        AdamArgs args{1e-2, 0.9, 0.999, 1e-8, 0.1, decoupled, step};
        Tensor p = uniform({70001}, 35, dtype), g = uniform({70001}, 36, dtype);
        Tensor m = uniform({70001}, 37, dtype), v = uniform({70001}, 38, dtype, 0.0, 1.0);
        Tensor p_gpu = gpu(p), m_gpu = gpu(m), v_gpu = gpu(v);
        Tensor p_ref = widened(p), m_ref = widened(m), v_ref = widened(v);
        ops::adam_step(p_gpu, gpu(g), m_gpu, v_gpu, args);
        ops::adam_step(p_ref, widened(g), m_ref, v_ref, args);
        require_parity(p_gpu, p_ref, tol(dtype));
        require_parity(m_gpu, m_ref, tol(dtype));
        require_parity(v_gpu, v_ref, tol(dtype));
      }
}

TEST_CASE("cuda: TF32 is off unless allowed", "[cuda]") {
  if (no_device()) return;
  REQUIRE_FALSE(cuda::allow_tf32());
  Tensor a = uniform({256, 256}, 39, DType::F32), b = uniform({256, 256}, 40, DType::F32);
  Tensor expected = ops::matmul(widened(a), widened(b));
  cuda::set_allow_tf32(true);
  Tensor fast = ops::matmul(gpu(a), gpu(b));
  cuda::set_allow_tf32(false);
  require_parity(fast, expected, 1e-2);  // TF32: 10-bit mantissa products
  require_parity(ops::matmul(gpu(a), gpu(b)), expected, 1e-5);
}

namespace {

// x copied to `device` as a differentiable op: the gradient is copied back. Lets
// ncl::gradcheck (F64 CPU inputs and output) drive a function whose body runs on the GPU.
Variable to_device(const Variable& x, Device device) {
  Device from = x.device();
  return make_result("to_device", x.value().to(device), {x},
                     [from](const Tensor& dout, const std::vector<bool>&) {
                       return std::vector<Tensor>{dout.to(from)};
                     });
}

// fn's inputs moved to the GPU and its result back, for gradcheck.
GradcheckFn through_gpu(std::function<Variable(const std::vector<Variable>&)> fn) {
  return [fn](const std::vector<Variable>& inputs) {
    std::vector<Variable> on_gpu;
    for (const Variable& x : inputs) on_gpu.push_back(to_device(x, Device::CUDA));
    Variable y = fn(on_gpu);
    REQUIRE(y.device() == Device::CUDA);
    return to_device(y, Device::CPU);
  };
}

}  // namespace

TEST_CASE("cuda: float64 gradient checks through the GPU kernels", "[cuda][grad]") {
  if (no_device()) return;
  using V = std::vector<Variable>;
  const int64_t B = 2, N = 5, D = 8, H = 2;
  Tensor mask_cpu = Tensor::from_vector({0, 1, 0, 0, 1, 1, 0, 0, 1, 0}, {B, N}, DType::I32);
  Tensor mask = gpu(mask_cpu), index = gpu(random_ints({7}, 41, 3));
  auto x = [](const Shape& s, uint64_t seed) { return uniform(s, seed, DType::F64); };
  SECTION("matmul, both transposes") {
    require_gradcheck(
        gradcheck(through_gpu([](const V& v) { return matmul(v[0], v[1], true, true); }),
                  {x({B, 3, 4}, 42), x({B, 5, 3}, 43)}));
  }
  SECTION("attention scores and output: the per-head GEMMs") {
    require_gradcheck(gradcheck(through_gpu([&](const V& v) {
                                  Variable a = softmax(attention_scores(v[0], v[1], H, 0.5), mask);
                                  return attention_output(a, v[2], v[0], H);
                                }),
                                {x({B, 3, D}, 44), x({B, N, D}, 45), x({B, N, D}, 46)}));
  }
  SECTION("masked log_softmax and logsumexp") {
    require_gradcheck(gradcheck(
        through_gpu([&](const V& v) {
          return log_softmax(v[0], mask) + reshape(logsumexp(v[0], mask), {H * B, 3, 1}) * v[1];
        }),
        {x({H * B, 3, N}, 47), x({H * B, 3, 1}, 48)}));
  }
  SECTION("layer norm") {
    require_gradcheck(
        gradcheck(through_gpu([](const V& v) { return layer_norm(v[0], v[1], v[2]); }),
                  {x({7, 33}, 49), x({33}, 50), x({33}, 51)}));
  }
  SECTION("index_select, index_add, max and sum") {
    require_gradcheck(gradcheck(through_gpu([&](const V& v) {
                                  Variable picked = index_select(v[0], index);  // (7, 4)
                                  return index_add(picked, index, 3) + max(v[0], 1, true) +
                                         sum(v[0], 0, true);
                                }),
                                {x({3, 4}, 52)}));
  }
}

TEST_CASE("cuda: one Set Transformer training step agrees with the CPU", "[cuda][models]") {
  if (no_device()) return;
  // The published network; the CPU copy is the F64 reference, the GPU copy runs in F32.
  Rng init(7);
  models::SetTransformer reference(models::SetTransformerConfig{}, init);
  Rng other(8);
  models::SetTransformer on_gpu(models::SetTransformerConfig{}, other);
  auto reference_params = reference.named_parameters();
  auto gpu_params = on_gpu.named_parameters();
  REQUIRE(gpu_params.size() == reference_params.size());
  for (size_t i = 0; i < gpu_params.size(); ++i) {
    REQUIRE(gpu_params[i].first == reference_params[i].first);
    gpu_params[i].second.set_value(reference_params[i].second.value().clone());
  }
  reference.to(DType::F64);
  on_gpu.to(Device::CUDA);

  Rng data_rng(9);
  data::Batch batch = data::MogK4().sample(4, data_rng);  // (4, N, 2) F32, N in [300, 600)
  data::Batch batch_gpu = batch;
  batch_gpu.points = gpu(batch.points);
  batch.points = batch.points.to(DType::F64);
  Variable loss = reference.loss(batch, data_rng);
  loss.backward();
  Variable loss_gpu = on_gpu.loss(batch_gpu, data_rng);
  loss_gpu.backward();
  REQUIRE(loss_gpu.device() == Device::CUDA);
  CHECK(loss_gpu.value().item() == Approx(loss.value().item()).epsilon(1e-4));
  // Some gradients are zero in exact arithmetic (a key bias: softmax ignores a constant added
  // to a row of scores), so every comparison also allows 1e-8 of the model's largest gradient:
  // F32 rounding noise (the CPU's own F32 gradients differ from F64 by under 1e-9 of it). On
  // the CPU the shared-query MABs (ISAB's first, PMA's) leave their key bias without one.
  double largest = 0;
  for (const auto& [name, param] : reference_params)
    largest = std::max(largest, scale_of(test::grad_or_zeros(param)));
  for (const auto& [name, param] : on_gpu.named_parameters()) {
    INFO(name);
    const Variable* expected = nullptr;
    for (const auto& [reference_name, reference_param] : reference_params)
      if (reference_name == name) expected = &reference_param;
    REQUIRE(expected != nullptr);
    REQUIRE(param.grad().device() == Device::CUDA);
    const Tensor expected_grad = test::grad_or_zeros(*expected);
    require_close(param.grad().to(Device::CPU), expected_grad, 1e-4,
                  1e-4 * scale_of(expected_grad) + 1e-8 * largest);
  }
}

TEST_CASE("cuBLAS is opened on demand: a CPU run never maps it", "[cuda]") {
  // A linked cuBLAS costs every process about 210 MiB (tensor/cuda/context.h). ld.so lists each
  // library it maps, dlopen's included, under LD_DEBUG=files.
  std::string csv = ncl::test::temp_file("on_demand.csv");
  std::ofstream(csv) << "0,0\n0.1,0.2\n0.2,0.1\n5,5\n5.2,5.1\n5.1,4.9\n";
  ncl::test::Run r = ncl::test::run_shell("LD_DEBUG=files " + std::string(NCL_BINARY) +
                                          " cluster " + csv + " 2>&1 >/dev/null");
  REQUIRE(r.code == 0);  // the run clustered, all its work done
  REQUIRE_THAT(r.output, Catch::Contains("libopenblas"));  // the listing was captured
  CHECK_THAT(r.output, !Catch::Contains("libcublas"));
}

TEST_CASE("cuBLAS loads and every function ncl calls resolves, without a device", "[cuda]") {
  try {
    cuda::load_cublas();
  } catch (const Error& e) {
    REQUIRE_THAT(e.message(), Catch::Contains("built without CUDA"));  // the stub: nothing to load
  }
}

// ncl's thin-product float32 GEMM kernel (tensor/cpu/small_gemm.h) against a float64 loop, for
// every storage order it takes, edge blocks (rows not a multiple of 6, columns not a multiple
// of 16), leading dimensions wider than the matrices, alpha and beta; and through cpu::gemm on
// the attention products it was written for.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cpu/small_gemm.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;

namespace {

struct Case {
  int64_t m, n, k;
};

// C = alpha·op(A)·op(B) + beta·C (+ a bias per column when with_bias) with lda = cols + 3
// etc., checked entry by entry.
void check_kernel(bool ta, bool tb, Case s, float alpha, float beta, bool with_bias = false) {
  const int64_t a_rows = ta ? s.k : s.m, a_cols = ta ? s.m : s.k;
  const int64_t b_rows = tb ? s.n : s.k, b_cols = tb ? s.k : s.n;
  const int64_t lda = a_cols + 3, ldb = b_cols + 5, ldc = s.n + 2;
  std::mt19937 gen(uint32_t(s.m * 131 + s.n * 17 + s.k + ta * 7 + tb * 3));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(size_t(a_rows * lda)), b(size_t(b_rows * ldb)), c(size_t(s.m * ldc));
  for (float& v : a) v = u(gen);
  for (float& v : b) v = u(gen);
  std::vector<float> bias(size_t(s.n));
  for (float& v : bias) v = 4.0f * u(gen);
  // beta = 0 must not read C: start it as NaN, which would survive 0·C.
  for (float& v : c) v = beta == 0 ? std::numeric_limits<float>::quiet_NaN() : u(gen);
  const std::vector<float> c0 = c;
  if (!cpu::small_sgemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), lda, b.data(), ldb, beta,
                        c.data(), ldc, with_bias ? bias.data() : nullptr)) {
    WARN("this CPU has no AVX2+FMA (OpenBLAS does every product): skipped");
    return;
  }
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < s.k; ++p) {
        double x = ta ? a[size_t(p * lda + i)] : a[size_t(i * lda + p)];
        double y = tb ? b[size_t(j * ldb + p)] : b[size_t(p * ldb + j)];
        acc += x * y;
      }
      double expected = alpha * acc + (beta == 0 ? 0.0 : beta * c0[size_t(i * ldc + j)]) +
                        (with_bias ? bias[size_t(j)] : 0.0);
      INFO("ta=" << ta << " tb=" << tb << " m=" << s.m << " n=" << s.n << " k=" << s.k
                 << " beta=" << beta << " bias=" << with_bias << " at (" << i << ", " << j << ")");
      // k products of values in [-1, 1], each rounded to float: error ≤ k·2⁻²³ or so.
      REQUIRE(std::abs(c[size_t(i * ldc + j)] - expected) <= 2e-7 * double(s.k) + 1e-6);
    }
  // The columns between n and ldc are not C's: untouched.
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = s.n; j < ldc; ++j) {
      float before = c0[size_t(i * ldc + j)], after = c[size_t(i * ldc + j)];
      REQUIRE((after == before || (std::isnan(after) && std::isnan(before))));
    }
}

}  // namespace

TEST_CASE("small_sgemm: every storage order, edge blocks and beta against a float64 loop",
          "[tensor]") {
  // 8 and 32 rows end in two blocks of 4; 7, 13 and 37 in blocks of 4 and 3.
  const Case cases[] = {{1, 1, 1},    {1, 16, 1},    {6, 16, 32},  {7, 17, 3},  {8, 18, 24},
                        {5, 33, 40},  {37, 29, 13},  {13, 70, 300}, {64, 32, 32},
                        {32, 32, 140}};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (Case s : cases)
        for (float beta : {0.0f, 0.5f}) check_kernel(ta, tb, s, 0.75f, beta);
}

TEST_CASE("small_sgemm: a bias added once per entry of C, also over several inner chunks",
          "[tensor]") {
  // k = 300 runs the inner dimension in three chunks of 128: the bias must be added in the
  // first only. Columns not a multiple of 16 put the bias through the edge block's loop.
  const Case cases[] = {{1, 16, 1}, {7, 17, 3}, {37, 29, 13}, {13, 70, 300}, {300, 128, 128}};
  for (bool tb : {false, true})
    for (Case s : cases)
      for (float beta : {0.0f, 0.5f}) check_kernel(false, tb, s, 0.75f, beta, /*with_bias=*/true);
}

TEST_CASE("small_sgemm: the shapes it takes from OpenBLAS", "[tensor]") {
  if (!cpu::small_sgemm_takes(false, false, 500, 32, 32)) {
    WARN("the kernel is off (no AVX2+FMA, OpenBLAS runs AVX-512 kernels, or NCL_THIN_GEMM=0): "
         "skipped");
    return;
  }
  // Attention's thin products, N = 500 points, heads 32 wide, 32 inducing points or keys.
  CHECK(cpu::small_sgemm_takes(false, false, 500, 32, 32));   // P·V, 32 keys
  CHECK(cpu::small_sgemm_takes(false, false, 32, 32, 500));   // P·V, 32 queries over 500 keys
  CHECK(cpu::small_sgemm_takes(true, false, 32, 32, 500));    // dV = Pᵀ·dO
  CHECK(cpu::small_sgemm_takes(true, false, 500, 32, 32));    // dK = dSᵀ·Q
  CHECK(cpu::small_sgemm_takes(false, true, 500, 32, 32));    // Q·Kᵀ with 32 keys (Bᵀ copied)
  CHECK(cpu::small_sgemm_takes(false, true, 32, 500, 32));    // 32 queries·Kᵀ over 500 keys
  CHECK(cpu::small_sgemm_takes(false, false, 32, 128, 128));  // the inducing points' Linear
  // Of the Linear layers' products it takes dY·W (the input's gradient); x·Wᵀ goes through
  // small_sgemm_takes_linear; a weight's gradient over 5,000 points, wider layers, C narrower
  // than a block and a very short inner dimension stay with OpenBLAS.
  CHECK(cpu::small_sgemm_takes(false, false, 5000, 128, 128));
  CHECK(cpu::small_sgemm_takes(false, false, 5000, 256, 128));
  CHECK_FALSE(cpu::small_sgemm_takes(false, false, 5000, 128, 256));
  CHECK_FALSE(cpu::small_sgemm_takes(false, false, 5000, 512, 128));
  CHECK_FALSE(cpu::small_sgemm_takes(false, true, 5000, 128, 128));
  CHECK_FALSE(cpu::small_sgemm_takes(true, false, 128, 128, 5000));
  CHECK_FALSE(cpu::small_sgemm_takes(false, false, 1000, 2, 128));
  CHECK_FALSE(cpu::small_sgemm_takes(true, false, 500, 32, 4));
  // 32 queries over a million keys: Bᵀ's copy would hold 32 M floats per thread.
  CHECK_FALSE(cpu::small_sgemm_takes(false, true, 32, 1000000, 32));
  CHECK(cpu::small_sgemm_takes(false, false, 32, 1000000, 32));
  // A Linear layer's forward with its bias (x·Wᵀ + b): 16 to 128 inputs, 16 to 256 outputs.
  CHECK(cpu::small_sgemm_takes_linear(5000, 128, 128));
  CHECK(cpu::small_sgemm_takes_linear(5000, 256, 128));
  CHECK(cpu::small_sgemm_takes_linear(20, 16, 16));
  CHECK_FALSE(cpu::small_sgemm_takes_linear(5000, 128, 2));    // 2-D points in: OpenBLAS
  CHECK_FALSE(cpu::small_sgemm_takes_linear(5000, 128, 256));  // C read again per 128 inputs
  CHECK_FALSE(cpu::small_sgemm_takes_linear(5000, 5, 128));    // narrower than a block
  CHECK_FALSE(cpu::small_sgemm_takes_linear(5000, 512, 128));
}

TEST_CASE("ops::linear: x·Wᵀ + b on the kernel and on OpenBLAS matches float64", "[tensor]") {
  int saved = ops::cpu_threads();
  ops::set_cpu_threads(2);
  struct Shape3 {
    int64_t rows, in, out;
  };
  // The kernel's shapes (on 1 or 2 threads' row blocks), then OpenBLAS's: 2 inputs, 256 inputs,
  // 5 outputs. The float64 reference runs the same op on widened operands (OpenBLAS's dgemm).
  for (Shape3 s : {Shape3{1, 16, 16}, Shape3{70, 128, 128}, Shape3{2000, 128, 256},
                   Shape3{333, 2, 128}, Shape3{333, 256, 64}, Shape3{333, 128, 5}})
    for (bool with_bias : {true, false}) {
      INFO("rows " << s.rows << " in " << s.in << " out " << s.out << " bias " << with_bias);
      Tensor x = test::random_tensor({s.rows, s.in}, 1, DType::F32);
      Tensor w = test::random_tensor({s.out, s.in}, 2, DType::F32);
      Tensor b = with_bias ? test::random_tensor({s.out}, 3, DType::F32) : Tensor();
      Tensor y = ops::linear(x, w, b);
      REQUIRE(y.shape() == Shape({s.rows, s.out}));
      Tensor expected = ops::matmul(x.to(DType::F64), w.to(DType::F64), false, true);
      if (with_bias) expected = ops::add(expected, b.to(DType::F64));
      test::require_close(y.to(DType::F64), expected, 1e-5, 1e-5);
    }
  ops::set_cpu_threads(saved);
  // No rows: an empty result. No inputs: every row is the bias.
  Tensor b = test::random_tensor({32}, 3, DType::F32);
  Tensor w = test::random_tensor({32, 64}, 2, DType::F32);
  REQUIRE(ops::linear(Tensor::zeros({0, 64}, DType::F32), w, b).shape() == Shape({0, 32}));
  Tensor rows = ops::linear(Tensor::zeros({3, 0}, DType::F32), Tensor::zeros({32, 0}, DType::F32),
                            b);  // (3, 32)
  for (int64_t r = 0; r < 3; ++r)
    test::require_close(ops::slice(rows, 0, r, r + 1).reshape({32}), b, 0, 0);
  Tensor x = test::random_tensor({4, 8}, 1, DType::F32);
  REQUIRE_THROWS_WITH(ops::linear(x, test::random_tensor({3, 8}, 2, DType::F32),
                                  test::random_tensor({4}, 3, DType::F32)),
                      Catch::Matchers::Contains("bias"));
}

TEST_CASE("cpu::gemm on attention's head blocks in float32 matches the naive oracle",
          "[tensor]") {
  int saved = ops::cpu_threads();
  ops::set_cpu_threads(2);
  // S_hb = Q_hb K_hbᵀ (N × 32 keys) and O_hb = P_hb V_hb for Q (B, N, D), K, V (B, 32, D), heads
  // of width 32 read in place with leading dimension D.
  const int64_t B = 3, N = 70, M = 32, H = 4, Dh = 32, D = H * Dh;
  Tensor q = test::random_tensor({B, N, D}, 1, DType::F32);
  Tensor kv = test::random_tensor({B, M, D}, 2, DType::F32);
  GemmArgs s;
  s.batch = H * B, s.inner = B, s.m = N, s.n = M, s.k = Dh, s.trans_b = true;
  s.outer_stride_a = s.outer_stride_b = Dh, s.stride_a = N * D, s.stride_b = M * D;
  s.lda = s.ldb = D, s.stride_c = N * M, s.outer_stride_c = B * N * M;
  Tensor scores = Tensor::zeros({H * B, N, M}, DType::F32), expected = scores.clone();
  cpu::gemm(q, kv, scores, s);
  cpu::gemm_naive(q, kv, expected, s);
  test::require_close(scores, expected, 1e-5, 1e-5);
  GemmArgs o;  // O_hb = P_hb V_hb written into the head blocks of O (B, N, D), beta = 1
  o.batch = H * B, o.inner = B, o.m = N, o.n = Dh, o.k = M, o.beta = 1.0;
  o.stride_a = N * M, o.outer_stride_a = B * N * M;
  o.outer_stride_b = o.outer_stride_c = Dh, o.stride_b = M * D, o.stride_c = N * D;
  o.ldb = o.ldc = D;
  Tensor out = test::random_tensor({B, N, D}, 3, DType::F32), out_expected = out.clone();
  cpu::gemm(scores, kv, out, o);
  cpu::gemm_naive(scores, kv, out_expected, o);
  test::require_close(out, out_expected, 1e-5, 1e-5);
  ops::set_cpu_threads(saved);
}

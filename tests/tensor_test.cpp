// The tensor layer's foundations: Shape, Tensor handles (sharing versus copying), the caching
// allocator, its buckets and its per-thread free lists, PoisonGuard, the Rng's determinism and
// distributions (checked against their standard errors), and the refusals of CUDA allocations
// when no GPU can be used.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <string>
#include <thread>

#include "tensor/backend.h"
#include "tensor/random.h"
#include "tensor/storage.h"
#include "tensor/tensor.h"
#include "tests/helpers.h"

using namespace ncl;
using Catch::Matchers::Contains;

TEST_CASE("Shape: numel, axes, str and the rank limit", "[tensor]") {
  CHECK(Shape{}.numel() == 1);  // rank 0 is a scalar
  CHECK(Shape{2, 3, 4}.numel() == 24);
  CHECK(Shape{2, 0, 4}.numel() == 0);

  Shape s{2, 3, 4};
  CHECK(s[-1] == 4);
  CHECK(s[-3] == 2);
  CHECK(s.normalize_axis(-2) == 1);
  CHECK_THROWS_AS(s[3], Error);
  CHECK_THROWS_AS(s[-4], Error);
  CHECK(s.with(-1, 7) == Shape{2, 3, 7});

  CHECK(s.str() == "(2, 3, 4)");
  CHECK(Shape{5}.str() == "(5,)");
  CHECK(Shape{}.str() == "()");

  CHECK_NOTHROW(Shape{1, 2, 3, 4});
  CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5}), Error);
  CHECK_THROWS_AS((Shape{2, -1}), Error);
}

TEST_CASE("Tensor: reshape shares, clone copies", "[tensor]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::F64);
  Tensor r = x.reshape({3, 2});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.shares_storage_with(x));
  r.data<double>()[5] = 60;
  CHECK(x.data<double>()[5] == 60);
  CHECK_THROWS_AS(x.reshape({4}), Error);

  Tensor c = x.clone();
  CHECK_FALSE(c.shares_storage_with(x));
  CHECK(c.to_vector() == x.to_vector());
  c.data<double>()[0] = -1;
  CHECK(x.data<double>()[0] == 1);
}

TEST_CASE("Tensor: dtype conversion, from_vector and item", "[tensor]") {
  // Values exactly representable in F32 survive F64 -> F32 -> F64 unchanged.
  std::vector<double> values{0.5, -1.25, 3.0, 1024.0, -0.0078125, 7.0};
  Tensor x = Tensor::from_vector(values, {2, 3}, DType::F64);
  Tensor f = x.to(DType::F32);
  CHECK(f.dtype() == DType::F32);
  CHECK(f.nbytes() == 6 * 4);
  CHECK(f.to(DType::F64).to_vector() == values);
  CHECK(x.to(DType::F64).shares_storage_with(x));  // already that dtype: no copy
  CHECK(Tensor::from_vector({2.0, -3.0}, {2}, DType::I32).to(DType::F64).to_vector() ==
        std::vector<double>{2.0, -3.0});

  CHECK_THROWS_AS(Tensor::from_vector({1, 2, 3}, {2, 2}), Error);
  CHECK_THROWS_WITH(Tensor::from_vector({1, 2, 3}, {2, 2}), Contains("(2, 2)"));

  CHECK(Tensor::full({1, 1}, 2.5, DType::F32).item() == 2.5);
  CHECK(Tensor::full({}, -4.0, DType::F64).item() == -4.0);
  CHECK_THROWS_AS(Tensor::zeros({2}).item(), Error);
}

TEST_CASE("CachingAllocator: a repeated allocation pattern hits the OS only once", "[tensor]") {
  CachingAllocator& allocator = allocator_for(Device::CPU);
  allocator.empty_cache();  // so the first iteration must go to the OS
  const std::vector<Shape> shapes{{7}, {64, 33}, {3, 5, 129}, {1000}, {2, 2}};
  const AllocatorStats start = allocator.stats();
  int64_t before = start.os_allocations, after_first = 0;
  for (int iteration = 0; iteration < 100; ++iteration) {
    {
      std::vector<Tensor> live;
      for (const Shape& s : shapes) {
        live.push_back(Tensor::empty(s, DType::F32));
        live.push_back(Tensor::zeros(s, DType::F64));
      }
    }  // all freed: back to the free lists
    int64_t now = allocator.stats().os_allocations;
    if (iteration == 0) {
      after_first = now;
      CHECK(after_first > before);
    } else {
      INFO("iteration " << iteration);
      REQUIRE(now == after_first);
    }
  }
  AllocatorStats end = allocator.stats();
  CHECK(end.cache_hits - start.cache_hits == 99 * 2 * int64_t(shapes.size()));
  CHECK(end.bytes_in_use == start.bytes_in_use);  // everything went back
  CHECK(end.bytes_cached > start.bytes_cached);
  CHECK(end.peak_bytes_in_use >= end.bytes_in_use);
}

namespace {
int64_t raw_blocks = 0;  // blocks the test allocator below holds from the OS
void* counted_alloc(size_t bytes) {
  ++raw_blocks;
  return std::malloc(bytes);
}
void counted_free(void* ptr) {
  --raw_blocks;
  std::free(ptr);
}
// Runs f on a new thread whose free lists are not the calling thread's (slots wrap around
// after CachingAllocator's last one, so the first new thread may share this one's).
void on_other_thread(const std::function<void()>& f) {
  const int mine = CachingAllocator::thread_slot();
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool ran = false;
    std::thread([&] {
      if (CachingAllocator::thread_slot() == mine) return;
      f();
      ran = true;
    }).join();
    if (ran) return;
  }
  FAIL("two new threads in a row got this thread's free lists");
}
}  // namespace

TEST_CASE("CachingAllocator: a thread takes back its own freed blocks first, others' after",
          "[tensor]") {
  {
    CachingAllocator allocator(counted_alloc, counted_free);
    size_t bucket = 0;
    void* mine = allocator.allocate(4096, &bucket);
    void* theirs = nullptr;
    on_other_thread([&] { theirs = allocator.allocate(4096, &bucket); });
    REQUIRE(raw_blocks == 2);
    allocator.release(mine, bucket);
    // Released last: one shared free list would hand `theirs` out next, to either thread.
    on_other_thread([&] { allocator.release(theirs, bucket); });
    void* again = allocator.allocate(4096, &bucket);
    CHECK(again == mine);
    // With its own lists empty, a thread takes another thread's block, not a new one.
    void* taken = allocator.allocate(4096, &bucket);
    CHECK(taken == theirs);
    CHECK(raw_blocks == 2);
    CHECK(allocator.stats().os_allocations == 2);
    allocator.release(again, bucket);
    on_other_thread([&] { allocator.release(taken, bucket); });
    allocator.empty_cache();  // every thread's lists
    CHECK(raw_blocks == 0);
    CHECK(allocator.stats().bytes_cached == 0);
  }
  CHECK(raw_blocks == 0);
}

TEST_CASE("CachingAllocator: a limit refuses what would pass it, with one clear error",
          "[tensor]") {
  {
    CachingAllocator allocator(counted_alloc, counted_free, int64_t(1) << 20);
    size_t first = 0, second = 0;
    void* half = allocator.allocate(size_t(1) << 19, &first);
    REQUIRE_THROWS_WITH(allocator.allocate(size_t(3) << 18, &second),
                        Catch::Contains("out of memory") && Catch::Contains("HINT"));
    REQUIRE(raw_blocks == 1);  // nothing taken from the OS for the refused request
    allocator.release(half, first);
    void* again = allocator.allocate(size_t(3) << 18, &second);  // fits once the first is free
    allocator.release(again, second);
    allocator.empty_cache();
  }
  CHECK(raw_blocks == 0);
}

TEST_CASE("CachingAllocator: bucket sizes cover the request with at most 25% slack", "[tensor]") {
  for (size_t bytes = 1; bytes < (size_t(1) << 22); bytes = bytes * 3 / 2 + 1) {
    for (size_t b : {bytes, bytes + 1, bytes + 255}) {
      size_t bucket = CachingAllocator::bucket_size(b);
      INFO("request " << b << " bucket " << bucket);
      REQUIRE(bucket >= b);
      REQUIRE(double(bucket) <= 1.25 * double(b) + 256);
      REQUIRE(CachingAllocator::bucket_size(bucket) == bucket);  // a bucket is its own bucket
    }
  }
  // Powers of two are buckets; so are their 1.25, 1.5 and 1.75 multiples.
  CHECK(CachingAllocator::bucket_size(4096) == 4096);
  CHECK(CachingAllocator::bucket_size(4097) == 5120);
  CHECK(CachingAllocator::bucket_size(6000) == 6144);
}

TEST_CASE("PoisonGuard fills new floating tensors with NaN while alive", "[tensor]") {
  auto all_nan = [](const Tensor& t) {
    std::vector<double> v = t.to_vector();
    return std::all_of(v.begin(), v.end(), [](double x) { return std::isnan(x); });
  };
  {
    PoisonGuard poison;
    CHECK(all_nan(Tensor::empty({3, 5}, DType::F32)));
    CHECK(all_nan(Tensor::empty({7}, DType::F64)));
    {
      PoisonGuard nested;
    }
    CHECK(all_nan(Tensor::empty({2}, DType::F64)));  // the inner guard restored "on"
    CHECK(Tensor::zeros({4}, DType::F64).to_vector() == std::vector<double>(4, 0.0));
  }
  // Off again: a reused block may hold old NaNs, but zeros must overwrite them.
  CHECK(Tensor::zeros({3, 5}, DType::F32).to_vector() == std::vector<double>(15, 0.0));
}

TEST_CASE("Rng: same seed, same numbers", "[tensor]") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(a.uniform() == b.uniform());
    REQUIRE(a.normal() == b.normal());
    REQUIRE(a.gamma(0.7) == b.gamma(0.7));
    REQUIRE(a.randint(-5, 9) == b.randint(-5, 9));
  }
  CHECK(Rng(42).normal_tensor({4, 3}).to_vector() == Rng(42).normal_tensor({4, 3}).to_vector());
  CHECK(Rng(42).uniform() != c.uniform());
}

TEST_CASE("Rng: distributions have the right moments", "[tensor]") {
  // n = 100000 draws. Every bound is 5 standard errors (seeds are fixed, so this is not flaky;
  // 5 SE means a correct sampler would fail with probability ~1e-6 for a random seed).
  const int n = 100000;
  Rng rng(7);

  SECTION("normal: mean 0 (SE 1/sqrt(n) = 0.0032), variance 1 (SE sqrt(2/n) = 0.0045)") {
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < n; ++i) {
      double x = rng.normal();
      sum += x;
      sum_sq += x * x;
    }
    double mean = sum / n, var = sum_sq / n - mean * mean;
    CHECK(std::abs(mean) < 5 * std::sqrt(1.0 / n));
    CHECK(std::abs(var - 1.0) < 5 * std::sqrt(2.0 / n));
  }
  SECTION("uniform: in [lo, hi), mean (lo + hi) / 2 (SE (hi - lo) / sqrt(12 n))") {
    double sum = 0;
    for (int i = 0; i < n; ++i) {
      double u = rng.uniform(-2.0, 4.0);
      REQUIRE(u >= -2.0);
      REQUIRE(u < 4.0);
      sum += u;
    }
    CHECK(std::abs(sum / n - 1.0) < 5 * 6.0 / std::sqrt(12.0 * n));
  }
  SECTION("gamma: mean = shape (SE sqrt(shape / n)), both sampler branches") {
    for (double shape : {0.4, 1.0, 2.5, 9.0}) {
      double sum = 0;
      for (int i = 0; i < n; ++i) {
        double g = rng.gamma(shape);
        REQUIRE(g > 0);
        sum += g;
      }
      INFO("shape " << shape);
      CHECK(std::abs(sum / n - shape) < 5 * std::sqrt(shape / n));
    }
    CHECK_THROWS_AS(rng.gamma(0.0), Error);
  }
  SECTION("dirichlet: positive and sums to 1") {
    for (int i = 0; i < 100; ++i) {
      std::vector<double> p = rng.dirichlet({0.3, 1.0, 2.0, 5.0});
      REQUIRE(p.size() == 4);
      double total = 0;
      for (double x : p) {
        REQUIRE(x >= 0);
        total += x;
      }
      REQUIRE(std::abs(total - 1.0) < 1e-12);
    }
  }
  SECTION("categorical: frequencies match the weights (SE sqrt(p(1-p)/n) <= 0.0016)") {
    std::vector<double> weights{1.0, 0.0, 2.0, 7.0};  // unnormalised; a zero weight never drawn
    std::vector<int> counts(4, 0);
    for (int i = 0; i < n; ++i) counts[size_t(rng.categorical(weights))]++;
    CHECK(counts[1] == 0);
    for (size_t k = 0; k < 4; ++k) {
      double p = weights[k] / 10.0;
      INFO("category " << k);
      CHECK(std::abs(double(counts[k]) / n - p) < 5 * std::sqrt(p * (1 - p) / n) + 1e-12);
    }
  }
  SECTION("permutation: every index exactly once") {
    for (int64_t size : {0, 1, 2, 17, 1000}) {
      std::vector<int64_t> p = rng.permutation(size);
      std::vector<int64_t> sorted = p;
      std::sort(sorted.begin(), sorted.end());
      std::vector<int64_t> expected(static_cast<size_t>(size));
      std::iota(expected.begin(), expected.end(), 0);
      REQUIRE(sorted == expected);
      if (size == 1000) CHECK(p != expected);  // identity has probability 1/1000!
    }
  }
}

TEST_CASE("CUDA unavailable: every CUDA allocation says why", "[tensor]") {
  // Built without CUDA (the stub), or with CUDA on a machine without a usable GPU.
  if (cuda::available()) return;  // the [cuda] tests cover this machine
  CHECK_THROWS_AS(Tensor::empty({2, 3}, DType::F32, Device::CUDA), Error);
  // (Catch2 2.x matchers hold their parts by reference: combine them inside each check.)
  CHECK_THROWS_WITH(Tensor::empty({2, 3}, DType::F32, Device::CUDA),
                    Contains("built without CUDA") || Contains("no usable CUDA device"));
  CHECK_THROWS_WITH(Tensor::zeros({4}).to(Device::CUDA),
                    Contains("built without CUDA") || Contains("no usable CUDA device"));
}

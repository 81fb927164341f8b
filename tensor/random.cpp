#include "tensor/random.h"

#include <cmath>
#include <numbers>

namespace ncl {

double Rng::uniform() {
  // 53 random bits -> a double in [0, 1).
  return double(engine_() >> 11) * 0x1.0p-53;
}

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

int64_t Rng::randint(int64_t lo, int64_t hi) {
  NCL_CHECK(hi > lo, "Rng::randint: empty range [", lo, ", ", hi, ")");
  uint64_t span = uint64_t(hi - lo);
  // Rejection sampling removes the modulo bias.
  uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t r;
  do r = engine_();
  while (r >= limit);
  return lo + int64_t(r % span);
}

double Rng::normal() {
  // Box–Muller. The second normal it could give is dropped on purpose: then the engine alone
  // is the generator's whole state, and a checkpoint that saves it resumes exactly.
  double u1 = 1.0 - uniform();  // (0, 1], so log is finite
  double u2 = uniform();
  double radius = std::sqrt(-2.0 * std::log(u1));
  double angle = 2.0 * std::numbers::pi * u2;
  return radius * std::cos(angle);
}

double Rng::gamma(double shape) {
  NCL_CHECK(shape > 0, "Rng::gamma: shape must be positive, got ", shape);
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) · U^(1/a).
    double u = 1.0 - uniform();
    return gamma(shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  // Marsaglia & Tsang (2000).
  double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = 1.0 - uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

std::vector<double> Rng::dirichlet(const std::vector<double>& alpha) {
  NCL_CHECK(!alpha.empty(), "Rng::dirichlet: no concentration parameters");
  std::vector<double> out(alpha.size());
  double total = 0;
  for (size_t i = 0; i < alpha.size(); ++i) total += out[i] = gamma(alpha[i]);
  for (double& x : out) x /= total;
  return out;
}

int64_t Rng::categorical(const std::vector<double>& probs) {
  double total = 0;
  for (double p : probs) {
    NCL_CHECK(p >= 0 && std::isfinite(p), "Rng::categorical: invalid weight ", p);
    total += p;
  }
  NCL_CHECK(total > 0, "Rng::categorical: weights sum to zero");
  double u = uniform() * total, acc = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    acc += probs[i];
    if (u < acc) return int64_t(i);
  }
  // Rounding can leave u at the very top; return the last index with positive weight.
  for (size_t i = probs.size(); i-- > 0;)
    if (probs[i] > 0) return int64_t(i);
  return 0;
}

std::vector<int64_t> Rng::permutation(int64_t n) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(randint(0, i + 1))]);
  return p;
}

Tensor Rng::normal_tensor(const Shape& shape, double mean, double stddev, DType dtype,
                          Device device) {
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (double& v : values) v = mean + stddev * normal();
  return Tensor::from_vector(values, shape, dtype, device);
}

Tensor Rng::uniform_tensor(const Shape& shape, double lo, double hi, DType dtype, Device device) {
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (double& v : values) v = uniform(lo, hi);
  return Tensor::from_vector(values, shape, dtype, device);
}

}  // namespace ncl

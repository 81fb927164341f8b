// Rng: the one seeded source of randomness (data generators, initialisation, sampling).
//
// Numbers are always drawn on the CPU from a 64-bit Mersenne twister, with our own transforms
// (Box–Muller normals, Marsaglia–Tsang gammas) rather than std:: distributions, whose outputs
// differ between standard libraries. Same seed, same numbers, on every machine and device.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tensor/tensor.h"

namespace ncl {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}

  double uniform();                    // [0, 1)
  double uniform(double lo, double hi);  // [lo, hi)
  int64_t randint(int64_t lo, int64_t hi);  // [lo, hi), like numpy's randint
  double normal();                     // N(0, 1)
  double gamma(double shape);          // Gamma(shape, 1), shape > 0
  std::vector<double> dirichlet(const std::vector<double>& alpha);
  int64_t categorical(const std::vector<double>& probs);  // index drawn with these weights
  std::vector<int64_t> permutation(int64_t n);             // a uniform shuffle of 0..n-1

  // Tensors filled on the CPU, then copied to `device`.
  Tensor normal_tensor(const Shape& shape, double mean = 0.0, double stddev = 1.0,
                       DType dtype = DType::F32, Device device = Device::CPU);
  Tensor uniform_tensor(const Shape& shape, double lo, double hi, DType dtype = DType::F32,
                        Device device = Device::CPU);

  // The whole generator state (no cached values), for checkpoints that resume a run exactly.
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace ncl

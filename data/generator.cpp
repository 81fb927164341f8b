#include "data/generator.h"

#include <algorithm>

#include "data/crp.h"
#include "data/mog.h"
#include "tensor/error.h"

namespace ncl::data {

Batch MogK4::sample(int64_t batch, Rng& rng) const {
  NCL_CHECK(batch >= 1, name_, ": batch must be >= 1, got ", batch);
  const int64_t K = 4, D = 2, N = rng.randint(n_min_, n_max_);
  const double stddev = 0.3;
  Batch out;
  out.points = Tensor::empty({batch, N, D});  // (B, N, D)
  float* x = out.points.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    GaussianMixture truth;
    truth.dim = D;
    truth.weights = rng.dirichlet(std::vector<double>(K, 1.0));
    for (int64_t i = 0; i < K * D; ++i) truth.means.push_back(rng.uniform(-4.0, 4.0));
    truth.stddevs.assign(K * D, stddev);
    std::vector<int> labels(N);
    for (int64_t n = 0; n < N; ++n) {
      int k = int(rng.categorical(truth.weights));
      labels[n] = k;
      for (int64_t d = 0; d < D; ++d)
        x[(b * N + n) * D + d] = float(truth.means[k * D + d] + stddev * rng.normal());
    }
    out.labels.push_back(std::move(labels));
    out.truth.push_back(std::move(truth));
  }
  return out;
}

std::vector<std::string> generator_names() {
  return {"mog-k4",     "mog-k4-paper", "mog",       "mog-4",  "mog-12",
          "warped-mog", "warped-4",     "warped-12", "crp-mog"};
}

// `mog` and `warped-mog` are DAC's training data (K ≤ 4, N ∈ [300, 1000)); the -4 / -12 names
// are its benchmark settings (K ≤ 4, N ∈ [300, 1000) and K ≤ 12, N ∈ [900, 3000)).
std::unique_ptr<Generator> make_generator(const std::string& name) {
  if (name == "mog-k4") return std::make_unique<MogK4>();
  if (name == "mog-k4-paper") return std::make_unique<MogK4>(100, 501, name);
  if (name == "mog" || name == "mog-4") return std::make_unique<Mog>(name, 4, 1000);
  if (name == "mog-12") return std::make_unique<Mog>(name, 12, 3000);
  if (name == "warped-mog" || name == "warped-4") return std::make_unique<WarpedMog>(name, 4, 1000);
  if (name == "warped-12") return std::make_unique<WarpedMog>(name, 12, 3000);
  if (name == "crp-mog") return std::make_unique<CrpMog>();
  std::string known;
  for (const auto& n : generator_names()) known += (known.empty() ? "" : ", ") + n;
  NCL_CHECK(false, "unknown data generator '", name, "' (known: ", known, ")");
  return nullptr;
}

}  // namespace ncl::data

#include "data/mog.h"

#include <cmath>
#include <numbers>

#include "tensor/error.h"

namespace ncl::data {

namespace {

// One dataset's partition: the component of every point, renumbered 0..K'-1 over the
// components that got points; `used` lists those components in that order.
struct Partition {
  std::vector<int> labels;
  std::vector<int64_t> used;
};

Partition sample_partition(int64_t max_clusters, int64_t points, double alpha, Rng& rng) {
  std::vector<double> weights = rng.dirichlet(std::vector<double>(max_clusters, alpha));
  for (int64_t k = 1; k < max_clusters; ++k)
    if (rng.uniform() < 0.5) weights[k] = 0.0;  // component dropped (0 is always kept)
  std::vector<int> component(points);
  for (int& c : component) c = int(rng.categorical(weights));  // categorical renormalises
  std::vector<int> id(max_clusters, -1);
  Partition p;
  for (int64_t k = 0; k < max_clusters; ++k)
    for (int c : component)
      if (c == k) {
        id[k] = int(p.used.size());
        p.used.push_back(k);
        break;
      }
  for (int c : component) p.labels.push_back(id[c]);
  return p;
}

// σ = exp(log 0.25 + 0.1·ε): log-normal around 0.25.
double sample_stddev(Rng& rng) { return std::exp(std::log(0.25) + 0.1 * rng.normal()); }

int64_t sample_size(int64_t max_points, Rng& rng) {
  return rng.randint(int64_t(0.3 * double(max_points)), max_points);
}

}  // namespace

RandomPartitionGenerator::RandomPartitionGenerator(std::string name, int64_t max_clusters,
                                                   int64_t max_points)
    : name_(std::move(name)), max_clusters_(max_clusters), max_points_(max_points) {
  NCL_CHECK(max_clusters >= 1 && max_points >= 4, name_, ": needs K_max >= 1 and N_max >= 4");
}

Batch Mog::sample(int64_t batch, Rng& rng) const {
  const int64_t D = 2, N = sample_size(max_points_, rng);
  Batch out;
  out.points = Tensor::empty({batch, N, D});  // (B, N, D)
  float* x = out.points.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    Partition p = sample_partition(max_clusters_, N, 1.0, rng);
    const int64_t K = int64_t(p.used.size());
    GaussianMixture truth{D, std::vector<double>(K, 0.0), {}, {}};
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t d = 0; d < D; ++d) truth.means.push_back(3.0 * rng.normal());
      for (int64_t d = 0; d < D; ++d) truth.stddevs.push_back(sample_stddev(rng));
    }
    for (int64_t n = 0; n < N; ++n) {
      const int k = p.labels[n];
      truth.weights[k] += 1.0 / double(N);  // empirical proportions
      for (int64_t d = 0; d < D; ++d)
        x[(b * N + n) * D + d] = float(truth.means[k * D + d] + truth.stddevs[k * D + d] * rng.normal());
    }
    out.labels.push_back(std::move(p.labels));
    out.truth.push_back(std::move(truth));
  }
  return out;
}

Batch WarpedMog::sample(int64_t batch, Rng& rng) const {
  const int64_t N = sample_size(max_points_, rng);
  const double spread = double(std::min<int64_t>(max_clusters_, 4));
  Batch out;
  out.points = Tensor::empty({batch, N, 2});  // (B, N, 2)
  float* x = out.points.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    Partition p = sample_partition(max_clusters_, N, 5.0, rng);
    struct Cluster {
      double mu, sigma, a, b, cos_rho, sin_rho, shift_x, shift_y;
    };
    std::vector<Cluster> clusters;
    for (size_t k = 0; k < p.used.size(); ++k) {
      Cluster c;
      c.mu = 3.0 * rng.normal();
      c.sigma = sample_stddev(rng);
      c.a = 2.0 * rng.normal();
      c.b = 2.0 * rng.normal();
      double rho = rng.uniform(0.0, 2.0 * std::numbers::pi);
      c.cos_rho = std::cos(rho);
      c.sin_rho = std::sin(rho);
      c.shift_x = spread * rng.normal();
      c.shift_y = spread * rng.normal();
      clusters.push_back(c);
    }
    for (int64_t n = 0; n < N; ++n) {
      const Cluster& c = clusters[p.labels[n]];
      double phi = 2.0 * std::numbers::pi * 0.4 * (c.mu + c.sigma * rng.normal());
      double ex = c.a * std::cos(phi), ey = c.b * std::sin(phi);
      // Unit normal of the ellipse at φ: ∝ (b cos φ, a sin φ).
      double nx = c.b * std::cos(phi), ny = c.a * std::sin(phi), len = std::hypot(nx, ny);
      double t = 0.1 * rng.normal();
      if (len > 0) ex += t * nx / len, ey += t * ny / len;
      // Row vector times [[cos ρ, −sin ρ], [sin ρ, cos ρ]], then the cluster's offset.
      x[(b * N + n) * 2 + 0] = float(ex * c.cos_rho + ey * c.sin_rho + c.shift_x);
      x[(b * N + n) * 2 + 1] = float(-ex * c.sin_rho + ey * c.cos_rho + c.shift_y);
    }
    out.labels.push_back(std::move(p.labels));
  }
  return out;
}

}  // namespace ncl::data

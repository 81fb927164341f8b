// DAC inference (models/dac.h): clustering one set by filtering, in four steps.
//   1. Filtering: pass i runs the network on the points no earlier pass claimed (dropped from
//      the set, not only masked, so later passes cost less) and claims those with logit > 0.
//   2. Leftovers: points no pass claimed are placed by InferenceOptions::leftovers.
//   3. Refinement (InferenceOptions::refine, on by default): every cluster's θ is proposed
//      again from its members alone, a set holding one cluster, where the proposal has nothing
//      to tell apart (the encoder and PMA only, no membership head; the clusters on the CPU
//      threads at once). Then every point joins the cluster of highest weighted density
//      π_k p(x | θ_k), π the clusters' shares, repeated until no point moves; clusters left
//      empty are dropped. Off, the densities are those of the passes that found the clusters,
//      as in the reference code (reference notes §3.8).
//   3b. Pruning (InferenceOptions::prune, with the refinement): the cluster whose removal costs
//      the clustering's log-likelihood least is removed, its points joining their next most
//      probable cluster (whose θ is proposed again from its new members), while that cost is
//      below BIC's price of one more diagonal Gaussian, ½(2D+1)·ln N. It removes the
//      splinters of 1-3 points that a pass leaves at the edge of a cluster it claimed
//      (docs/training.md, "Pruning").
//   4. The mixture: weights = shares of the points, densities p(x | θ_k); its mean per-point
//      log-likelihood and each point's posterior over the clusters.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>

#include "autograd/functions.h"
#include "models/dac.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace ncl::models {
namespace {

// log(c_k / total + 1e-10) per cluster: the mixture weights of clusters with c_k points.
std::vector<double> log_weights(const std::vector<double>& counts, double total) {
  std::vector<double> w(counts.size());
  for (size_t k = 0; k < counts.size(); ++k) w[k] = std::log(counts[k] / total + 1e-10);
  return w;
}

// The k maximising ll[k·N + n] + lw[k]: point n's most probable cluster.
int most_probable(const std::vector<double>& ll, const std::vector<double>& lw, int64_t N, int64_t n) {
  int best = 0;
  for (int k = 1; k < int(lw.size()); ++k)
    if (ll[k * N + n] + lw[k] > ll[best * N + n] + lw[best]) best = k;
  return best;
}

// The refinement's state: K clusters' log-densities at the N points, (K, N) row-major, and
// every point's cluster. Its score is the clustering's log-likelihood
// Σ_n log π_z(n) p(x_n | θ_z(n)) with π the clusters' shares of the points.
struct HardClustering {
  int64_t N = 0;
  std::vector<double> ll;
  std::vector<int> labels;

  int64_t clusters() const { return int64_t(ll.size()) / N; }
  std::vector<double> counts() const {
    std::vector<double> c(clusters(), 0.0);
    for (int label : labels) c[label] += 1.0;
    return c;
  }
  // Σ_k c_k log(c_k / N): the score's share of the weights.
  double weight_score(const std::vector<double>& c) const {
    double sum = 0.0;
    for (double ck : c)
      if (ck > 0.0) sum += ck * std::log(ck / double(N));
    return sum;
  }
  // Each point to its most probable cluster, the weights following the shares, until no point
  // moves: every move raises the score, and so does updating π to the shares, so no labelling
  // repeats and the loop ends. Returns the clusters left empty.
  std::vector<int> settle() {
    for (bool moved = true; moved;) {
      moved = false;
      std::vector<double> lw = log_weights(counts(), double(N));
      for (int64_t n = 0; n < N; ++n) {
        const int best = most_probable(ll, lw, N, n);
        moved |= best != labels[n];
        labels[n] = best;
      }
    }
    std::vector<int> empty;
    std::vector<double> c = counts();
    for (int k = 0; k < int(c.size()); ++k)
      if (c[k] == 0.0) empty.push_back(k);
    return empty;
  }
  // Where the points of cluster k go without it: each to its most probable other cluster under
  // the present weights (−1 for points outside k).
  std::vector<int> without(int k) const {
    std::vector<double> lw = log_weights(counts(), double(N));
    lw[k] = -std::numeric_limits<double>::infinity();
    std::vector<int> to(N, -1);
    for (int64_t n = 0; n < N; ++n)
      if (labels[n] == k) to[n] = most_probable(ll, lw, N, n);
    return to;
  }
  // What removing cluster k (its points moved as without(k) says) lowers the score by. The
  // settling that follows only raises the score again, so this bounds the true cost above.
  double removal_cost(int k) const {
    std::vector<int> to = without(k);
    std::vector<double> before = counts(), after = before;
    double cost = weight_score(before);
    for (int64_t n = 0; n < N; ++n)
      if (to[n] >= 0) {
        cost += ll[k * N + n] - ll[to[n] * N + n];
        after[k] -= 1.0, after[to[n]] += 1.0;
      }
    return cost - weight_score(after);
  }
  // Removes cluster k (the labels above k shift down by one) after moving its points; returns
  // where they went, as without(k) (indices before the shift).
  std::vector<int> remove(int k) {
    std::vector<int> to = without(k);
    for (int64_t n = 0; n < N; ++n) {
      if (to[n] >= 0) labels[n] = to[n];
      if (labels[n] > k) --labels[n];
    }
    ll.erase(ll.begin() + int64_t(k) * N, ll.begin() + int64_t(k + 1) * N);
    return to;
  }
};

}  // namespace

std::vector<double> Dac::densities(const std::vector<double>& points, const Tensor& theta) const {
  const int64_t D = config_.dim_input, N = int64_t(points.size()) / D, K = theta.dim(0);
  std::vector<double> out(K * N);
  if (!flow_) {
    std::vector<double> t = theta.to_vector();
    const double half_log_2pi = 0.5 * std::log(2.0 * std::numbers::pi);
    for (int64_t k = 0; k < K; ++k) {
      const double* mean = &t[k * 2 * D];
      const double* stddev = mean + D;
      for (int64_t n = 0; n < N; ++n) {
        double ll = 0.0;
        for (int64_t d = 0; d < D; ++d) {
          double z = (points[n * D + d] - mean[d]) / stddev[d];
          ll -= 0.5 * z * z + std::log(stddev[d]) + half_log_2pi;
        }
        out[k * N + n] = ll;
      }
    }
    return out;
  }
  // The flow: every point under every cluster's context, K groups of N rows.
  std::vector<double> tiled;
  tiled.reserve(K * N * D);
  for (int64_t k = 0; k < K; ++k) tiled.insert(tiled.end(), points.begin(), points.end());
  Variable x(Tensor::from_vector(tiled, {K * N, D}, DType::F32).to(device()));
  return flow_->log_prob(x, Variable(theta.to(device()))).value().to_vector();
}

ClusterResult Dac::cluster(const std::vector<double>& points, const InferenceOptions& options) const {
  const int64_t D = config_.dim_input, N = int64_t(points.size()) / D;
  NCL_CHECK(N >= 1 && int64_t(points.size()) == N * D, name(), ": ", points.size(),
            " values do not form points of dimension ", D);
  NCL_CHECK(options.max_passes >= 1, name(), ": max_passes must be >= 1");
  NoGradGuard no_grad;
  Rng rng(options.seed);
  ClusterResult result;

  // The points with these indices, as rows (n, D) and as one set (1, n, D); an anchor index
  // among n points (anchored model; −1, no anchor, for the min model).
  auto gather = [&](const std::vector<int64_t>& indices) {
    std::vector<double> x(indices.size() * D);
    for (size_t i = 0; i < indices.size(); ++i)
      std::copy_n(points.begin() + indices[i] * D, D, x.begin() + i * D);
    return x;
  };
  auto set_of = [&](const std::vector<int64_t>& indices) {
    const int64_t n = int64_t(indices.size());
    return Variable(Tensor::from_vector(gather(indices), {1, n, D}, DType::F32).to(device()));
  };
  auto draw_anchor = [&](int64_t n) { return anchor_ ? rng.randint(0, n) : int64_t(-1); };
  auto anchors = [](int64_t anchor) {
    return anchor >= 0 ? std::vector<int64_t>{anchor} : std::vector<int64_t>{};
  };

  // 1. Filtering.
  std::vector<int> labels(N, -1);
  std::vector<int64_t> remaining(N);
  for (int64_t n = 0; n < N; ++n) remaining[n] = n;
  std::vector<std::vector<double>> thetas;  // θ (P) of every cluster found
  std::vector<double> unused;  // θ of a last pass that claimed nothing (run on `remaining`)
  // One pass over the remaining points: their logits, the proposed θ and the anchor (or −1).
  auto run_pass = [&](std::vector<double>& logits, int64_t& anchor) {
    anchor = draw_anchor(int64_t(remaining.size()));
    FilterOutput out = forward(set_of(remaining), {}, anchors(anchor), /*with_density=*/false);
    ++result.passes;
    logits = out.logits.value().to_vector();
    return out.theta.value().to_vector();
  };
  while (!remaining.empty() && result.passes < options.max_passes) {
    std::vector<double> logits;
    int64_t anchor = -1;
    std::vector<double> theta = run_pass(logits, anchor);
    std::vector<int64_t> unclaimed;
    const int cluster = int(thetas.size());
    for (int64_t i = 0; i < int64_t(remaining.size()); ++i) {
      if (logits[i] > 0.0 || i == anchor) labels[remaining[i]] = cluster;
      else unclaimed.push_back(remaining[i]);
    }
    if (unclaimed.size() == remaining.size()) {  // claimed nothing: the next pass would too
      unused = std::move(theta);
      break;
    }
    thetas.push_back(std::move(theta));
    remaining = std::move(unclaimed);
    if (options.progress) options.progress(N - int64_t(remaining.size()), N);
  }

  // 2. Leftovers.
  result.leftovers = int64_t(remaining.size());
  const bool own = !remaining.empty() && (thetas.empty() || options.leftovers == Leftovers::Own);
  if (own) {  // a pass on the leftovers (the last one, if it ran on them) makes their cluster
    std::vector<double> logits;
    int64_t anchor = -1;
    thetas.push_back(unused.empty() ? run_pass(logits, anchor) : unused);
    for (int64_t n : remaining) labels[n] = int(thetas.size()) - 1;
  } else if (!remaining.empty() && options.leftovers == Leftovers::First) {
    for (int64_t n : remaining) labels[n] = 0;
  }
  const int64_t P = int64_t(thetas.front().size());
  auto theta_tensor = [&] {  // (K, P)
    std::vector<double> values;
    for (const auto& t : thetas) values.insert(values.end(), t.begin(), t.end());
    return Tensor::from_vector(values, {int64_t(thetas.size()), P}, DType::F32);
  };
  auto count_points = [&] {
    std::vector<double> counts(thetas.size(), 0.0);
    for (int label : labels)
      if (label >= 0) counts[label] += 1.0;
    return counts;
  };
  std::vector<double> counts = count_points();
  if (!remaining.empty() && options.leftovers == Leftovers::Nearest) {
    // Weights from the claimed points only, then each leftover to its most likely cluster.
    const int64_t L = int64_t(remaining.size());
    std::vector<double> lw = log_weights(counts, double(N - L));
    std::vector<double> ll = densities(gather(remaining), theta_tensor());  // (K, L)
    for (int64_t i = 0; i < L; ++i) labels[remaining[i]] = most_probable(ll, lw, L, i);
    counts = count_points();
  }

  // 3. Refinement. The θ of the clusters in `which` proposed again from their members under
  // `by` (one label per point). The proposals are independent: on the CPU they run on the
  // threads at once, each single-threaded, the largest clusters first (one small set cannot
  // keep two threads busy); the anchored model's anchors are drawn in order first.
  auto propose_again = [&](const std::vector<int64_t>& which, const std::vector<int>& by) {
    const int64_t R = int64_t(which.size());
    std::vector<std::vector<int64_t>> members(thetas.size());
    for (int64_t n = 0; n < N; ++n) members[by[n]].push_back(n);
    std::vector<int64_t> anchor(R), order(R);
    for (int64_t r = 0; r < R; ++r) anchor[r] = draw_anchor(int64_t(members[which[r]].size()));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return members[which[a]].size() > members[which[b]].size();
    });
    std::atomic<int64_t> next{0};
    auto propose_in_turn = [&] {
      NoGradGuard no_grad_here;  // grad mode is per thread
      for (int64_t i; (i = next++) < R;) {
        const int64_t r = order[i], k = which[r];
        thetas[k] = propose_theta(set_of(members[k]), {}, anchors(anchor[r])).value().to_vector();
      }
    };
    if (device() == Device::CPU && R >= 2)
      ops::run_cpu_groups(R, [&](int, int64_t, int64_t) { propose_in_turn(); });
    else
      propose_in_turn();
  };
  if (options.refine) {
    std::vector<int64_t> all(thetas.size());
    std::iota(all.begin(), all.end(), 0);
    propose_again(all, labels);
  }
  std::vector<double> ll = densities(points, theta_tensor());  // (K, N)
  if (options.refine) {
    HardClustering hard{N, std::move(ll), std::move(labels)};
    // Drops the clusters `settle` left empty, from the last so the indices hold.
    auto drop_empty = [&](std::vector<int> empty) {
      for (auto k = empty.rbegin(); k != empty.rend(); ++k) {
        hard.remove(*k);  // moves no point: it has none
        thetas.erase(thetas.begin() + *k);
      }
    };
    drop_empty(hard.settle());
    // 3b. Pruning: BIC keeps a cluster when it raises the log-likelihood by more than half
    // its parameter count (D means, D standard deviations, a weight) times ln N. The clusters
    // that take a removed cluster's points have their θ proposed again from their new members,
    // as the refinement did, before the points settle and the next cluster is priced.
    const double price = 0.5 * double(2 * D + 1) * std::log(double(N));
    while (options.prune && hard.clusters() > 1) {
      int cheapest = 0;
      double lowest = std::numeric_limits<double>::infinity();
      for (int k = 0; k < int(hard.clusters()); ++k) {
        const double cost = hard.removal_cost(k);
        if (cost < lowest) lowest = cost, cheapest = k;
      }
      if (lowest >= price) break;
      std::vector<int> to = hard.remove(cheapest);
      thetas.erase(thetas.begin() + cheapest);
      ++result.pruned;
      std::vector<int64_t> takers;  // indices after the removal
      for (int k : to)
        if (k >= 0) takers.push_back(k > cheapest ? k - 1 : k);
      std::sort(takers.begin(), takers.end());
      takers.erase(std::unique(takers.begin(), takers.end()), takers.end());
      propose_again(takers, hard.labels);
      std::vector<double> taken;  // their θ, (R, P)
      for (int64_t k : takers) taken.insert(taken.end(), thetas[k].begin(), thetas[k].end());
      std::vector<double> rows = densities(  // (R, N)
          points, Tensor::from_vector(taken, {int64_t(takers.size()), P}, DType::F32));
      for (size_t r = 0; r < takers.size(); ++r)
        std::copy_n(rows.begin() + int64_t(r) * N, N, hard.ll.begin() + takers[r] * N);
      drop_empty(hard.settle());
    }
    ll = std::move(hard.ll);
    labels = std::move(hard.labels);
    counts = count_points();
  }
  Tensor theta = theta_tensor();

  // 4. The mixture of the clusters' densities with their shares of the points as weights.
  const int64_t K = int64_t(thetas.size());
  std::vector<double> lw = log_weights(counts, double(N));
  result.clusters = K;
  result.labels = labels;
  result.membership.resize(N * K);
  double total_ll = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < K; ++k) top = std::max(top, ll[k * N + n] + lw[k]);
    double sum = 0.0;
    for (int64_t k = 0; k < K; ++k) sum += result.membership[n * K + k] = std::exp(ll[k * N + n] + lw[k] - top);
    for (int64_t k = 0; k < K; ++k) result.membership[n * K + k] /= sum;
    total_ll += top + std::log(sum);
  }
  result.log_likelihood = total_ll / double(N);
  if (!flow_) {
    data::GaussianMixture mixture{D, std::vector<double>(K), {}, {}};
    for (int64_t k = 0; k < K; ++k) {
      mixture.weights[k] = counts[k] / double(N);
      for (int64_t d = 0; d < D; ++d) {
        mixture.means.push_back(thetas[k][d]);
        mixture.stddevs.push_back(thetas[k][D + d]);
      }
    }
    result.mixture = mixture;
  } else {
    // The flow mixture's density for plots (valid while this model is alive).
    result.log_density = [this, theta, lw, K](const std::vector<double>& at) {
      const int64_t M = int64_t(at.size()) / config_.dim_input;
      std::vector<double> per_cluster = densities(at, theta), out(M);
      for (int64_t m = 0; m < M; ++m) {
        double top = -std::numeric_limits<double>::infinity(), sum = 0.0;
        for (int64_t k = 0; k < K; ++k) top = std::max(top, per_cluster[k * M + m] + lw[k]);
        for (int64_t k = 0; k < K; ++k) sum += std::exp(per_cluster[k * M + m] + lw[k] - top);
        out[m] = top + std::log(sum);
      }
      return out;
    };
  }
  return result;
}

}  // namespace ncl::models

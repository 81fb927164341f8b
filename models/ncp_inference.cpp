// NCP inference: many partial clusterings ("particles") of one dataset advanced together, one
// point per step, with the incremental G of the reference notes §1.2:
//   G_k = G − g(H_k) + g(H_k + h_n)   (k < K),    G_K = G + g(h_n)   (new cluster)
// Each particle caches g(H_k) for its clusters and G = Σ_k g(H_k), so a step evaluates g only
// on the K+1 candidates of each particle (O(K) per point), and f's first layer on U(n) once per
// step for all particles. All particles' candidates of a step are rows of one batch. As in
// training, g rows are carried through f's G weights (Ncp::Fold): "g" and "G" below are the
// hidden-wide W_G g and W_G G.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "autograd/functions.h"
#include "models/ncp.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace ncl::models {

class NcpSearch {
 public:
  // One partial clustering of points 0..n−1 (in reading order).
  struct Particle {
    std::vector<int> labels;
    std::vector<double> H, gH;  // (K, h_dim) cluster sums, (K, hidden) their W_G g
    std::vector<double> G;      // (hidden) W_G Σ_k g(H_k)
    double nll = 0.0;
    int64_t copies = 1;  // sampling: how many of the S draws share this partial clustering
    int64_t clusters(int64_t h_dim) const { return int64_t(H.size()) / h_dim; }
  };
  // Point n's candidates for every particle: rows first[p] .. first[p] + K_p (the last is the
  // new cluster), with their log-probabilities, g(H_k + h_n) and G_k.
  struct Scores {
    std::vector<int64_t> first;
    std::vector<double> log_probs, g_rows, G_rows;
    int64_t candidates(size_t i) const {  // K_i + 1
      return (i + 1 < first.size() ? first[i + 1] : int64_t(log_probs.size())) - first[i];
    }
  };

  NcpSearch(const Ncp& model, const std::vector<double>& points) : m_(model) {
    NoGradGuard no_grad;
    const NcpConfig& c = m_.config_;
    D_ = c.dim_input;
    N_ = int64_t(points.size()) / D_;
    dtype_ = m_.parameters().front().value().dtype();
    Variable x(Tensor::from_vector(points, {N_, D_}, dtype_, m_.device()));
    h_ = m_.h_->forward(x).value().to_vector();  // (N, h_dim)
    // U(n) = Σ_{i>n} q_i, through the U half of f's first layer: (N, hidden).
    std::vector<double> q = m_.q_->forward(x).value().to_vector(), unread(q.size(), 0.0);
    for (int64_t n = N_ - 2; n >= 0; --n)
      for (int64_t j = 0; j < c.h_dim; ++j)
        unread[size_t(n * c.h_dim + j)] = unread[size_t((n + 1) * c.h_dim + j)] + q[size_t((n + 1) * c.h_dim + j)];
    fold_ = m_.folded();
    u_ = linear(Variable(Tensor::from_vector(unread, {N_, c.h_dim}, dtype_, m_.device())), fold_.w_u,
                m_.f_->layer(0).bias).value();
  }

  int64_t size() const { return N_; }

  // Point 0 opens cluster 0.
  Particle start() const {
    NoGradGuard no_grad;
    const int64_t hd = m_.config_.h_dim;
    Particle p;
    p.labels = {0};
    p.H.assign(h_.begin(), h_.begin() + hd);
    p.gH = g_rows(rows(p.H, hd));
    p.G = p.gH;
    return p;
  }

  Scores score(const std::vector<Particle>& particles, int64_t n) const {
    NoGradGuard no_grad;
    const int64_t hd = m_.config_.h_dim, gd = m_.config_.hidden;
    Scores s;
    std::vector<double> candidates;
    for (const Particle& p : particles) {
      s.first.push_back(int64_t(candidates.size()) / hd);
      const int64_t K = p.clusters(hd);
      for (int64_t k = 0; k <= K; ++k)
        for (int64_t j = 0; j < hd; ++j)
          candidates.push_back((k < K ? p.H[size_t(k * hd + j)] : 0.0) + h_[size_t(n * hd + j)]);
    }
    s.g_rows = g_rows(rows(candidates, hd));
    s.G_rows.resize(s.g_rows.size());
    for (size_t i = 0; i < particles.size(); ++i) {
      const Particle& p = particles[i];
      const int64_t K = p.clusters(hd);
      for (int64_t k = 0; k <= K; ++k) {
        const size_t r = size_t((s.first[i] + k) * gd);
        for (int64_t j = 0; j < gd; ++j)
          s.G_rows[r + size_t(j)] = p.G[size_t(j)] - (k < K ? p.gH[size_t(k * gd + j)] : 0.0) +
                                    s.g_rows[r + size_t(j)];
      }
    }
    Variable y1 = rows(s.G_rows, gd) + Variable(ops::slice(u_, 0, n, n + 1));
    std::vector<double> logits = m_.f_->forward_after_first(y1).value().to_vector();
    // log-softmax within each particle's K+1 candidates
    s.log_probs.resize(logits.size());
    for (size_t i = 0; i < particles.size(); ++i) {
      const int64_t begin = s.first[i], end = begin + particles[i].clusters(hd) + 1;
      const double top = *std::max_element(logits.begin() + begin, logits.begin() + end);
      double total = 0.0;
      for (int64_t r = begin; r < end; ++r) total += std::exp(logits[size_t(r)] - top);
      for (int64_t r = begin; r < end; ++r)
        s.log_probs[size_t(r)] = logits[size_t(r)] - top - std::log(total);
    }
    return s;
  }

  // Particle i of the scored step, with point n put in cluster k.
  Particle extend(const Particle& p, const Scores& s, size_t i, int64_t k, int64_t n) const {
    const int64_t hd = m_.config_.h_dim, gd = m_.config_.hidden, K = p.clusters(hd);
    const int64_t r = s.first[i] + k;
    Particle out = p;
    out.labels.push_back(int(k));
    out.nll -= s.log_probs[size_t(r)];
    if (k == K) {
      out.H.insert(out.H.end(), h_.begin() + n * hd, h_.begin() + (n + 1) * hd);
      out.gH.resize(out.gH.size() + size_t(gd));
    } else {
      for (int64_t j = 0; j < hd; ++j) out.H[size_t(k * hd + j)] += h_[size_t(n * hd + j)];
    }
    std::copy(s.g_rows.begin() + r * gd, s.g_rows.begin() + (r + 1) * gd, out.gH.begin() + k * gd);
    std::copy(s.G_rows.begin() + r * gd, s.G_rows.begin() + (r + 1) * gd, out.G.begin());
    return out;
  }

 private:
  // W_G g(H) for rows H, as host values (rows, hidden).
  std::vector<double> g_rows(const Variable& H) const {
    return linear(m_.g_->forward_hidden(H), fold_.m, fold_.c).value().to_vector();
  }

  Variable rows(const std::vector<double>& values, int64_t cols) const {
    return Variable(Tensor::from_vector(values, {int64_t(values.size()) / cols, cols}, dtype_, m_.device()));
  }

  const Ncp& m_;
  int64_t D_ = 0, N_ = 0;
  DType dtype_ = DType::F32;
  std::vector<double> h_;  // (N, h_dim)
  Tensor u_;               // (N, hidden): U(n) through f's first layer, with its bias
  Ncp::Fold fold_;
};

namespace {

using Particle = NcpSearch::Particle;

// Runs the search over all points and returns its final particles. Sampling keeps one particle
// per distinct partial clustering with the number of draws that share it: at each point a
// particle's `copies` draws split multinomially over its candidates (the same distribution as
// drawing each independently), so the cost grows with the number of distinct clusterings,
// not with S.
std::vector<Particle> run_search(const NcpSearch& search, Search mode, int64_t samples, Rng& rng,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  std::vector<Particle> particles{search.start()};
  particles[0].copies = mode == Search::Sample ? samples : 1;
  for (int64_t n = 1; n < search.size(); ++n) {
    if (progress) progress(n, search.size());
    NcpSearch::Scores s = search.score(particles, n);
    std::vector<Particle> next;
    if (mode == Search::Beam) {
      // Every (particle, candidate) by its cumulative NLL; keep the `samples` best.
      std::vector<std::pair<double, std::pair<size_t, int64_t>>> all;
      for (size_t i = 0; i < particles.size(); ++i)
        for (int64_t k = 0; k < s.candidates(i); ++k)
          all.push_back({particles[i].nll - s.log_probs[size_t(s.first[i] + k)], {i, k}});
      const size_t keep = std::min(all.size(), size_t(samples));
      std::partial_sort(all.begin(), all.begin() + long(keep), all.end());
      for (size_t j = 0; j < keep; ++j)
        next.push_back(search.extend(particles[all[j].second.first], s, all[j].second.first,
                                     all[j].second.second, n));
    } else if (mode == Search::Greedy) {
      const int64_t begin = s.first[0];
      int64_t k = 0;
      for (int64_t j = 1; j < s.candidates(0); ++j)
        if (s.log_probs[size_t(begin + j)] > s.log_probs[size_t(begin + k)]) k = j;
      next.push_back(search.extend(particles[0], s, 0, k, n));
    } else {
      for (size_t i = 0; i < particles.size(); ++i) {
        const int64_t begin = s.first[i], count = s.candidates(i);
        std::vector<double> probs;
        for (int64_t j = 0; j < count; ++j) probs.push_back(std::exp(s.log_probs[size_t(begin + j)]));
        auto finite = [](double p) { return std::isfinite(p); };
        NCL_CHECK(std::all_of(probs.begin(), probs.end(), finite),
                  "ncp: the model's choice probabilities are not finite (float32 overflow); HINT: "
                  "points far beyond what the model was trained on (rescale them), or a damaged "
                  "checkpoint");
        std::vector<int64_t> draws(static_cast<size_t>(count), 0);
        for (int64_t c = 0; c < particles[i].copies; ++c) ++draws[size_t(rng.categorical(probs))];
        for (int64_t k = 0; k < count; ++k)
          if (draws[size_t(k)] > 0) {
            next.push_back(search.extend(particles[i], s, i, k, n));
            next.back().copies = draws[size_t(k)];
          }
      }
    }
    particles = std::move(next);
  }
  return particles;
}

// points (N, D) in the order `order` lists them.
std::vector<double> read_in_order(const std::vector<double>& points, int64_t D,
                                  const std::vector<int64_t>& order) {
  std::vector<double> out;
  for (int64_t i : order) out.insert(out.end(), points.begin() + i * D, points.begin() + (i + 1) * D);
  return out;
}

}  // namespace

ClusterResult Ncp::cluster(const std::vector<double>& points, const InferenceOptions& options) const {
  const int64_t D = config_.dim_input;
  NCL_CHECK(!points.empty() && points.size() % size_t(D) == 0, "ncp: points must be (N, ", D,
            ") with N >= 1");
  NCL_CHECK(options.samples >= 1, "ncp: --samples must be >= 1");
  const int64_t N = int64_t(points.size()) / D;
  Rng rng(options.seed);
  const std::vector<int64_t> order = rng.permutation(N);
  const NcpSearch search(*this, read_in_order(points, D, order));
  const std::vector<Particle> found = run_search(search, options.search, options.samples, rng,
                                                     options.progress);

  int64_t draws = 0;
  for (const Particle& p : found) draws += p.copies;
  // Distinct clusterings in the user's order, numbered by first appearance there.
  std::map<std::vector<int>, ClusterResult::Clustering> distinct;
  for (const Particle& p : found) {
    std::vector<int> labels(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) labels[size_t(order[size_t(i)])] = p.labels[size_t(i)];
    labels = relabel_by_appearance(labels);
    auto [it, fresh] = distinct.try_emplace(labels, ClusterResult::Clustering{labels, p.nll, 0.0});
    it->second.weight += double(p.copies) / double(draws);  // the share of the draws (Sample)
  }
  ClusterResult result;
  for (auto& [labels, c] : distinct) result.posterior.push_back(std::move(c));
  std::stable_sort(result.posterior.begin(), result.posterior.end(),
                   [](const auto& a, const auto& b) { return a.nll < b.nll; });
  if (options.search != Search::Sample) {  // weights exp(−NLL), normalised over the beam
    const double best = result.posterior.front().nll;
    double total = 0.0;
    for (const auto& c : result.posterior) total += std::exp(best - c.nll);
    for (auto& c : result.posterior) c.weight = std::exp(best - c.nll) / total;
  }
  result.labels = result.posterior.front().labels;
  result.clusters = *std::max_element(result.labels.begin(), result.labels.end()) + 1;
  // Membership: each clustering votes with its weight; its cluster j stands for the best
  // clustering's cluster it shares the most points with.
  const int64_t K = result.clusters;
  result.membership.assign(size_t(N * K), 0.0);
  for (const auto& c : result.posterior) {
    const int64_t Kc = *std::max_element(c.labels.begin(), c.labels.end()) + 1;
    std::vector<int64_t> overlap(size_t(Kc * K), 0);
    for (int64_t i = 0; i < N; ++i) ++overlap[size_t(c.labels[size_t(i)] * K + result.labels[size_t(i)])];
    for (int64_t i = 0; i < N; ++i) {
      const auto row = overlap.begin() + c.labels[size_t(i)] * K;
      const int64_t to = std::max_element(row, row + K) - row;
      result.membership[size_t(i * K + to)] += c.weight;
    }
  }
  return result;
}

std::optional<double> Ncp::partition_nll(const std::vector<double>& points,
                                         const std::vector<int>& labels, uint64_t seed) const {
  const int64_t D = config_.dim_input, N = int64_t(labels.size());
  NCL_CHECK(N >= 1 && int64_t(points.size()) == N * D, "ncp: partition_nll needs (N, D) points "
            "and N labels");
  Rng rng(seed);
  const std::vector<int64_t> order = rng.permutation(N);
  std::vector<int> read;
  for (int64_t i : order) read.push_back(labels[size_t(i)]);
  read = relabel_by_appearance(read);
  const NcpSearch search(*this, read_in_order(points, D, order));
  std::vector<Particle> forced{search.start()};
  for (int64_t n = 1; n < N; ++n)
    forced = {search.extend(forced[0], search.score(forced, n), 0, read[size_t(n)], n)};
  return forced[0].nll / double(N);
}

}  // namespace ncl::models

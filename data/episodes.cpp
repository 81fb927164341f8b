#include "data/episodes.h"

#include <algorithm>

#include "tensor/error.h"

namespace ncl::data {

LabeledEpisodes::LabeledEpisodes(const PointSet& points, const std::string& name,
                                 EpisodeOptions options)
    : name_(name), dim_(points.features.dim(1)), options_(options) {
  NCL_CHECK(!points.labels.empty(), name,
            ": training needs a label per point; HINT: name a CSV's label column with "
            "--label-column, or give an NPY file's labels with --labels");
  const int64_t N = points.features.dim(0), D = dim_;
  std::vector<double> x = points.features.to_vector();
  standardizer_ = Standardizer::fit(x, D);
  standardizer_.apply(x);
  classes_.resize(points.label_names.size());
  for (int64_t n = 0; n < N; ++n) {
    auto& c = classes_[points.labels[n]];
    c.insert(c.end(), x.begin() + n * D, x.begin() + (n + 1) * D);
  }
  const int64_t classes = int64_t(classes_.size());
  NCL_CHECK(classes >= options_.clusters_min, name, ": has ", classes,
            classes == 1 ? " class" : " classes", " but training episodes need at least ",
            options_.clusters_min);
  options_.clusters_max = std::min(options_.clusters_max, classes);
  options_.points_max = std::min(options_.points_max, N);
  NCL_CHECK(options_.points_max >= options_.clusters_max, name, ": episodes of up to ",
            options_.clusters_max, " classes need at least as many points, but points_max is ",
            options_.points_max);
  options_.points_min = std::clamp(options_.points_min, options_.clusters_max, options_.points_max);
}

Batch LabeledEpisodes::sample(int64_t batch, Rng& rng) const {
  const int64_t D = dim_, N = rng.randint(options_.points_min, options_.points_max + 1);
  Batch out;
  out.points = Tensor::empty({batch, N, D});  // (B, N, D)
  float* x = out.points.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t K = rng.randint(options_.clusters_min, options_.clusters_max + 1);
    std::vector<int64_t> chosen = rng.permutation(int64_t(classes_.size()));
    chosen.resize(K);
    std::vector<double> weights = rng.dirichlet(std::vector<double>(K, 1.0));
    // One point per chosen class, so that all K appear; the other N − K by the proportions.
    std::vector<int64_t> counts(K, 1);
    for (int64_t n = K; n < N; ++n) ++counts[rng.categorical(weights)];
    std::vector<int> labels;
    int64_t row = 0;
    for (int64_t k = 0; k < K; ++k) {
      const std::vector<double>& pool = classes_[chosen[k]];
      const int64_t size = int64_t(pool.size()) / D;
      std::vector<int64_t> order = rng.permutation(size);
      for (int64_t i = 0; i < counts[k]; ++i, ++row) {
        int64_t p = i < size ? order[i] : rng.randint(0, size);
        for (int64_t d = 0; d < D; ++d) x[(b * N + row) * D + d] = float(pool[p * D + d]);
        labels.push_back(int(k));
      }
    }
    // Shuffle the rows so that the points are not ordered by class.
    std::vector<int64_t> perm = rng.permutation(N);
    std::vector<float> rows(x + b * N * D, x + (b + 1) * N * D);
    std::vector<int> shuffled(N);
    for (int64_t n = 0; n < N; ++n) {
      std::copy_n(&rows[perm[n] * D], D, x + (b * N + n) * D);
      shuffled[n] = labels[perm[n]];
    }
    out.labels.push_back(std::move(shuffled));
  }
  return out;
}

}  // namespace ncl::data

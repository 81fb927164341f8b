// Training episodes from the user's labeled file: every dataset of a batch is a random subset of
// the file's classes, with random class proportions, drawn from the standardised points.
//
// For one batch: N ~ U{points_min..points_max}; per dataset: K ~ U{clusters_min..clusters_max}
// distinct classes chosen uniformly, proportions ~ Dir(1), class counts 1 + Multinomial(N − K)
// (every chosen class appears, so a dataset has exactly K clusters), and each class's points
// drawn without replacement (with replacement only when the class has fewer points than it
// must give). Labels are renumbered 0..K-1 per dataset.
#pragma once

#include <vector>

#include "data/generator.h"
#include "data/points.h"
#include "data/standardize.h"

namespace ncl::data {

struct EpisodeOptions {
  int64_t clusters_min = 4, clusters_max = 4;
  int64_t points_min = 300, points_max = 599;  // clipped to the file's size
};

class LabeledEpisodes : public Generator {
 public:
  // points must carry labels; `name` (the file path) appears in errors. Fits the standardiser.
  LabeledEpisodes(const PointSet& points, const std::string& name, EpisodeOptions options);

  std::string name() const override { return name_; }
  int64_t dim() const override { return dim_; }
  int64_t max_clusters() const override { return options_.clusters_max; }
  Batch sample(int64_t batch, Rng& rng) const override;
  const Standardizer& standardizer() const { return standardizer_; }

 private:
  std::string name_;
  int64_t dim_ = 0;
  EpisodeOptions options_;
  Standardizer standardizer_;
  std::vector<std::vector<double>> classes_;  // per class: its standardised points (n_c, D)
};

}  // namespace ncl::data

// Clustering metrics: how well a predicted partition of N points matches the true one.
//
// Labels are arbitrary ints (they need not be contiguous or start at 0); only which points
// share a label matters, so every score is invariant to renaming the labels. The values agree
// with scikit-learn 1.2 (adjusted_rand_score, normalized_mutual_info_score and
// adjusted_mutual_info_score with average_method='arithmetic'), edge cases included.
// Every function taking (truth, pred) throws ncl::Error unless both hold the same number
// N >= 1 of labels.
#pragma once

#include <span>

namespace ncl::data {

// Adjusted Rand index (Hubert & Arabie 1985): pair-counting agreement, 0 in expectation for a
// random labelling, 1 for identical partitions (so also when both are one cluster). Symmetric.
double adjusted_rand_index(std::span<const int> truth, std::span<const int> pred);

// Normalised mutual information: I(truth; pred) / ((H(truth) + H(pred)) / 2), natural log.
// 1 when both labellings are one cluster; 0 when exactly one of them is. Symmetric.
double normalized_mutual_info(std::span<const int> truth, std::span<const int> pred);

// Adjusted mutual information (Vinh, Epps & Bailey 2010), arithmetic normalisation:
// (I − E[I]) / ((H(truth) + H(pred)) / 2 − E[I]), with E[I] exact under the hypergeometric
// (permutation) model. 1 when both are one cluster. Symmetric.
double adjusted_mutual_info(std::span<const int> truth, std::span<const int> pred);

// Number of distinct values in labels (0 for an empty list).
int count_clusters(std::span<const int> labels);

// |count_clusters(truth) − count_clusters(pred)|: the error in the number of clusters found.
double k_abs_error(std::span<const int> truth, std::span<const int> pred);

struct ClusteringScores {
  double ari, nmi, ami, k_mae;  // k_mae is this dataset's k_abs_error; average it over datasets
};

// All four scores at once, sharing one contingency table.
ClusteringScores score_clustering(std::span<const int> truth, std::span<const int> pred);

}  // namespace ncl::data

#include "data/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "tensor/error.h"

namespace ncl::data {

namespace {

// Each label replaced by its rank among the distinct labels: ids 0..count-1.
struct DenseLabels {
  std::vector<int> id;
  int count = 0;
};

DenseLabels dense_labels(std::span<const int> labels) {
  std::vector<int> distinct(labels.begin(), labels.end());
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  DenseLabels out{std::vector<int>(labels.size()), int(distinct.size())};
  for (size_t p = 0; p < labels.size(); ++p)
    out.id[p] = int(std::lower_bound(distinct.begin(), distinct.end(), labels[p]) - distinct.begin());
  return out;
}

// The contingency table of two labellings of n points: row i is true cluster i (a_i points),
// column j is predicted cluster j (b_j points), cell n_ij counts the points in both. Only the
// nonzero cells are kept, since R·C reaches n² when both labellings are nearly all singletons.
struct Contingency {
  int64_t n = 0;
  std::vector<int64_t> a, b;  // (R) row sums, (C) column sums
  struct Cell {
    int i, j;
    int64_t count;  // n_ij > 0
  };
  std::vector<Cell> cells;  // row-major order
};

void check_labelings(const char* metric, std::span<const int> truth, std::span<const int> pred) {
  NCL_CHECK(truth.size() == pred.size(), metric, ": truth has ", truth.size(), " labels but pred has ",
            pred.size(), "; both need one label per point, in the same point order");
  NCL_CHECK(!truth.empty(), metric, ": no labels; a clustering score needs at least one point");
}

Contingency contingency(std::span<const int> truth, std::span<const int> pred) {
  const DenseLabels rows = dense_labels(truth), cols = dense_labels(pred);
  Contingency table;
  table.n = int64_t(truth.size());
  table.a.assign(rows.count, 0);
  table.b.assign(cols.count, 0);
  // Sorting the flat cell index i·C + j of every point groups equal cells, in row-major order.
  std::vector<int64_t> flat(truth.size());
  for (size_t p = 0; p < truth.size(); ++p) {
    ++table.a[rows.id[p]];
    ++table.b[cols.id[p]];
    flat[p] = int64_t(rows.id[p]) * cols.count + cols.id[p];
  }
  std::sort(flat.begin(), flat.end());
  for (size_t start = 0, end = 0; start < flat.size(); start = end) {
    while (end < flat.size() && flat[end] == flat[start]) ++end;
    table.cells.push_back({int(flat[start] / cols.count), int(flat[start] % cols.count),
                           int64_t(end - start)});
  }
  return table;
}

bool both_single_cluster(const Contingency& table) {
  return table.a.size() == 1 && table.b.size() == 1;
}

int64_t pairs(int64_t m) { return m * (m - 1) / 2; }

// Unordered pairs of points: tp together in both labellings, fn together only in truth, fp
// together only in pred, tn apart in both. Then
//   ARI = 2 (tp·tn − fn·fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)),
// which is the textbook (index − expected) / (max − expected) multiplied through by 2·C(n, 2),
// with index = tp, expected = (tp + fn)(tp + fp) / C(n, 2), max = (2tp + fn + fp) / 2.
// fn = fp = 0 means the partitions are identical: ARI = 1, also where the formula reads 0/0
// (both one cluster, or both all singletons). Counts are exact in int64 for n up to ~4e9; the
// products (~n⁴) are formed in double.
double ari_from(const Contingency& table) {
  int64_t tp = 0, same_truth = 0, same_pred = 0;
  for (const auto& cell : table.cells) tp += pairs(cell.count);
  for (int64_t a : table.a) same_truth += pairs(a);
  for (int64_t b : table.b) same_pred += pairs(b);
  const int64_t fn = same_truth - tp, fp = same_pred - tp;
  const int64_t tn = pairs(table.n) - tp - fn - fp;
  if (fn == 0 && fp == 0) return 1.0;
  const double TP = double(tp), FN = double(fn), FP = double(fp), TN = double(tn);
  return 2.0 * (TP * TN - FN * FP) / ((TP + FN) * (FN + TN) + (TP + FP) * (FP + TN));
}

// H = Σ_i (a_i / n) log(n / a_i), in nats; exactly 0 for a single cluster.
double entropy(const std::vector<int64_t>& sizes, int64_t n) {
  double h = 0.0;
  for (int64_t size : sizes) h += double(size) / double(n) * (std::log(double(n)) - std::log(double(size)));
  return h;
}

// log(n·k / (a·b)), the pointwise mutual information of a cell holding k of the n points. The
// ratio is formed first so that an independent cell (n·k = a·b) gives exactly 0.
double log_lift(int64_t n, int64_t k, int64_t a, int64_t b) {
  return std::log(double(n * k) / double(a * b));
}

// I = Σ_ij (n_ij / n) log(n·n_ij / (a_i·b_j)) over the nonzero cells; clamped at 0, its true
// lower bound, against rounding.
double mutual_info(const Contingency& table) {
  double mi = 0.0;
  for (const auto& cell : table.cells)
    mi += double(cell.count) / double(table.n) * log_lift(table.n, cell.count, table.a[cell.i], table.b[cell.j]);
  return std::max(mi, 0.0);
}

// E[I] when pred is a uniformly random relabelling with the same cluster sizes: each n_ij is then
// hypergeometric, so (with a = a_i, b = b_j)
//   E[I] = Σ_ij Σ_k (k / n) log(n·k / (a·b)) P(n_ij = k),   max(1, a + b − n) ≤ k ≤ min(a, b),
//   P(n_ij = k) = a! b! (n − a)! (n − b)! / (n! k! (a − k)! (b − k)! (n − a − b + k)!),
// with the factorials as a table of log k! = lgamma(k + 1). k = 0 adds nothing. Cost
// O(n + Σ_ij min(a_i, b_j)) ≤ O(R·C·min(max a, max b)).
double expected_mutual_info(const Contingency& table) {
  const int64_t n = table.n;
  std::vector<double> log_factorial(n + 1);
  for (int64_t k = 0; k <= n; ++k) log_factorial[k] = std::lgamma(double(k) + 1.0);
  const auto& lf = log_factorial;
  double emi = 0.0;
  for (int64_t a : table.a)
    for (int64_t b : table.b) {
      const double log_margins = lf[a] + lf[b] + lf[n - a] + lf[n - b] - lf[n];
      for (int64_t k = std::max<int64_t>(1, a + b - n); k <= std::min(a, b); ++k) {
        const double log_p = log_margins - lf[k] - lf[a - k] - lf[b - k] - lf[n - a - b + k];
        emi += double(k) / double(n) * log_lift(n, k, a, b) * std::exp(log_p);
      }
    }
  return emi;
}

double arithmetic_mean_entropy(const Contingency& table) {
  return (entropy(table.a, table.n) + entropy(table.b, table.n)) / 2.0;
}

// Both one cluster: a perfect match, 1. Otherwise the mean entropy is > 0, and I = 0 (so NMI
// = 0) when either labelling is one cluster.
double nmi_from(const Contingency& table) {
  if (both_single_cluster(table)) return 1.0;
  return mutual_info(table) / arithmetic_mean_entropy(table);
}

// Both one cluster: 1. Otherwise the mean entropy is ≥ E[I] in exact arithmetic, and like
// scikit-learn the denominator is kept at least eps from 0, with its sign, against rounding.
// Both labellings all singletons is 0/0 (I = E[I] = mean = log n): the score then depends on
// rounding, in scikit-learn too; 0 where I and E[I] round equal (n = 2, 4), else mostly 1.
double ami_from(const Contingency& table) {
  if (both_single_cluster(table)) return 1.0;
  const double mi = mutual_info(table), emi = expected_mutual_info(table);
  const double eps = std::numeric_limits<double>::epsilon();
  double denominator = arithmetic_mean_entropy(table) - emi;
  denominator = denominator < 0.0 ? std::min(denominator, -eps) : std::max(denominator, eps);
  return (mi - emi) / denominator;
}

double k_error_from(const Contingency& table) {
  return double(std::abs(int64_t(table.a.size()) - int64_t(table.b.size())));
}

}  // namespace

double adjusted_rand_index(std::span<const int> truth, std::span<const int> pred) {
  check_labelings("adjusted_rand_index", truth, pred);
  return ari_from(contingency(truth, pred));
}

double normalized_mutual_info(std::span<const int> truth, std::span<const int> pred) {
  check_labelings("normalized_mutual_info", truth, pred);
  return nmi_from(contingency(truth, pred));
}

double adjusted_mutual_info(std::span<const int> truth, std::span<const int> pred) {
  check_labelings("adjusted_mutual_info", truth, pred);
  return ami_from(contingency(truth, pred));
}

int count_clusters(std::span<const int> labels) { return dense_labels(labels).count; }

double k_abs_error(std::span<const int> truth, std::span<const int> pred) {
  check_labelings("k_abs_error", truth, pred);
  return double(std::abs(count_clusters(truth) - count_clusters(pred)));
}

ClusteringScores score_clustering(std::span<const int> truth, std::span<const int> pred) {
  check_labelings("score_clustering", truth, pred);
  const Contingency table = contingency(truth, pred);
  return {ari_from(table), nmi_from(table), ami_from(table), k_error_from(table)};
}

}  // namespace ncl::data

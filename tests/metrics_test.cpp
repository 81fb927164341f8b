// Clustering metrics: agreement with scikit-learn 1.2 on a golden fixture, hand-worked small
// cases, E[I] against brute-force enumeration, invariance to renaming labels and to the order of
// the points, symmetry, no overflow at n = 1e6, and clear errors on bad input.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/metrics.h"
#include "tensor/error.h"

using namespace ncl::data;
using Labels = std::vector<int>;

namespace {

struct FixtureCase {
  Labels truth, pred;
  double ari, nmi, ami;
};

// ../shared/testdata/metrics.json, written by scikit-learn 1.2.1.
std::vector<FixtureCase> load_fixture() {
  const std::string path = std::string(NCL_TESTDATA_DIR) + "/metrics.json";
  std::ifstream in(path);
  REQUIRE(in.good());
  const nlohmann::json doc = nlohmann::json::parse(in);
  std::vector<FixtureCase> cases;
  for (const auto& c : doc.at("cases"))
    cases.push_back({c.at("true").get<Labels>(), c.at("pred").get<Labels>(), c.at("ari").get<double>(),
                     c.at("nmi").get<double>(), c.at("ami").get<double>()});
  return cases;
}

// H = Σ_i (a_i / n) log(n / a_i), from the cluster sizes.
double entropy_of_sizes(const std::vector<double>& sizes) {
  double n = 0.0, h = 0.0;
  for (double s : sizes) n += s;
  for (double s : sizes) h += s / n * std::log(n / s);
  return h;
}

double entropy_of(const Labels& labels) {
  std::vector<double> sizes;
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (size_t start = 0, end = 0; start < sorted.size(); start = end) {
    while (end < sorted.size() && sorted[end] == sorted[start]) ++end;
    sizes.push_back(double(end - start));
  }
  return entropy_of_sizes(sizes);
}

// I(truth; pred) recovered from NMI: NMI · (H(truth) + H(pred)) / 2 (valid unless both are one
// cluster).
double mutual_info_of(const Labels& truth, const Labels& pred) {
  return normalized_mutual_info(truth, pred) * (entropy_of(truth) + entropy_of(pred)) / 2.0;
}

}  // namespace

TEST_CASE("metrics match scikit-learn 1.2 on the golden fixture", "[metrics]") {
  const std::vector<FixtureCase> cases = load_fixture();
  REQUIRE(cases.size() > 10);  // the loop below must not pass vacuously
  for (size_t c = 0; c < cases.size(); ++c) {
    const FixtureCase& f = cases[c];
    INFO("fixture case " << c << " (n = " << f.truth.size() << ")");
    CHECK(adjusted_rand_index(f.truth, f.pred) == Approx(f.ari).margin(1e-9).epsilon(0));
    CHECK(normalized_mutual_info(f.truth, f.pred) == Approx(f.nmi).margin(1e-9).epsilon(0));
    CHECK(adjusted_mutual_info(f.truth, f.pred) == Approx(f.ami).margin(1e-9).epsilon(0));
    const ClusteringScores all = score_clustering(f.truth, f.pred);
    CHECK(all.ari == adjusted_rand_index(f.truth, f.pred));
    CHECK(all.nmi == normalized_mutual_info(f.truth, f.pred));
    CHECK(all.ami == adjusted_mutual_info(f.truth, f.pred));
    CHECK(all.k_mae == k_abs_error(f.truth, f.pred));
  }
}

TEST_CASE("ARI and NMI of a hand-worked 6-point example", "[metrics]") {
  // truth {0,0,0,1,1,1}, pred {0,0,1,1,2,2}: contingency rows (2 1 0) and (0 1 2);
  // a = (3, 3), b = (2, 2, 2), n = 6.
  const Labels truth{0, 0, 0, 1, 1, 1}, pred{0, 0, 1, 1, 2, 2};
  // Unordered pairs, C(6, 2) = 15 in all. Together in both: tp = C(2,2) + C(2,2) = 2.
  // Together in truth: 2·C(3,2) = 6, so fn = 4. Together in pred: 3·C(2,2) = 3, so fp = 1.
  // tn = 15 − 2 − 4 − 1 = 8. ARI = 2(tp·tn − fn·fp) / ((tp+fn)(fn+tn) + (tp+fp)(fp+tn))
  //                              = 2(16 − 4) / (6·12 + 3·9) = 24 / 99 = 8/33.
  // (Textbook form: expected = 6·3/15 = 1.2, max = (6+3)/2 = 4.5, (2 − 1.2)/(4.5 − 1.2) = 8/33.)
  CHECK(adjusted_rand_index(truth, pred) == Approx(8.0 / 33.0).epsilon(1e-14));
  // H(truth) = log 2, H(pred) = log 3. I = Σ (n_ij/n) log(n·n_ij/(a_i·b_j)):
  // the two cells holding 2 give 2·(2/6) log(12/6) = (2/3) log 2; the cells holding 1 give
  // (1/6) log(6/6) = 0. NMI = (2/3) log 2 / ((log 2 + log 3)/2) = (4/3) log 2 / log 6 ≈ 0.5158.
  CHECK(normalized_mutual_info(truth, pred) == Approx(4.0 / 3.0 * std::log(2.0) / std::log(6.0)).epsilon(1e-14));
}

TEST_CASE("ARI is -1/(n-2) and NMI is exactly 0 for independent halvings", "[metrics]") {
  // truth = p mod 2, pred = ⌊p/2⌋ mod 2 with n = 4m: every cell holds m = n/4 points.
  // tp = 4·C(m,2), same-truth = same-pred = 2·C(2m,2); working through the textbook form gives
  // ARI = −m/(2m(2m−1)) = −1/(n−2). Each cell has n·n_ij = a_i·b_j, so I = 0 exactly.
  // n = 4: -1/2 by hand (tp = 0, fn = fp = tn = 2: 2(0 − 4)/(2·4 + 2·4)). n = 1e6 would overflow
  // tp·tn in int64 (~1e22).
  for (int n : {4, 8, 1000, 1000000}) {
    INFO("n = " << n);
    Labels truth(n), pred(n);
    for (int p = 0; p < n; ++p) truth[p] = p % 2, pred[p] = (p / 2) % 2;
    CHECK(adjusted_rand_index(truth, pred) == Approx(-1.0 / (n - 2)).epsilon(1e-9));
    CHECK(normalized_mutual_info(truth, pred) == 0.0);
  }
}

TEST_CASE("expected mutual information matches brute-force enumeration", "[metrics]") {
  // Under the permutation model, pred is shuffled with its cluster sizes kept; every distinct
  // arrangement of the multiset pred is equally likely, and next_permutation lists each once.
  // AMI = (I − E[I]) / ((H(truth) + H(pred))/2 − E[I]) with E[I] the mean of I over them.
  const std::vector<std::pair<Labels, Labels>> examples = {
      {{0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2}},
      {{0, 0, 1, 1, 2, 2, 2}, {0, 0, 0, 0, 1, 1, 2}},
      {{0, 0, 0, 0, 1}, {0, 1, 1, 2, 2}},
  };
  for (const auto& [truth, pred] : examples) {
    Labels arrangement = pred;
    std::sort(arrangement.begin(), arrangement.end());
    double sum = 0.0;
    int count = 0;
    do {
      sum += mutual_info_of(truth, arrangement);
      ++count;
    } while (std::next_permutation(arrangement.begin(), arrangement.end()));
    const double emi = sum / count;
    const double mean_h = (entropy_of(truth) + entropy_of(pred)) / 2.0;
    const double expected = (mutual_info_of(truth, pred) - emi) / (mean_h - emi);
    CHECK(adjusted_mutual_info(truth, pred) == Approx(expected).margin(1e-12));
  }
}

TEST_CASE("edge-case conventions follow scikit-learn", "[metrics]") {
  const Labels one{3, 3, 3, 3}, other_one{-1, -1, -1, -1}, singletons{0, 1, 2, 3}, halves{0, 0, 1, 1};
  SECTION("both one cluster (and a single point): a perfect match") {
    CHECK(adjusted_rand_index(one, other_one) == 1.0);
    CHECK(normalized_mutual_info(one, other_one) == 1.0);
    CHECK(adjusted_mutual_info(one, other_one) == 1.0);
    const Labels point{7}, other_point{-2};
    CHECK(score_clustering(point, other_point).ari == 1.0);
    CHECK(score_clustering(point, other_point).nmi == 1.0);
    CHECK(score_clustering(point, other_point).ami == 1.0);
  }
  SECTION("exactly one labelling a single cluster: no information, 0") {
    CHECK(adjusted_rand_index(one, halves) == 0.0);
    CHECK(normalized_mutual_info(one, halves) == 0.0);
    CHECK(adjusted_mutual_info(halves, one) == 0.0);
  }
  SECTION("both all singletons: ARI and NMI 1, AMI 0 (I equals its expectation log n)") {
    const Labels reversed{3, 2, 1, 0};
    CHECK(adjusted_rand_index(singletons, reversed) == 1.0);
    CHECK(normalized_mutual_info(singletons, reversed) == Approx(1.0).epsilon(1e-15));
    CHECK(adjusted_mutual_info(singletons, reversed) == 0.0);
  }
  SECTION("identical partitions that are neither: every score 1") {
    const Labels renamed{5, 5, 9, 9};
    CHECK(adjusted_rand_index(halves, renamed) == 1.0);
    CHECK(normalized_mutual_info(halves, renamed) == Approx(1.0).epsilon(1e-15));
    CHECK(adjusted_mutual_info(halves, renamed) == Approx(1.0).epsilon(1e-15));
  }
}

TEST_CASE("scores are invariant to renaming labels and reordering points, and symmetric", "[metrics]") {
  const std::vector<FixtureCase> cases = load_fixture();
  REQUIRE(cases.size() > 10);
  for (size_t c = 0; c < cases.size(); ++c) {
    const FixtureCase& f = cases[c];
    INFO("fixture case " << c);
    const ClusteringScores base = score_clustering(f.truth, f.pred);
    // Shift truth's ids by +100; map pred's ids through 1000 − 7·id (injective, order reversed).
    Labels shifted = f.truth, scrambled = f.pred;
    for (int& label : shifted) label += 100;
    for (int& label : scrambled) label = 1000 - 7 * label;
    // Reverse the point order of both labellings together.
    Labels truth_reversed(f.truth.rbegin(), f.truth.rend()), pred_reversed(f.pred.rbegin(), f.pred.rend());
    for (const ClusteringScores& other : {score_clustering(shifted, scrambled),
                                          score_clustering(truth_reversed, pred_reversed),
                                          score_clustering(f.pred, f.truth)}) {
      CHECK(other.ari == Approx(base.ari).margin(1e-12));
      CHECK(other.nmi == Approx(base.nmi).margin(1e-12));
      CHECK(other.ami == Approx(base.ami).margin(1e-12));
      CHECK(other.k_mae == base.k_mae);
    }
  }
}

TEST_CASE("count_clusters and k_abs_error count distinct labels", "[metrics]") {
  CHECK(count_clusters(Labels{5, -1, 5, 7, -1}) == 3);
  CHECK(count_clusters(Labels{42}) == 1);
  CHECK(count_clusters(Labels{}) == 0);
  CHECK(k_abs_error(Labels{0, 0, 1, 1}, Labels{3, 4, 5, 6}) == 2.0);
  CHECK(k_abs_error(Labels{3, 4, 5, 6}, Labels{0, 0, 1, 1}) == 2.0);
  CHECK(k_abs_error(Labels{0, 1, 0, 1}, Labels{9, 9, 8, 8}) == 0.0);
  CHECK(score_clustering(Labels{0, 0, 0, 1, 2, 3}, Labels{1, 1, 1, 1, 1, 1}).k_mae == 3.0);
}

TEST_CASE("mismatched or empty labellings throw a helpful ncl::Error", "[metrics]") {
  const Labels three{0, 1, 1}, two{0, 1}, none{};
  using Catch::Contains;
  REQUIRE_THROWS_WITH(adjusted_rand_index(three, two), Contains("adjusted_rand_index: truth has 3 labels but pred has 2"));
  REQUIRE_THROWS_WITH(normalized_mutual_info(two, three), Contains("truth has 2 labels but pred has 3"));
  REQUIRE_THROWS_WITH(adjusted_mutual_info(three, none), Contains("one label per point"));
  REQUIRE_THROWS_WITH(k_abs_error(three, two), Contains("k_abs_error"));
  REQUIRE_THROWS_WITH(score_clustering(none, none), Contains("score_clustering: no labels"));
  REQUIRE_THROWS_WITH(adjusted_rand_index(none, none), Contains("at least one point"));
  REQUIRE_THROWS_AS(adjusted_mutual_info(none, none), ncl::Error);
}

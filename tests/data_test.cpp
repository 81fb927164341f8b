// The data layer: the mog-k4 generator against its specification, mixture densities against
// hand computations and EM against the statistics it must converge to, benchmark files read
// back exactly (and refused when they are not benchmarks or are inconsistent), training
// episodes from a labeled point set, and the standardiser.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <set>

#include "data/benchmark.h"
#include "data/episodes.h"
#include "data/generator.h"
#include "data/metrics.h"
#include "data/mixture.h"
#include "data/points.h"
#include "data/standardize.h"
#include "tensor/error.h"
#include "tensor/safetensors.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::data;
using namespace ncl::test;
using Catch::Contains;

// ---------------------------------------------------------------------------------------------
// mog-k4

TEST_CASE("mog-k4: shapes, label range, weights and stddev follow the specification", "[data]") {
  MogK4 generator;
  REQUIRE(generator.dim() == 2);
  REQUIRE(generator.max_clusters() == 4);
  Rng rng(1);
  for (int draw = 0; draw < 5; ++draw) {
    Batch batch = generator.sample(6, rng);
    REQUIRE(batch.points.rank() == 3);
    REQUIRE(batch.points.dtype() == DType::F32);
    const int64_t N = batch.points.dim(1);
    REQUIRE(batch.points.dim(0) == 6);
    REQUIRE(batch.points.dim(2) == 2);
    REQUIRE(N >= 300);
    REQUIRE(N < 600);
    REQUIRE(batch.labels.size() == 6);
    REQUIRE(batch.truth.size() == 6);
    for (int64_t b = 0; b < 6; ++b) {
      REQUIRE(int64_t(batch.labels[b].size()) == N);  // N is shared by the batch
      for (int label : batch.labels[b]) REQUIRE((label >= 0 && label <= 3));
      const GaussianMixture& truth = batch.truth[b];
      REQUIRE(truth.dim == 2);
      REQUIRE(truth.clusters() == 4);
      double sum = 0.0;
      for (double w : truth.weights) {
        REQUIRE(w >= 0.0);
        sum += w;
      }
      REQUIRE(sum == Approx(1.0).margin(1e-12));
      REQUIRE(truth.means.size() == 8);
      for (double m : truth.means) REQUIRE((m >= -4.0 && m < 4.0));
      REQUIRE(truth.stddevs == std::vector<double>(8, 0.3));
    }
  }
}

TEST_CASE("mog-k4-paper: the same mixture with the paper's N in [100, 500]", "[data]") {
  std::unique_ptr<Generator> paper = make_generator("mog-k4-paper");
  REQUIRE(paper->name() == "mog-k4-paper");
  REQUIRE(paper->dim() == 2);
  REQUIRE(paper->max_clusters() == 4);
  Rng rng(2);
  int64_t smallest = 1000, largest = 0;
  for (int draw = 0; draw < 400; ++draw) {
    const int64_t N = paper->sample(1, rng).points.dim(1);
    smallest = std::min(smallest, N);
    largest = std::max(largest, N);
  }
  REQUIRE(smallest >= 100);
  REQUIRE(largest <= 500);
  REQUIRE(smallest < 120);  // the range is used, not just its middle
  REQUIRE(largest > 480);
  // Apart from N the draws are mog-k4's: same seed, same mixture.
  Rng a(3), b(3);
  Batch from_paper = paper->sample(2, a);
  Batch from_code = MogK4(100, 501).sample(2, b);
  REQUIRE(from_paper.truth[1].means == from_code.truth[1].means);
  REQUIRE(from_paper.labels == from_code.labels);
}

TEST_CASE("mog-k4: the same seed draws the same batch, another seed another", "[data]") {
  MogK4 generator;
  Rng a(7), b(7), c(8);
  Batch x = generator.sample(3, a), y = generator.sample(3, b), z = generator.sample(3, c);
  REQUIRE(x.points.shape() == y.points.shape());
  REQUIRE(x.points.to_vector() == y.points.to_vector());
  REQUIRE(x.labels == y.labels);
  REQUIRE(x.truth[2].means == y.truth[2].means);
  // Different seeds: different truth, and different points whatever N each drew.
  REQUIRE(x.truth[0].means != z.truth[0].means);
  REQUIRE(x.points.to_vector() != z.points.to_vector());
}

TEST_CASE("mog-k4: each label's points scatter around its true mean with stddev 0.3", "[data]") {
  // Per dataset and label with n points: the empirical mean is within 5σ/√n of μ_k, the
  // empirical stddev within 5σ/√(2n) of σ = 0.3, and the label's share within 5 binomial
  // standard errors of π_k.
  MogK4 generator;
  Rng rng(3);
  Batch batch = generator.sample(40, rng);
  const int64_t N = batch.points.dim(1);
  const float* x = batch.points.data<float>();
  int64_t checked = 0;
  for (int64_t b = 0; b < 40; ++b) {
    const GaussianMixture& truth = batch.truth[b];
    for (int k = 0; k < 4; ++k) {
      std::vector<int64_t> rows;
      for (int64_t n = 0; n < N; ++n)
        if (batch.labels[b][n] == k) rows.push_back(n);
      const double n = double(rows.size()), w = truth.weights[k];
      INFO("dataset " << b << " label " << k << ": " << n << " points, weight " << w);
      REQUIRE(std::abs(n / double(N) - w) <= 5.0 * std::sqrt(w * (1 - w) / double(N)) + 1e-9);
      if (rows.size() < 30) continue;
      for (int d = 0; d < 2; ++d) {
        double mean = 0.0, var = 0.0;
        for (int64_t r : rows) mean += x[(b * N + r) * 2 + d] / n;
        for (int64_t r : rows) var += std::pow(x[(b * N + r) * 2 + d] - mean, 2) / n;
        REQUIRE(std::abs(mean - truth.means[k * 2 + d]) < 5.0 * 0.3 / std::sqrt(n));
        REQUIRE(std::abs(std::sqrt(var) - 0.3) < 5.0 * 0.3 / std::sqrt(2.0 * n));
      }
      ++checked;
    }
  }
  REQUIRE(checked > 80);  // most of the 160 clusters had enough points to be tested
}

TEST_CASE("make_generator knows every listed name and names them otherwise", "[data]") {
  REQUIRE(generator_names().size() == 9);
  for (const std::string& name : generator_names()) {
    REQUIRE(make_generator(name)->name() == name);
    REQUIRE(make_generator(name)->dim() == 2);
  }
  REQUIRE(make_generator("mog-12")->max_clusters() == 12);
  REQUIRE_THROWS_WITH(make_generator("mog-k5"),
                      Contains("unknown data generator 'mog-k5'") && Contains("mog-k4"));
}

// ---------------------------------------------------------------------------------------------
// mixture.h

TEST_CASE("joint_log_density matches a hand computation in 1-D and 2-D", "[data]") {
  const double half_log_2pi = 0.5 * std::log(2.0 * std::numbers::pi);  // 0.9189385332
  SECTION("1-D: π = (0.25, 0.75), μ = (0, 2), σ = (1, 0.5); points 1 and −1") {
    GaussianMixture m{1, {0.25, 0.75}, {0.0, 2.0}, {1.0, 0.5}};
    std::vector<double> joint = joint_log_density(m, {1.0, -1.0});
    REQUIRE(joint.size() == 4);  // (N, K) = (2, 2)
    // x = 1, k = 0: log 0.25 − log 1 − ½log 2π − ½·1²            = −2.8052328943
    // x = 1, k = 1: log 0.75 − log 0.5 − ½log 2π − ½·((1−2)/0.5)² = −2.5134734251
    // x = −1, k = 0: the same as x = 1 (symmetric about μ = 0)    = −2.8052328943
    // x = −1, k = 1: log 0.75 − log 0.5 − ½log 2π − ½·(−3/0.5)²   = −18.5134734251
    REQUIRE(joint[0] == Approx(-2.8052328943).epsilon(1e-10));
    REQUIRE(joint[1] == Approx(-2.5134734251).epsilon(1e-10));
    REQUIRE(joint[2] == Approx(-2.8052328943).epsilon(1e-10));
    REQUIRE(joint[3] == Approx(-18.5134734251).epsilon(1e-10));
    REQUIRE(joint[0] == Approx(std::log(0.25) - half_log_2pi - 0.5).epsilon(1e-14));
    // Mean log-likelihood: (log(e^−2.80523 + e^−2.51347) + log(e^−2.80523 + e^−18.51347)) / 2
    //                    = (−1.9556030576 + −2.8052327437) / 2 = −2.3804179006
    REQUIRE(mean_log_likelihood(m, {1.0, -1.0}) == Approx(-2.3804179006).epsilon(1e-10));
    // Responsibilities of x = 1: exp(joint − logsumexp) = (0.4275731745, 0.5724268255).
    std::vector<double> r = responsibilities(m, {1.0, -1.0});
    REQUIRE(r[0] == Approx(0.4275731745).epsilon(1e-9));
    REQUIRE(r[1] == Approx(0.5724268255).epsilon(1e-9));
  }
  SECTION("2-D, diagonal: π = (0.5, 0.5), μ = ((0,0), (1,−1)), σ = ((1,2), (0.5,1)); point (1,1)") {
    GaussianMixture m{2, {0.5, 0.5}, {0.0, 0.0, 1.0, -1.0}, {1.0, 2.0, 0.5, 1.0}};
    std::vector<double> joint = joint_log_density(m, {1.0, 1.0});
    REQUIRE(joint.size() == 2);
    // k = 0: log 0.5 − (log 1 + log 2) − log 2π − ½((1/1)² + (1/2)²)   = −3.8491714275
    // k = 1: log 0.5 − (log 0.5 + log 1) − log 2π − ½((0/0.5)² + (2/1)²) = −3.8378770664
    REQUIRE(joint[0] == Approx(-3.8491714275).epsilon(1e-10));
    REQUIRE(joint[1] == Approx(-3.8378770664).epsilon(1e-10));
  }
  SECTION("weight_floor is added to π inside the log") {
    GaussianMixture m{1, {0.0, 1.0}, {0.0, 0.0}, {1.0, 1.0}};
    std::vector<double> joint = joint_log_density(m, {0.0}, 1e-10);
    // k = 0: log(0 + 1e-10) − ½log 2π; k = 1: log(1 + 1e-10) − ½log 2π.
    REQUIRE(joint[0] == Approx(std::log(1e-10) - half_log_2pi).epsilon(1e-14));
    REQUIRE(joint[1] == Approx(std::log1p(1e-10) - half_log_2pi).epsilon(1e-14));
    REQUIRE(std::isinf(joint_log_density(m, {0.0})[0]));  // no floor: log 0
  }
  SECTION("a mixture whose arrays disagree is refused") {
    GaussianMixture bad{2, {0.5, 0.5}, {0.0, 0.0, 1.0}, {1.0, 1.0, 1.0}};
    REQUIRE_THROWS_AS(joint_log_density(bad, {0.0, 0.0}), Error);
    GaussianMixture m{2, {1.0}, {0.0, 0.0}, {1.0, 1.0}};
    REQUIRE_THROWS_WITH(joint_log_density(m, {0.0, 0.0, 1.0}), Contains("do not form rows"));
  }
}

namespace {

// N points per component of `truth`, drawn from Rng(seed), with their labels.
std::pair<std::vector<double>, std::vector<int>> sample_mixture(const GaussianMixture& truth,
                                                                int64_t N, uint64_t seed) {
  Rng rng(seed);
  const int64_t D = truth.dim;
  std::vector<double> x;
  std::vector<int> labels;
  for (int64_t n = 0; n < N; ++n) {
    int k = int(rng.categorical(truth.weights));
    labels.push_back(k);
    for (int64_t d = 0; d < D; ++d)
      x.push_back(truth.means[k * D + d] + truth.stddevs[k * D + d] * rng.normal());
  }
  return {x, labels};
}

}  // namespace

TEST_CASE("responsibilities: rows sum to 1; hard_labels takes each row's argmax", "[data]") {
  GaussianMixture truth{2, {0.2, 0.3, 0.5}, {-2, 0, 0, 2, 2, 0}, {1, 1, 0.5, 0.5, 1, 2}};
  auto [x, labels] = sample_mixture(truth, 200, 5);
  std::vector<double> r = responsibilities(truth, x);
  REQUIRE(r.size() == 600);
  std::vector<double> joint = joint_log_density(truth, x);
  for (int64_t n = 0; n < 200; ++n) {
    double sum = r[n * 3] + r[n * 3 + 1] + r[n * 3 + 2];
    REQUIRE(sum == Approx(1.0).margin(1e-12));
    // r_nk ∝ exp(joint_nk): ratios of responsibilities are differences of joint log-densities.
    REQUIRE(std::log(r[n * 3] / r[n * 3 + 2]) == Approx(joint[n * 3] - joint[n * 3 + 2]).margin(1e-9));
  }
  REQUIRE(hard_labels({0.1, 0.9, 0.6, 0.4, 0.2, 0.8}, 2) == std::vector<int>{1, 0, 1});
  REQUIRE(hard_labels({0.2, 0.3, 0.5, 0.7, 0.2, 0.1}, 3) == std::vector<int>{2, 0});
  std::vector<int> hard = hard_labels(r, 3);
  for (int64_t n = 0; n < 200; ++n)
    REQUIRE(r[n * 3 + hard[n]] == *std::max_element(&r[n * 3], &r[n * 3] + 3));
}

TEST_CASE("em_step: never lowers the likelihood and converges to each cluster's statistics",
          "[data]") {
  // Three far-apart clusters: the posterior is practically hard, so EM's fixed point is each
  // true cluster's sample fraction, mean and (biased) stddev.
  GaussianMixture truth{2, {0.2, 0.3, 0.5}, {-8, 0, 0, 8, 8, 0}, {0.5, 1.0, 1.0, 0.3, 0.7, 0.7}};
  const int64_t N = 3000;
  auto [x, labels] = sample_mixture(truth, N, 11);
  GaussianMixture sample{2, std::vector<double>(3, 0.0), std::vector<double>(6, 0.0),
                         std::vector<double>(6, 0.0)};
  std::vector<double> count(3, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    count[labels[n]] += 1;
    for (int d = 0; d < 2; ++d) sample.means[labels[n] * 2 + d] += x[n * 2 + d];
  }
  for (int k = 0; k < 3; ++k) {
    sample.weights[k] = count[k] / double(N);
    for (int d = 0; d < 2; ++d) sample.means[k * 2 + d] /= count[k];
  }
  for (int64_t n = 0; n < N; ++n)
    for (int d = 0; d < 2; ++d)
      sample.stddevs[labels[n] * 2 + d] +=
          std::pow(x[n * 2 + d] - sample.means[labels[n] * 2 + d], 2) / count[labels[n]];
  for (double& s : sample.stddevs) s = std::sqrt(s);

  // Start far from the answer: equal weights, means shifted by (1.5, −1), all stddevs 2.
  GaussianMixture m{2, {1.0 / 3, 1.0 / 3, 1.0 / 3}, {-6.5, -1, 1.5, 7, 9.5, -1},
                    std::vector<double>(6, 2.0)};
  double ll = mean_log_likelihood(m, x);
  for (int step = 0; step < 30; ++step) {
    m = em_step(m, x);
    double next = mean_log_likelihood(m, x);
    INFO("EM step " << step << ": " << ll << " -> " << next);
    REQUIRE(next >= ll - 1e-9);
    ll = next;
  }
  for (int k = 0; k < 3; ++k) {
    INFO("cluster " << k);
    REQUIRE(m.weights[k] == Approx(sample.weights[k]).margin(1e-6));
    for (int d = 0; d < 2; ++d) {
      REQUIRE(m.means[k * 2 + d] == Approx(sample.means[k * 2 + d]).margin(1e-6));
      REQUIRE(m.stddevs[k * 2 + d] == Approx(sample.stddevs[k * 2 + d]).margin(1e-6));
      // …and the sample statistics are close to the truth that drew them.
      REQUIRE(m.means[k * 2 + d] == Approx(truth.means[k * 2 + d]).margin(0.1));
      REQUIRE(m.stddevs[k * 2 + d] == Approx(truth.stddevs[k * 2 + d]).margin(0.1));
    }
    REQUIRE(m.weights[k] == Approx(truth.weights[k]).margin(0.03));
  }
}

// ---------------------------------------------------------------------------------------------
// benchmark files

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void require_same_datasets(const std::vector<Dataset>& a, const std::vector<Dataset>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t m = 0; m < a.size(); ++m) {
    INFO("dataset " << m);
    REQUIRE(a[m].dim == b[m].dim);
    REQUIRE(a[m].points == b[m].points);
    REQUIRE(a[m].labels == b[m].labels);
    REQUIRE(a[m].truth.has_value() == b[m].truth.has_value());
    if (!a[m].truth) continue;
    REQUIRE(a[m].truth->dim == b[m].truth->dim);
    REQUIRE(a[m].truth->weights == b[m].truth->weights);
    REQUIRE(a[m].truth->means == b[m].truth->means);
    REQUIRE(a[m].truth->stddevs == b[m].truth->stddevs);
  }
}

}  // namespace

TEST_CASE("generate_benchmark: deterministic, drawn `batch` datasets at a time", "[data]") {
  MogK4 generator;
  Benchmark a = generate_benchmark(generator, 7, 3, 11), b = generate_benchmark(generator, 7, 3, 11);
  REQUIRE(a.generator == "mog-k4");
  REQUIRE(a.seed == 11);
  REQUIRE(a.batch == 3);
  REQUIRE(a.datasets.size() == 7);
  require_same_datasets(a.datasets, b.datasets);
  // The first three are exactly the first draw of 3 from Rng(11), and share its N.
  Rng rng(11);
  Batch first = generator.sample(3, rng);
  require_same_datasets({a.datasets.begin(), a.datasets.begin() + 3},
                        {dataset_from_batch(first, 0), dataset_from_batch(first, 1),
                         dataset_from_batch(first, 2)});
  REQUIRE(a.datasets[3].size() == a.datasets[5].size());
  REQUIRE(generate_benchmark(generator, 7, 3, 12).datasets[0].points != a.datasets[0].points);
  REQUIRE_THROWS_WITH(generate_benchmark(generator, 0, 3, 11), Contains("datasets >= 1"));
}

TEST_CASE("save_benchmark / load_benchmark: an exact round trip", "[data]") {
  Benchmark bench = generate_benchmark(MogK4(), 5, 2, 4);
  std::string path = temp_file("data_bench.safetensors");
  save_benchmark(path, bench);
  Benchmark loaded = load_benchmark(path);
  REQUIRE(loaded.generator == "mog-k4");
  REQUIRE(loaded.seed == 4);
  REQUIRE(loaded.batch == 2);
  require_same_datasets(loaded.datasets, bench.datasets);
  std::filesystem::remove(path);
}

TEST_CASE("load_benchmark refuses truncated files, checkpoints and inconsistent offsets", "[data]") {
  Benchmark bench = generate_benchmark(MogK4(), 3, 3, 2);
  std::string good = temp_file("data_good.safetensors");
  save_benchmark(good, bench);

  SECTION("truncated to half its size") {
    std::string bytes = read_bytes(good), path = temp_file("data_truncated.safetensors");
    std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    REQUIRE_THROWS_WITH(load_benchmark(path), Contains(path) && Contains("truncated"));
  }
  SECTION("truncated inside the header") {
    std::string path = temp_file("data_stub.safetensors");
    std::ofstream(path, std::ios::binary) << read_bytes(good).substr(0, 20);
    REQUIRE_THROWS_WITH(load_benchmark(path), Contains(path) && Contains("does not fit the file"));
  }
  SECTION("a checkpoint, or any safetensors file that is not a benchmark") {
    std::string path = temp_file("data_ckpt.safetensors");
    TensorFile file;
    file.metadata = {{"format", "ncl-checkpoint"}, {"format_version", "1"}};
    file.tensors.push_back({"head.weight", f64({1, 2, 3, 4}, {2, 2})});
    save_safetensors(path, file);
    REQUIRE_THROWS_WITH(load_benchmark(path), Contains(path) && Contains("not an ncl benchmark"));
  }
  SECTION("a newer format version") {
    TensorFile file = load_safetensors(good);
    // A std::string, not the literal: g++ 12 warns falsely (-Wrestrict) on assigning that.
    file.metadata["format_version"] = std::string("2");
    std::string path = temp_file("data_v2.safetensors");
    save_safetensors(path, file);
    REQUIRE_THROWS_WITH(load_benchmark(path), Contains("format_version '2'"));
  }
  SECTION("inconsistent offsets") {
    TensorFile file = load_safetensors(good);
    const int64_t total = file.find("points")->dim(0), first = bench.datasets[0].size();
    auto with_offsets = [&](const std::vector<double>& offsets) {
      TensorFile copy = file;
      for (auto& [name, t] : copy.tensors)
        if (name == "offsets") t = i32(offsets, {int64_t(offsets.size())});
      std::string path = temp_file("data_offsets.safetensors");
      save_safetensors(path, copy);
      return path;
    };
    // Decreasing, past the end of the points, and leaving points that belong to no dataset.
    for (auto offsets : {std::vector<double>{0, double(first), double(first) - 1, double(total)},
                         std::vector<double>{0, double(first), double(2 * first), double(total + 5)},
                         std::vector<double>{0, double(first), double(2 * first), double(total - 7)},
                         std::vector<double>{3, double(first), double(2 * first), double(total)}}) {
      INFO("offsets " << offsets[0] << ", " << offsets[1] << ", " << offsets[2] << ", " << offsets[3]
                      << " for " << total << " points");
      std::string path = with_offsets(offsets);
      REQUIRE_THROWS_WITH(load_benchmark(path), Contains(path) && Contains("offsets"));
    }
    // The unchanged offsets load: the failures above are the offsets' doing.
    REQUIRE(load_benchmark(with_offsets({0, double(first), double(2 * first), double(total)}))
                .datasets.size() == 3);
  }
  SECTION("truth offsets that disagree with the datasets") {
    TensorFile file = load_safetensors(good);
    for (auto& [name, t] : file.tensors)
      if (name == "truth.offsets") t = i32({0, 4, 8}, {3});  // 2 datasets' worth for 3
    std::string path = temp_file("data_truth.safetensors");
    save_safetensors(path, file);
    REQUIRE_THROWS_WITH(load_benchmark(path), Contains(path) && Contains("truth"));
  }
  std::filesystem::remove(good);
}

// ---------------------------------------------------------------------------------------------
// training episodes from a labeled file

namespace {

// 6 classes of 2-D points, 50 each, around distinct centres (10c, −6c + 3) with stddev 0.5;
// labelled "c0".."c5" in an interleaved order so that label ids follow first appearance.
PointSet six_classes() {
  Rng rng(21);
  std::vector<double> x;
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) {
    int c = (i * 7) % 6;
    x.push_back(10.0 * c + 0.5 * rng.normal());
    x.push_back(-6.0 * c + 3.0 + 0.5 * rng.normal());
    texts.push_back({'c', char('0' + c)});
  }
  PointSet points;
  points.features = f64(x, {300, 2});
  points.columns = {"x", "y"};
  set_labels(points, texts);
  return points;
}

}  // namespace

TEST_CASE("LabeledEpisodes: datasets of clusters_min..clusters_max classes, standardised",
          "[data]") {
  PointSet points = six_classes();
  REQUIRE(points.label_names.size() == 6);
  EpisodeOptions options;
  options.clusters_min = 2;
  options.clusters_max = 4;
  options.points_min = 40;
  options.points_max = 120;
  {  // a file with fewer classes than an episode needs is refused, naming both counts
    EpisodeOptions seven = options;
    seven.clusters_min = 7;
    REQUIRE_THROWS_WITH(LabeledEpisodes(points, "six.csv", seven),
                        Catch::Contains("six.csv: has 6 classes but training episodes need at least 7"));
    PointSet one = points;
    set_labels(one, std::vector<std::string>(300, "c0"));
    REQUIRE_THROWS_WITH(LabeledEpisodes(one, "one.csv", options),
                        Catch::Contains("one.csv: has 1 class but training episodes need at least 2"));
  }
  LabeledEpisodes episodes(points, "six.csv", options);
  REQUIRE(episodes.name() == "six.csv");
  REQUIRE(episodes.dim() == 2);
  REQUIRE(episodes.max_clusters() == 4);

  // The standardiser holds the file's per-feature mean and population stddev.
  std::vector<double> x = points.features.to_vector();
  const Standardizer& s = episodes.standardizer();
  REQUIRE(s.mean.size() == 2);
  for (int d = 0; d < 2; ++d) {
    double mean = 0.0, var = 0.0;
    for (int n = 0; n < 300; ++n) mean += x[n * 2 + d] / 300.0;
    for (int n = 0; n < 300; ++n) var += std::pow(x[n * 2 + d] - mean, 2) / 300.0;
    REQUIRE(s.mean[d] == Approx(mean).epsilon(1e-12));
    REQUIRE(s.std[d] == Approx(std::sqrt(var)).epsilon(1e-12));
  }

  Rng rng(5);
  std::set<int64_t> sizes, ks;
  for (int draw = 0; draw < 20; ++draw) {
    Batch batch = episodes.sample(4, rng);
    REQUIRE(batch.truth.empty());
    REQUIRE(batch.points.rank() == 3);
    const int64_t N = batch.points.dim(1);
    REQUIRE(batch.points.dim(0) == 4);
    REQUIRE(batch.points.dim(2) == 2);
    REQUIRE((N >= 40 && N <= 120));
    sizes.insert(N);
    const float* p = batch.points.data<float>();
    for (int64_t b = 0; b < 4; ++b) {
      REQUIRE(int64_t(batch.labels[b].size()) == N);
      std::set<int> distinct(batch.labels[b].begin(), batch.labels[b].end());
      const int64_t K = int64_t(distinct.size());
      INFO("draw " << draw << " dataset " << b << ": " << K << " distinct labels of " << N);
      REQUIRE((K >= 2 && K <= 4));
      REQUIRE(*distinct.begin() == 0);
      REQUIRE(*distinct.rbegin() == K - 1);  // renumbered 0..K-1
      ks.insert(K);
      // Every point is a standardised point of the file, and one episode label is one class.
      std::vector<std::set<int>> classes(K);
      for (int64_t n = 0; n < N; ++n) {
        double u = p[(b * N + n) * 2] * s.std[0] + s.mean[0];
        double v = p[(b * N + n) * 2 + 1] * s.std[1] + s.mean[1];
        int64_t nearest = 0;
        double best = INFINITY;
        for (int64_t m = 0; m < 300; ++m) {
          double dist = std::hypot(u - x[m * 2], v - x[m * 2 + 1]);
          if (dist < best) best = dist, nearest = m;
        }
        REQUIRE(best < 1e-4);  // F32 rounding of a standardised value
        classes[batch.labels[b][n]].insert(points.labels[nearest]);
      }
      std::set<int> all;
      for (const auto& c : classes) {
        REQUIRE(c.size() == 1);
        all.insert(*c.begin());
      }
      REQUIRE(int64_t(all.size()) == K);  // distinct episode labels are distinct classes
    }
  }
  REQUIRE(ks == std::set<int64_t>{2, 3, 4});
  REQUIRE(sizes.size() > 5);
}

TEST_CASE("LabeledEpisodes refuses too few classes and points without labels", "[data]") {
  PointSet points = six_classes();
  EpisodeOptions options;
  options.clusters_min = options.clusters_max = 7;
  REQUIRE_THROWS_WITH(LabeledEpisodes(points, "six.csv", options),
                      Contains("six.csv") && Contains("has 6 classes") && Contains("at least 7"));
  PointSet unlabeled;
  unlabeled.features = points.features;
  unlabeled.columns = points.columns;
  REQUIRE_THROWS_WITH(LabeledEpisodes(unlabeled, "plain.csv", EpisodeOptions{}),
                      Contains("plain.csv") && Contains("needs a label per point"));
}

// ---------------------------------------------------------------------------------------------
// Standardizer

TEST_CASE("Standardizer: fit, apply, unapply and log_scale agree", "[data]") {
  // Columns: mean 2 / std 3, mean −1 / std 0.5, and a constant column (std 1 by convention).
  std::vector<double> x;
  Rng rng(9);
  for (int n = 0; n < 500; ++n) {
    x.push_back(2.0 + 3.0 * rng.normal());
    x.push_back(-1.0 + 0.5 * rng.normal());
    x.push_back(4.0);
  }
  Standardizer s = Standardizer::fit(x, 3);
  REQUIRE(!s.identity());
  REQUIRE(s.std[2] == 1.0);
  REQUIRE(s.mean[2] == Approx(4.0).epsilon(1e-15));
  REQUIRE(s.std[0] == Approx(3.0).margin(0.3));
  REQUIRE(s.log_scale() == Approx(std::log(s.std[0]) + std::log(s.std[1])).epsilon(1e-14));

  std::vector<double> z = x;
  s.apply(z);
  Standardizer refit = Standardizer::fit(z, 3);
  for (int d = 0; d < 2; ++d) {
    REQUIRE(refit.mean[d] == Approx(0.0).margin(1e-12));
    REQUIRE(refit.std[d] == Approx(1.0).epsilon(1e-12));
  }

  // unapply maps a mixture from standardised to original units: a mixture whose means are the
  // standardised points comes back with the original points as means.
  GaussianMixture points_as_means{3, std::vector<double>(500, 1.0 / 500), z,
                                  std::vector<double>(1500, 1.0)};
  GaussianMixture back = s.unapply(points_as_means);
  for (size_t i = 0; i < x.size(); ++i) REQUIRE(back.means[i] == Approx(x[i]).margin(1e-12));
  REQUIRE(back.stddevs[0] == s.std[0]);
  REQUIRE(back.weights == points_as_means.weights);

  // Densities: LL in original units = LL in standardised units − Σ log std.
  GaussianMixture fitted{3, {0.4, 0.6}, {0.5, 0.1, 0.0, -0.5, -0.2, 0.0}, {0.8, 1.1, 0.3, 1.2, 0.9, 0.4}};
  REQUIRE(mean_log_likelihood(s.unapply(fitted), x) ==
          Approx(mean_log_likelihood(fitted, z) - s.log_scale()).epsilon(1e-12));

  // The empty Standardizer is the identity.
  Standardizer identity;
  std::vector<double> same = x;
  identity.apply(same);
  REQUIRE(same == x);
  REQUIRE(identity.log_scale() == 0.0);
  REQUIRE(identity.unapply(fitted).means == fitted.means);
  REQUIRE_THROWS_WITH(Standardizer::fit({}, 2), Contains("empty"));
  std::vector<double> ragged{1, 2, 3, 4};
  REQUIRE_THROWS_WITH(s.apply(ragged), Contains("not rows of 3"));
}

TEST_CASE("Standardizer: features near the double range give finite statistics and values",
          "[data]") {
  // Squares of 1e200 and differences of ±1e307 overflow: the first computation gives inf.
  std::vector<double> x;
  Rng rng(3);
  for (int n = 0; n < 400; ++n) {
    x.push_back(1e200 * (1.0 + rng.normal()));
    x.push_back(n % 2 == 0 ? 1.5e308 : -1.5e308);
  }
  Standardizer s = Standardizer::fit(x, 2);
  REQUIRE(s.std[0] == Approx(1e200).epsilon(0.2));
  REQUIRE(s.std[1] == Approx(1.5e308).epsilon(1e-12));
  REQUIRE(s.mean[1] == Approx(0.0).margin(1e295));
  std::vector<double> z = x;
  s.apply(z);
  for (double v : z) REQUIRE(std::isfinite(v));
  REQUIRE(z[1] == Approx(1.0).epsilon(1e-12));
  REQUIRE(z[3] == Approx(-1.0).epsilon(1e-12));
}

TEST_CASE("Standardizer: JSON round trip; malformed records are refused", "[data]") {
  Standardizer s{{0.1, -2.5e-7, 3.0 / 7.0}, {1.0 / 3.0, 2.0, 1e-3}};
  Standardizer back = Standardizer::from_json(nlohmann::json::parse(s.to_json().dump()));
  REQUIRE(back.mean == s.mean);  // bit-exact through the text
  REQUIRE(back.std == s.std);
  REQUIRE(Standardizer::from_json(Standardizer{}.to_json()).identity());

  using nlohmann::json;
  REQUIRE_THROWS_WITH(Standardizer::from_json(json::array({1, 2})), Contains("malformed"));
  auto record = [](json mean, json std) { return json{{"mean", mean}, {"std", std}}; };
  REQUIRE_THROWS_WITH(Standardizer::from_json(json{{"mean", json::array({1.0})}}),
                      Contains("malformed"));
  REQUIRE_THROWS_WITH(Standardizer::from_json(record(json::array({1.0, 2.0}), json::array({1.0}))),
                      Contains("malformed"));
  REQUIRE_THROWS_WITH(Standardizer::from_json(record(1.0, 1.0)), Contains("malformed"));
  REQUIRE_THROWS_WITH(Standardizer::from_json(record(json::array({"a"}), json::array({1.0}))),
                      Contains("non-number"));
  REQUIRE_THROWS_WITH(Standardizer::from_json(record(json::array({0.0}), json::array({0.0}))),
                      Contains("std must be > 0"));
  REQUIRE_THROWS_WITH(Standardizer::from_json(record(json::array({0.0}), json::array({-1.0}))),
                      Contains("std must be > 0"));
  REQUIRE_THROWS_WITH(Standardizer::from_json(record(json::array({0.0}), json::array({"1"}))),
                      Contains("std must be > 0"));
  // A well-formed record of the same shapes is accepted: the refusals above are the values'.
  REQUIRE(Standardizer::from_json(record(json::array({0.0}), json::array({2.0}))).std[0] == 2.0);
}

// DAC's generators against the reference notes' own regeneration (§3.10: mog_10_1000_4 has
// oracle LL −0.671 and 2.46 non-empty clusters on average; mog_10_3000_12 −1.518 and 6.51;
// Monte-Carlo spread ±0.01–0.02), on 300 datasets each. N is drawn once per batch of 10, so
// its mean over 30 draws is checked against U{n_lo..n_hi}'s mean within 3 standard errors.
TEST_CASE("mog-4 and mog-12 match the reference's oracle, cluster count and size", "[data]") {
  struct Expect {
    const char* name;
    double ll, clusters;
    int64_t n_lo, n_hi, k_max;
  };
  for (Expect e : {Expect{"mog-4", -0.671, 2.46, 300, 999, 4},
                   Expect{"mog-12", -1.518, 6.51, 900, 2999, 12}}) {
    DYNAMIC_SECTION(e.name) {
      auto generator = data::make_generator(e.name);
      data::Benchmark bench = data::generate_benchmark(*generator, 300, 10, 0);
      double ll = 0, clusters = 0, points = 0;
      for (const data::Dataset& d : bench.datasets) {
        REQUIRE(d.size() >= e.n_lo);
        REQUIRE(d.size() <= e.n_hi);
        int k = data::count_clusters(d.labels);
        REQUIRE(k <= e.k_max);
        // Labels are 0..k-1 and the truth's weights are the empirical proportions.
        REQUIRE(*std::max_element(d.labels.begin(), d.labels.end()) == k - 1);
        REQUIRE(d.truth->clusters() == k);
        for (int c = 0; c < k; ++c)
          REQUIRE(d.truth->weights[c] ==
                  Approx(double(std::count(d.labels.begin(), d.labels.end(), c)) / double(d.size())));
        ll += data::mean_log_likelihood(*d.truth, d.points) / 300.0;
        clusters += k / 300.0;
        points += double(d.size()) / 300.0;
      }
      INFO("oracle LL " << ll << ", clusters " << clusters << ", N " << points);
      REQUIRE(ll == Approx(e.ll).margin(0.06));
      REQUIRE(clusters == Approx(e.clusters).margin(0.3));
      double spread = double(e.n_hi - e.n_lo) / std::sqrt(12.0);  // sd of U{n_lo..n_hi}
      REQUIRE(points == Approx(double(e.n_lo + e.n_hi) / 2).margin(3 * spread / std::sqrt(30.0)));
    }
  }
}

TEST_CASE("warped-mog draws labelled arcs without a density", "[data]") {
  Rng rng(5);
  data::Batch batch = data::make_generator("warped-12")->sample(4, rng);
  const int64_t N = batch.points.dim(1);
  REQUIRE(N >= 900);
  REQUIRE(N <= 2999);
  REQUIRE(batch.truth.empty());
  for (double v : batch.points.to_vector()) REQUIRE(std::isfinite(v));
  for (const auto& labels : batch.labels) {
    REQUIRE(int64_t(labels.size()) == N);
    int k = data::count_clusters(labels);
    REQUIRE(k >= 1);
    REQUIRE(k <= 12);
    REQUIRE(*std::max_element(labels.begin(), labels.end()) == k - 1);
  }
  // Same seed, same data.
  Rng again(5);
  REQUIRE(data::make_generator("warped-12")->sample(4, again).points.to_vector() ==
          batch.points.to_vector());
}

// NCP (models/ncp.h) and its data (data/crp.h): the published sizes, crp-mog's partition and
// centring, a float64 gradient check of the batched step and loss, the batched and the
// incremental G against recomputing everything from scratch, probabilities that sum to 1 with
// the new-cluster slot always present, the architecture's exact invariances, samplers that
// return valid partitions with their true NLLs, micro-batches, and a small training run whose
// loss and order variance both fall.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/functions.h"
#include "data/crp.h"
#include "models/ncp.h"
#include "models/registry.h"
#include "nn/optim.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::models;
using namespace ncl::test;

namespace {

NcpConfig tiny_config() {
  NcpConfig c;
  c.hidden = 8;
  c.h_dim = 6;
  c.g_dim = 5;
  c.encoder_layers = 1;
  c.g_layers = 1;
  c.f_layers = 1;
  c.orders = 3;
  return c;
}

// log-softmax of a few logits.
std::vector<double> log_softmax_of(const std::vector<double>& logits) {
  const double top = *std::max_element(logits.begin(), logits.end());
  double total = 0.0;
  for (double l : logits) total += std::exp(l - top);
  std::vector<double> out;
  for (double l : logits) out.push_back(l - top - std::log(total));
  return out;
}

// B datasets of N points with different partitions (first-appearance labels), as F64.
data::Batch mixed_batch(int64_t B, int64_t N, uint64_t seed) {
  data::Batch batch;
  batch.points = random_tensor({B, N, 2}, seed, DType::F64, -3.0, 3.0);
  Rng rng(seed + 1);
  for (int64_t b = 0; b < B; ++b) batch.labels.push_back(data::sample_crp(N, 1.0 + double(b), rng));
  return batch;
}

bool first_appearance(const std::vector<int>& labels) {
  int next = 0;
  for (int l : labels) {
    if (l > next) return false;
    if (l == next) ++next;
  }
  return true;
}

}  // namespace

TEST_CASE("NCP: the reference size and config round trip", "[models][ncp]") {
  Rng rng(0);
  Ncp net(NcpConfig{}, rng);
  REQUIRE(net.parameter_count() == 495506);  // h, q 82,948 each; g 164,997; f 164,613
  auto again = make_model("ncp", net.config(), rng);
  REQUIRE(again->parameter_count() == 495506);
  REQUIRE(net.recipe().batch == 64);
  REQUIRE(net.recipe().restarts.size() == 2);
  CHECK_THROWS_WITH(NcpConfig::from_json({{"width", 3}}), Catch::Contains("unknown key 'width'"));
  CHECK_THROWS_WITH(NcpConfig::from_json({{"orders", 0}}), Catch::Contains("orders must be"));
}

TEST_CASE("relabel_by_appearance numbers clusters in reading order", "[models][ncp]") {
  REQUIRE(relabel_by_appearance({7, 7, 2, 9, 2, 7}) == std::vector<int>{0, 0, 1, 2, 1, 0});
  REQUIRE(relabel_by_appearance({}).empty());
}

TEST_CASE("crp-mog: a shared CRP partition, median-centred points, the true mixture",
          "[data][ncp]") {
  auto generator = data::make_generator("crp-mog");
  REQUIRE(generator->benchmark_batch() == 1);
  Rng rng(3);
  for (int draw = 0; draw < 20; ++draw) {
    data::Batch batch = generator->sample(4, rng);
    const int64_t N = batch.points.dim(1);
    REQUIRE(N >= 5);
    REQUIRE(N < 100);
    std::vector<double> x = batch.points.to_vector();
    for (int64_t b = 0; b < 4; ++b) {
      REQUIRE(batch.labels[b] == batch.labels[0]);  // one partition for the whole batch
      REQUIRE(first_appearance(batch.labels[b]));
      const int64_t K = *std::max_element(batch.labels[b].begin(), batch.labels[b].end()) + 1;
      REQUIRE(int64_t(batch.truth[b].weights.size()) == K);
      for (int64_t d = 0; d < 2; ++d) {  // the median of each coordinate is 0
        std::vector<double> column;
        for (int64_t n = 0; n < N; ++n) column.push_back(x[(b * N + n) * 2 + d]);
        std::sort(column.begin(), column.end());
        const double median = N % 2 ? column[N / 2] : 0.5 * (column[N / 2 - 1] + column[N / 2]);
        REQUIRE(std::abs(median) < 1e-5);
      }
    }
  }
  // CRP(0.7) at N = 50: E[K] = Σ_{i<50} 0.7 / (0.7 + i) = 3.60 (reference notes §2.1).
  double mean = 0.0;
  for (int i = 0; i < 4000; ++i) {
    std::vector<int> l = data::sample_crp(50, 0.7, rng);
    mean += double(*std::max_element(l.begin(), l.end()) + 1) / 4000.0;
  }
  REQUIRE(mean == Approx(3.60).margin(0.06));
}

TEST_CASE("NCP: the batched step and the loss have correct gradients (F64)", "[models][ncp][grad]") {
  Rng rng(5);
  Ncp net(tiny_config(), rng);
  net.to(DType::F64);
  GradcheckOptions options;
  options.params = net.parameters();
  data::Batch batch = mixed_batch(2, 6, 6);  // two datasets with different partitions
  require_gradcheck(gradcheck(
      [&](const std::vector<Variable>& v) { return net.log_probs(v[0], batch.labels); },
      {random_tensor({2, 6, 2}, 7)}, options));
  options.wrt = {false};
  require_gradcheck(gradcheck(
      [&](const std::vector<Variable>&) {
        Rng orders(8);
        return net.loss(batch, orders);
      },
      {random_tensor({1}, 9)}, options));
}

TEST_CASE("NCP: batched and incremental G equal recomputing every G_k from scratch",
          "[models][ncp]") {
  Rng rng(10);
  Ncp net(tiny_config(), rng);
  net.to(DType::F64);
  data::Batch batch = mixed_batch(3, 9, 11);
  const int64_t N = 9;
  Tensor mask;
  const std::vector<double> lp = net.log_probs(Variable(batch.points), batch.labels, &mask).value().to_vector();
  const std::vector<double> masked = mask.to_vector();
  const int64_t W = mask.dim(1);
  const std::vector<double> x = batch.points.to_vector();
  for (int64_t b = 0; b < 3; ++b) {
    const std::vector<int>& labels = batch.labels[b];
    std::vector<double> points(x.begin() + b * N * 2, x.begin() + (b + 1) * N * 2);
    double nll = 0.0;
    for (int64_t n = 1; n < N; ++n) {
      const int64_t K = *std::max_element(labels.begin(), labels.begin() + n) + 1;
      const std::vector<double> expected = log_softmax_of(net.logits_from_scratch(points, labels, n));
      REQUIRE(int64_t(expected.size()) == K + 1);
      double total = 0.0;
      for (int64_t k = 0; k < W; ++k) {
        const size_t at = size_t((b * N + n) * W + k);
        INFO("dataset " << b << " point " << n << " slot " << k);
        REQUIRE(masked[at] == (k <= K ? 0.0 : 1.0));  // the new-cluster slot K is always there
        if (k <= K) {
          REQUIRE(lp[at] == Approx(expected[k]).epsilon(1e-10).margin(1e-12));
          total += std::exp(lp[at]);
        } else {
          REQUIRE(lp[at] == 0.0);
        }
      }
      REQUIRE(total == Approx(1.0).epsilon(1e-12));
      nll -= expected[size_t(labels[n])];
    }
    // partition_nll reads in the order of Rng(seed).permutation(N) with the incremental G;
    // read the points in the identity order by pre-permuting with the inverse.
    Rng order_rng(12);
    const std::vector<int64_t> order = order_rng.permutation(N);
    std::vector<double> scattered(points.size());
    std::vector<int> scattered_labels(N);
    for (int64_t i = 0; i < N; ++i) {
      scattered[order[i] * 2] = points[i * 2];
      scattered[order[i] * 2 + 1] = points[i * 2 + 1];
      scattered_labels[order[i]] = labels[i];
    }
    REQUIRE(*net.partition_nll(scattered, scattered_labels, 12) * double(N) ==
            Approx(nll).epsilon(1e-10));
  }
  // order_nll: the mean over datasets of those sums
  Variable nll = net.order_nll(Variable(batch.points), batch.labels);
  double expected = 0.0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t n = 1; n < N; ++n) expected -= lp[(b * N + n) * W + batch.labels[b][n]] / 3.0;
  REQUIRE(nll.value().item() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("NCP: sums make a step blind to the order of read points and of unread points",
          "[models][ncp]") {
  Rng rng(13);
  Ncp net(tiny_config(), rng);
  net.to(DType::F64);
  const int64_t N = 10, n = 5;
  std::vector<double> points = random_tensor({N, 2}, 14, DType::F64, -3.0, 3.0).to_vector();
  const std::vector<int> labels{0, 1, 0, 2, 1, 1, 0, 2, 3, 0};
  const std::vector<double> before = net.logits_from_scratch(points, labels, n);
  // Read points 0..4 as 3, 1, 4, 0, 2 and unread 6..9 as 9, 7, 8, 6; relabel by appearance.
  const std::vector<int64_t> order{3, 1, 4, 0, 2, 5, 9, 7, 8, 6};
  std::vector<double> moved;
  std::vector<int> moved_labels;
  for (int64_t i : order) {
    moved.insert(moved.end(), points.begin() + i * 2, points.begin() + i * 2 + 2);
    moved_labels.push_back(labels[i]);
  }
  const std::vector<int> relabelled = relabel_by_appearance(moved_labels);
  const std::vector<double> after = net.logits_from_scratch(moved, relabelled, n);
  REQUIRE(after.size() == before.size());
  for (int64_t i = 0; i < n; ++i) {  // cluster of point order[i]: old id labels, new id relabelled
    INFO("cluster " << labels[order[i]]);
    REQUIRE(after[relabelled[i]] == Approx(before[labels[order[i]]]).epsilon(1e-12));
  }
  REQUIRE(after.back() == Approx(before.back()).epsilon(1e-12));  // the new cluster
}

TEST_CASE("NCP samplers return valid partitions with their true NLLs", "[models][ncp]") {
  Rng rng(15);
  Ncp net(tiny_config(), rng);
  net.to(DType::F64);
  const int64_t N = 12;
  const std::vector<double> points = random_tensor({N, 2}, 16, DType::F64, -3.0, 3.0).to_vector();
  for (Search search : {Search::Sample, Search::Beam, Search::Greedy}) {
    INFO("search " << int(search));
    InferenceOptions options;
    options.search = search;
    options.samples = 20;
    options.seed = 17;
    ClusterResult r = net.cluster(points, options);
    REQUIRE(int64_t(r.labels.size()) == N);
    REQUIRE(first_appearance(r.labels));
    REQUIRE(r.clusters == *std::max_element(r.labels.begin(), r.labels.end()) + 1);
    REQUIRE(!r.posterior.empty());
    REQUIRE(r.posterior.front().labels == r.labels);
    if (search == Search::Greedy) REQUIRE(r.posterior.size() == 1);
    if (search == Search::Beam) REQUIRE(r.posterior.size() == 20);  // 12 points have > 20 partitions
    double weights = 0.0;
    for (size_t i = 0; i < r.posterior.size(); ++i) {
      const auto& c = r.posterior[i];
      REQUIRE(first_appearance(c.labels));
      if (i > 0) REQUIRE(c.nll >= r.posterior[i - 1].nll);
      for (size_t j = 0; j < i; ++j) REQUIRE(c.labels != r.posterior[j].labels);
      // the NLL the sampler tracked is the model's NLL of that partition in the same order
      REQUIRE(*net.partition_nll(points, c.labels, 17) * double(N) == Approx(c.nll).epsilon(1e-9));
      weights += c.weight;
      if (search == Search::Sample) REQUIRE(c.weight * 20 == Approx(std::round(c.weight * 20)));
    }
    REQUIRE(weights == Approx(1.0).epsilon(1e-12));
    for (int64_t i = 0; i < N; ++i) {
      double row = 0.0;
      for (int64_t k = 0; k < r.clusters; ++k) row += r.membership[i * r.clusters + k];
      REQUIRE(row == Approx(1.0).epsilon(1e-12));
    }
  }
  // A beam of width 1 is greedy decoding.
  InferenceOptions greedy, beam1;
  greedy.search = Search::Greedy;
  beam1.search = Search::Beam;
  beam1.samples = 1;
  REQUIRE(net.cluster(points, greedy).labels == net.cluster(points, beam1).labels);
}

TEST_CASE("NCP sampling draws clusterings with the probabilities it reports", "[models][ncp]") {
  // N = 4 points have 15 partitions; 20,000 draws estimate each one's probability to ±0.01.
  Rng rng(27);
  Ncp net(tiny_config(), rng);
  net.to(DType::F64);
  const std::vector<double> points = random_tensor({4, 2}, 28, DType::F64, -1.0, 1.0).to_vector();
  InferenceOptions options;
  options.samples = 20000;
  options.seed = 29;
  std::vector<int64_t> reported;  // the progress hook: the point read next, of 4
  options.progress = [&](int64_t done, int64_t total) {
    REQUIRE(total == 4);
    reported.push_back(done);
  };
  ClusterResult r = net.cluster(points, options);
  REQUIRE(reported == std::vector<int64_t>{1, 2, 3});
  double total = 0.0;
  for (const auto& c : r.posterior) {
    INFO("clustering with NLL " << c.nll);
    REQUIRE(c.weight == Approx(std::exp(-c.nll)).margin(0.015));
    total += std::exp(-c.nll);
  }
  REQUIRE(r.posterior.size() <= 15);
  REQUIRE(total <= 1.0 + 1e-12);
  REQUIRE(total > 0.99);  // the partitions never drawn have almost no probability
}

TEST_CASE("NCP: micro-batches give the whole batch's loss and gradients", "[models][ncp][grad]") {
  // Chunks 2 + 2 + 1 in order on 1 thread, and on 2 threads at once (Chunks::OnThreads).
  const int threads = ops::cpu_threads();
  Rng rng(18);
  Ncp net(tiny_config(), rng);
  net.to(DType::F64);
  data::Batch batch = mixed_batch(5, 7, 19);
  std::vector<std::vector<double>> grads[3];
  double values[3];
  for (int run = 0; run < 3; ++run) {
    ops::set_cpu_threads(run == 2 ? 2 : 1);
    net.zero_grad();
    Rng orders(20);
    StepReport report = net.backward(batch, run == 0 ? 0 : 2, orders);
    values[run] = report.loss;
    REQUIRE(report.order_variance.has_value());
    for (const Variable& p : net.parameters()) grads[run].push_back(p.grad().to_vector());
  }
  ops::set_cpu_threads(threads);
  Rng orders(20);
  REQUIRE(net.loss(batch, orders).value().item() == Approx(values[0]).epsilon(1e-12));
  for (int run = 1; run < 3; ++run) {
    INFO((run == 1 ? "in order" : "on 2 threads"));
    REQUIRE(values[run] == Approx(values[0]).epsilon(1e-12));
    for (size_t i = 0; i < grads[0].size(); ++i)
      require_close(f64(grads[run][i], {int64_t(grads[run][i].size())}),
                    f64(grads[0][i], {int64_t(grads[0][i].size())}), 1e-10, 1e-12);
  }
}

TEST_CASE("NCP: training lowers the loss and the variance across orderings", "[models][ncp][slow]") {
  Rng rng(21);
  NcpConfig config = tiny_config();
  config.hidden = 16;
  config.h_dim = 16;
  config.g_dim = 16;
  config.orders = 4;
  Ncp net(config, rng);
  data::CrpMogOptions small;
  small.n_min = 12;
  small.n_max = 13;
  small.lambda = 6.0;
  Rng data_rng(22);
  data::Batch batch = data::CrpMog(small).sample(8, data_rng);
  auto measure = [&]() {  // NLL per point of 16 orderings: their mean and variance
    NoGradGuard no_grad;
    const int64_t B = 8, N = 12;
    const std::vector<double> x = batch.points.to_vector();
    Rng orders(23);
    std::vector<double> per_point;
    for (int i = 0; i < 16; ++i) {
      const std::vector<int64_t> order = orders.permutation(N);
      std::vector<double> read;
      std::vector<std::vector<int>> labels(B);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t n : order) {
          read.insert(read.end(), x.begin() + (b * N + n) * 2, x.begin() + (b * N + n) * 2 + 2);
          labels[b].push_back(batch.labels[b][n]);
        }
      for (auto& l : labels) l = relabel_by_appearance(l);
      Variable points(Tensor::from_vector(read, {B, N, 2}));
      per_point.push_back(net.order_nll(points, labels).value().item() / double(N));
    }
    double mean = std::accumulate(per_point.begin(), per_point.end(), 0.0) / 16.0, var = 0.0;
    for (double v : per_point) var += (v - mean) * (v - mean) / 15.0;
    return std::pair{mean, var};
  };
  auto [nll_before, var_before] = measure();
  nn::Adam adam(net.named_parameters(), nn::AdamOptions{3e-3});
  Rng orders(24);
  for (int step = 0; step < 150; ++step) {
    adam.zero_grad();
    net.backward(batch, 0, orders);
    adam.step();
  }
  auto [nll_after, var_after] = measure();
  INFO("NLL per point " << nll_before << " -> " << nll_after << ", variance " << var_before
                        << " -> " << var_after);
  REQUIRE(nll_after < 0.5 * nll_before);
  REQUIRE(var_after < var_before);
}

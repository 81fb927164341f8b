// DAC (models/dac.h): the published sizes with weight tying, float64 gradient checks of the
// blocks and of both losses with both densities, the losses against a direct host computation,
// masking equivalence (a masked point changes nothing for the others), inference that assigns
// every point exactly once under every leftover policy, permutation equivariance, and a tiny
// overfit run per variant.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "autograd/functions.h"
#include "data/mog.h"
#include "models/dac.h"
#include "models/registry.h"
#include "nn/optim.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::models;
using namespace ncl::test;

namespace {

DacConfig tiny_config(const std::string& density, const std::string& loss) {
  DacConfig c;
  c.dim = 8;
  c.heads = 2;
  c.inducing = 4;
  c.blocks = 3;
  c.flow_blocks = 2;
  c.flow_hidden = 8;
  c.density = density;
  c.loss = loss;
  return c;
}

// B datasets of N 2-D points with labels 0..K-1 (every label present), as F64.
data::Batch small_batch(int64_t B, int64_t N, int K, uint64_t seed) {
  data::Batch batch;
  batch.points = random_tensor({B, N, 2}, seed, DType::F64, -2.0, 2.0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int> labels(N);
    for (int64_t n = 0; n < N; ++n) labels[n] = int((n + b) % K);
    batch.labels.push_back(labels);
  }
  return batch;
}

// Variants as (density, loss).
const std::vector<std::pair<std::string, std::string>> kVariants{
    {"gaussian", "min"}, {"gaussian", "anc"}, {"maf", "min"}, {"maf", "anc"}};

}  // namespace

TEST_CASE("DAC: the reference sizes, tied and untied, and config round trips", "[models][dac]") {
  Rng rng(0);
  Dac min_net(DacConfig{}, rng);
  REQUIRE(min_net.parameter_count() == 629253);  // DAC-py's MoG min-filtering net, as released
  DacConfig anchored;
  anchored.loss = "anc";
  REQUIRE(Dac(anchored, rng).parameter_count() == 695301);
  DacConfig maf;
  maf.density = "maf";
  REQUIRE(Dac(maf, rng).parameter_count() == 780433);
  DacConfig untied;
  untied.tied = false;
  REQUIRE(Dac(untied, rng).parameter_count() == 1174021);
  REQUIRE(min_net.name() == "dac");
  // DAC-py's init scales: inducing points and the PMA seed are Xavier with 2-D fans.
  for (const auto& [name, p] : min_net.named_parameters()) {
    if (!name.ends_with(".I") && name != "pool.S") continue;
    INFO(name);
    const double bound = name == "pool.S" ? std::sqrt(6.0 / 129.0) : std::sqrt(6.0 / 160.0);
    std::vector<double> v = p.value().to_vector();
    double largest = 0.0;
    for (double x : v) largest = std::max(largest, std::abs(x));
    REQUIRE(largest <= bound);
    REQUIRE(largest > 0.9 * bound);
  }
  REQUIRE(DacConfig::from_json(min_net.config()).to_json() == min_net.config());
  REQUIRE_THROWS_WITH(DacConfig::from_json({{"loss", "max"}}), Catch::Contains("\"min\" or \"anc\""));
  REQUIRE_THROWS_WITH(DacConfig::from_json({{"depth", 2}}), Catch::Contains("unknown key 'depth'"));
  REQUIRE(make_model("dac-maf", {}, rng)->name() == "dac-maf");
  REQUIRE_THROWS_WITH(make_model("dac", {{"density", "maf"}}, rng), Catch::Contains("gaussian"));
}

TEST_CASE("StackedISAB: tied blocks share one ISAB; gradients match finite differences",
          "[nn][dac][grad]") {
  Rng rng(2);
  nn::StackedISAB tied(3, 8, 2, 4, 3, true, rng), untied(3, 8, 2, 4, 3, false, rng);
  REQUIRE(tied.named_parameters().back().first.starts_with("isab1."));
  REQUIRE(untied.named_parameters().back().first.starts_with("isab2."));
  REQUIRE(untied.parameter_count() > tied.parameter_count());
  Tensor mask = i32({0, 1, 0, 0, 0, 0, 0, 1, 1, 0}, {2, 5});
  for (nn::StackedISAB* block : {&tied, &untied})
    require_module_gradcheck(
        *block, [&](const std::vector<Variable>& v) { return block->forward(v[0], mask); },
        {random_tensor({2, 5, 3}, 21)});
}

TEST_CASE("MAF: a context per group of rows equals the same context repeated per row",
          "[nn][dac][flows]") {
  Rng rng(4);
  nn::MAF maf(2, 3, rng, 2, 8);
  maf.to(DType::F64);
  Tensor x = random_tensor({6, 2}, 5), context = random_tensor({2, 3}, 6);
  std::vector<double> c = context.to_vector(), repeated;
  for (int g = 0; g < 2; ++g)
    for (int r = 0; r < 3; ++r) repeated.insert(repeated.end(), c.begin() + g * 3, c.begin() + g * 3 + 3);
  require_close(maf.log_prob(Variable(x), Variable(context)).value(),
                maf.log_prob(Variable(x), Variable(f64(repeated, {6, 3}))).value(), 1e-12, 1e-12);
}

TEST_CASE("DAC: forward and both losses have correct gradients (F64)", "[models][dac][grad]") {
  for (const auto& [density, loss] : kVariants) {
    INFO(density << " density, " << loss << " loss");
    Rng rng(7);
    Dac net(tiny_config(density, loss), rng);
    net.to(DType::F64);
    GradcheckOptions options;
    options.params = net.parameters();
    std::vector<int64_t> anchors = loss == "anc" ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{};
    Tensor mask = i32({0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, {2, 5});
    // The pass: logits and densities with respect to the points and every parameter.
    require_gradcheck(gradcheck(
        [&](const std::vector<Variable>& v) {
          FilterOutput out = net.forward(v[0], mask, anchors);
          return concat({out.logits, out.log_density}, 1);
        },
        {random_tensor({2, 5, 2}, 8)}, options));
    // The loss (labels are constants; anchors come from a fresh Rng per call).
    data::Batch batch = small_batch(2, 6, 3, 9);
    options.wrt = {false};
    require_gradcheck(gradcheck(
        [&](const std::vector<Variable>&) {
          Rng anchor_rng(11);
          return net.loss(batch, anchor_rng);
        },
        {random_tensor({1}, 10)}, options));
  }
}

TEST_CASE("DAC losses equal a direct computation of the reference formulas", "[models][dac]") {
  const int64_t B = 3, N = 7;
  data::Batch batch = small_batch(B, N, 3, 12);
  batch.labels[1] = {0, 0, 0, 0, 0, 0, 0};  // a dataset with one cluster: candidates 1, 2 empty
  for (const std::string loss : {"min", "anc"}) {
    INFO(loss << " loss");
    Rng rng(13);
    Dac net(tiny_config("gaussian", loss), rng);
    net.to(DType::F64);
    Rng anchor_rng(14), replay(14);
    const double value = net.loss(batch, anchor_rng).value().item();
    std::vector<int64_t> anchors;
    if (loss == "anc")
      for (int64_t b = 0; b < B; ++b) anchors.push_back(replay.randint(0, N));
    FilterOutput out = net.forward(Variable(batch.points), {}, anchors);
    std::vector<double> logit = out.logits.value().to_vector(), ll = out.log_density.value().to_vector();
    auto bce = [](double l, double y) { return std::log1p(std::exp(-std::abs(l))) + std::max(l, 0.0) - l * y; };
    double expected = 0.0;
    for (int64_t b = 0; b < B; ++b) {
      double best = INFINITY;
      for (int k = 0; k < 3; ++k) {
        const int target = loss == "anc" ? batch.labels[b][anchors[b]] : k;
        double cross = 0.0, members = 0.0, count = 0.0;
        for (int64_t n = 0; n < N; ++n) {
          const bool in = batch.labels[b][n] == target;
          cross += bce(logit[b * N + n], in ? 1.0 : 0.0) / double(N);
          members += in ? ll[b * N + n] : 0.0;
          count += in;
        }
        if (count > 0) best = std::min(best, cross - members / (count + 1e-8));
        if (loss == "anc") break;
      }
      expected += best / double(B);
    }
    REQUIRE(value == Approx(expected).epsilon(1e-10));
  }
}

TEST_CASE("DAC: a masked point changes nothing for the others; propose_theta is forward's θ", "[models][dac]") {
  for (const auto& [density, loss] : kVariants) {
    INFO(density << " density, " << loss << " loss");
    Rng rng(15);
    Dac net(tiny_config(density, loss), rng);
    net.to(DType::F64);
    const int64_t N = 9;
    Tensor all = random_tensor({1, N, 2}, 16, DType::F64, -3, 3);
    const std::vector<int64_t> removed{2, 5, 6};
    std::vector<double> x = all.to_vector(), kept_points, mask(N, 0.0);
    std::vector<int64_t> kept;
    for (int64_t n = 0; n < N; ++n) {
      if (std::count(removed.begin(), removed.end(), n)) {
        mask[n] = 1.0;
        continue;
      }
      kept.push_back(n);
      kept_points.insert(kept_points.end(), x.begin() + 2 * n, x.begin() + 2 * n + 2);
    }
    const int64_t M = int64_t(kept.size());
    // The anchor is point 3 of the full set, point 2 of the reduced one.
    std::vector<int64_t> anchor_full, anchor_kept;
    if (loss == "anc") anchor_full = {3}, anchor_kept = {2};
    NoGradGuard no_grad;
    FilterOutput masked = net.forward(Variable(all), i32(mask, {1, N}), anchor_full);
    FilterOutput reduced = net.forward(Variable(f64(kept_points, {1, M, 2})), {}, anchor_kept);
    require_close(masked.theta.value(), reduced.theta.value(), 1e-10, 1e-12);
    // propose_theta (the refinement's pass) is forward's θ without the membership head.
    require_close(net.propose_theta(Variable(all), i32(mask, {1, N}), anchor_full).value(),
                  masked.theta.value(), 0.0, 0.0);
    std::vector<double> logits = masked.logits.value().to_vector(), ll = masked.log_density.value().to_vector();
    std::vector<double> kept_logits, kept_ll;
    for (int64_t n : kept) kept_logits.push_back(logits[n]), kept_ll.push_back(ll[n]);
    require_close(f64(kept_logits, {1, M}), reduced.logits.value(), 1e-10, 1e-12);
    require_close(f64(kept_ll, {1, M}), reduced.log_density.value(), 1e-10, 1e-12);
  }
}

TEST_CASE("DAC inference assigns every point exactly once, under every leftover policy",
          "[models][dac]") {
  Rng data_rng(17);
  data::Batch batch = data::Mog("mog", 4, 200).sample(1, data_rng);
  std::vector<double> points = batch.points.to_vector();
  const int64_t N = batch.points.dim(1);
  for (const auto& [density, loss] : kVariants) {
    INFO(density << " density, " << loss << " loss");
    Rng rng(18);
    Dac net(tiny_config(density, loss), rng);
    for (bool refine : {false, true})
    for (Leftovers policy : {Leftovers::Nearest, Leftovers::Own, Leftovers::First})
      for (int64_t passes : {1, 2, 50}) {
        INFO("refine " << refine << ", policy " << int(policy) << ", max passes " << passes);
        InferenceOptions options;
        options.max_passes = passes;
        options.leftovers = policy;
        options.refine = refine;
        std::vector<int64_t> reported;  // the progress hook: claimed points after each pass
        options.progress = [&](int64_t done, int64_t total) {
          REQUIRE(total == N);
          reported.push_back(done);
        };
        ClusterResult r = net.cluster(points, options);
        REQUIRE(int64_t(r.labels.size()) == N);
        REQUIRE(int64_t(reported.size()) <= r.passes);  // once per pass that claimed points
        REQUIRE(std::is_sorted(reported.begin(), reported.end()));
        REQUIRE(std::adjacent_find(reported.begin(), reported.end()) == reported.end());
        REQUIRE((reported.empty() ? 0 : reported.back()) == N - r.leftovers);
        REQUIRE(r.clusters >= 1);
        std::vector<int64_t> counts(r.clusters, 0);
        for (int label : r.labels) {
          REQUIRE(label >= 0);
          REQUIRE(label < r.clusters);
          ++counts[label];
        }
        for (int64_t c : counts) REQUIRE(c > 0);  // every cluster holds a point
        REQUIRE(r.passes <= passes + 1);         // + the leftovers' own pass
        REQUIRE(int64_t(r.membership.size()) == N * r.clusters);
        for (int64_t n = 0; n < N; ++n) {
          double sum = 0.0;
          for (int64_t k = 0; k < r.clusters; ++k) sum += r.membership[n * r.clusters + k];
          REQUIRE(sum == Approx(1.0).epsilon(1e-9));
        }
        if (refine)  // refined: every point is in its most probable cluster
          for (int64_t n = 0; n < N; ++n) {
            const double* m = &r.membership[n * r.clusters];
            REQUIRE(std::max_element(m, m + r.clusters) - m == r.labels[n]);
          }
        REQUIRE(std::isfinite(*r.log_likelihood));
        REQUIRE(r.mixture.has_value() == (density == "gaussian"));
        REQUIRE(bool(r.log_density) == (density == "maf"));
      }
  }
}

TEST_CASE("DAC pruning (shipped dac-mog): every cluster kept is worth BIC's price",
          "[models][dac][shipped]") {
  // The shipped model, where pruning has work to do (an untrained network finds one cluster),
  // on 30 datasets of mog-12's kind.
  const std::string path = (std::filesystem::path(__FILE__).parent_path().parent_path() /
                            "models/checkpoints/dac-mog.safetensors").string();
  std::unique_ptr<ClusteringModel> net = load_model(load_safetensors(path), path);
  Rng data_rng(21);
  data::Batch batch = data::Mog("mog-12", 12, 3000).sample(30, data_rng);
  const int64_t N = batch.points.dim(1), D = 2;
  int64_t removed = 0;
  for (int64_t b = 0; b < 30; ++b) {
    INFO("dataset " << b);
    std::vector<double> all = batch.points.to_vector();
    std::vector<double> points(all.begin() + b * N * D, all.begin() + (b + 1) * N * D);
    InferenceOptions options;
    options.prune = false;
    ClusterResult kept = net->cluster(points, options);
    options.prune = true;
    ClusterResult pruned = net->cluster(points, options);
    REQUIRE(kept.pruned == 0);
    REQUIRE(pruned.clusters + pruned.pruned <= kept.clusters);
    REQUIRE(pruned.passes == kept.passes);
    removed += pruned.pruned;
    // Written out again here: the clustering's log-likelihood Σ_n log π_z(n) p(x_n | θ_z(n))
    // drops by at least ½(2D+1)·ln N when any one cluster goes and its points join their next
    // most probable cluster.
    const data::GaussianMixture& m = *pruned.mixture;
    const int64_t K = pruned.clusters;
    auto log_density = [&](int64_t k, int64_t n) {
      double ll = 0.0;
      for (int64_t d = 0; d < D; ++d) {
        const double z = (points[n * D + d] - m.means[k * D + d]) / m.stddevs[k * D + d];
        ll -= 0.5 * z * z + std::log(m.stddevs[k * D + d]) + 0.5 * std::log(2.0 * M_PI);
      }
      return ll;
    };
    auto weights_term = [&](const std::vector<double>& counts) {
      double sum = 0.0;
      for (double c : counts)
        if (c > 0.0) sum += c * std::log(c / double(N));
      return sum;
    };
    std::vector<double> counts(K, 0.0);
    for (int label : pruned.labels) counts[label] += 1.0;
    for (int64_t k = 0; k < K && K > 1; ++k) {
      INFO("cluster " << k << " of " << K);
      REQUIRE(m.weights[k] == Approx(counts[k] / double(N)));
      std::vector<double> after = counts;
      double drop = weights_term(counts);
      for (int64_t n = 0; n < N; ++n) {
        if (pruned.labels[n] != k) continue;
        int64_t to = -1;
        for (int64_t j = 0; j < K; ++j)
          if (j != k && (to < 0 || std::log(m.weights[j]) + log_density(j, n) >
                                       std::log(m.weights[to]) + log_density(to, n)))
            to = j;
        drop += log_density(k, n) - log_density(to, n);
        after[k] -= 1.0, after[to] += 1.0;
      }
      drop -= weights_term(after);
      REQUIRE(drop >= 0.5 * double(2 * D + 1) * std::log(double(N)));
    }
  }
  REQUIRE(removed >= 1);  // measured: 5 (with half the price, a kept cluster fails above)
}

TEST_CASE("DAC: permuting the points permutes the labels (min model)", "[models][dac]") {
  Rng rng(19);
  Dac net(tiny_config("gaussian", "min"), rng);
  Rng data_rng(20);
  data::Batch batch = data::Mog("mog", 4, 120).sample(1, data_rng);
  std::vector<double> points = batch.points.to_vector();
  const int64_t N = batch.points.dim(1);
  std::vector<int64_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::reverse(order.begin(), order.end());
  std::vector<double> shuffled;
  for (int64_t n : order) shuffled.insert(shuffled.end(), points.begin() + 2 * n, points.begin() + 2 * n + 2);
  for (bool refine : {false, true}) {
    INFO("refine " << refine);
    InferenceOptions options;
    options.refine = refine;
    ClusterResult a = net.cluster(points, options), b = net.cluster(shuffled, options);
    REQUIRE(a.clusters == b.clusters);
    for (int64_t i = 0; i < N; ++i) REQUIRE(b.labels[i] == a.labels[order[i]]);
    REQUIRE(*b.log_likelihood == Approx(*a.log_likelihood).epsilon(1e-5));
  }
}

TEST_CASE("DAC: each variant overfits one batch", "[models][dac][slow]") {
  for (const auto& [density, loss] : kVariants) {
    INFO(density << " density, " << loss << " loss");
    Rng rng(21);
    Dac net(tiny_config(density, loss), rng);
    Rng data_rng(22);
    data::Batch batch = data::Mog("mog", 3, 100).sample(4, data_rng);
    nn::Adam adam(net.named_parameters(), nn::AdamOptions{3e-3});
    double first = 0.0, last = 0.0;
    for (int step = 0; step < 300; ++step) {
      adam.zero_grad();
      Rng anchor_rng(23);  // the same anchors every step: one fixed objective
      Variable value = net.loss(batch, anchor_rng);
      if (step == 0) first = value.value().item();
      last = value.value().item();
      value.backward();
      adam.step();
    }
    INFO("loss " << first << " -> " << last);
    // From a random start to clusters whose members are predicted and whose density fits:
    // the BCE part falls toward 0 and the density part to about the clusters' entropy.
    REQUIRE(last < first - 2.0);
    REQUIRE(last < 1.5);
  }
}

TEST_CASE("backward_in_chunks: micro-batches give the whole batch's loss and gradients",
          "[models][dac][grad]") {
  // Chunks of 2 + 2 + 1 and of 1 datasets, on 1 thread and on 2: at 2 the chunks of both losses
  // run on the threads at once (the anchored loss draws its anchors for the whole batch first).
  // The whole batch's loss() is the reference, and the Rng ends where it leaves it.
  const int threads = ops::cpu_threads();
  for (const std::string loss : {"min", "anc"}) {
    Rng rng(24);
    Dac net(tiny_config("gaussian", loss), rng);
    net.to(DType::F64);
    data::Batch batch = small_batch(5, 8, 3, 25);
    std::vector<std::vector<double>> whole;
    ops::set_cpu_threads(1);
    net.zero_grad();
    Rng reference(26);
    Variable value = net.loss(batch, reference);
    value.backward();
    for (const Variable& p : net.parameters()) whole.push_back(grad_or_zeros(p).to_vector());
    const uint64_t next_draw = reference.engine()();
    for (int t : {1, 2})
      for (int64_t micro_batch : {2, 1}) {
        INFO(loss << " loss, " << t << " threads, micro-batch " << micro_batch);
        ops::set_cpu_threads(t);
        net.zero_grad();
        Rng anchors(26);
        REQUIRE(net.backward(batch, micro_batch, anchors).loss ==
                Approx(value.value().item()).epsilon(1e-12));
        CHECK(anchors.engine()() == next_draw);
        const auto params = net.parameters();
        for (size_t i = 0; i < params.size(); ++i) {
          const Shape shape{int64_t(whole[i].size())};
          require_close(f64(grad_or_zeros(params[i]).to_vector(), shape), f64(whole[i], shape),
                        1e-10, 1e-12);
        }
      }
  }
  ops::set_cpu_threads(threads);
}

TEST_CASE("backward_in_chunks: a non-finite chunk's loss is returned, in order or on threads",
          "[models][grad]") {
  // Loss of a chunk = mean over its datasets of w·(first point's first feature); dataset 3's
  // feature is NaN, so with chunks of 1 the fourth chunk's loss is returned either way.
  const int threads = ops::cpu_threads();
  data::Batch batch;
  batch.points = f64({1, 2, 3, NAN, 5, 6}, {6, 1, 1}).to(DType::F32);
  batch.labels.assign(6, std::vector<int>{0});
  Variable w(f64({2.0}, {1}), true);
  auto loss = [&](const data::Batch& part, int64_t) {
    Variable x(part.points.to(DType::F64));
    return mean_all(reshape(x, {part.points.dim(0)}) * w);
  };
  for (int t : {1, 2})
    for (Chunks chunks : {Chunks::InOrder, Chunks::OnThreads}) {
      INFO(t << " threads, " << (chunks == Chunks::OnThreads ? "on threads" : "in order"));
      ops::set_cpu_threads(t);
      w.zero_grad();
      CHECK(std::isnan(backward_in_chunks(batch, 1, chunks, loss)));
      w.zero_grad();
      batch.points = f64({1, 2, 3, 4, 5, 6}, {6, 1, 1}).to(DType::F32);
      CHECK(backward_in_chunks(batch, 4, chunks, loss) == Approx(2.0 * 3.5));  // 4 + 2
      CHECK(w.grad().item() == Approx(3.5).epsilon(1e-12));
      batch.points = f64({1, 2, 3, NAN, 5, 6}, {6, 1, 1}).to(DType::F32);
    }
  ops::set_cpu_threads(threads);
}

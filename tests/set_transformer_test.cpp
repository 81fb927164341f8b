// The Set Transformer model: its size matches the published network, its loss is the MoG
// negative log-likelihood (checked against data/mixture.h's independent host code), float64
// gradient checks of the loss and the whole model, permutation invariance of the fitted mixture
// (so labels permute with the points), and a tiny overfit run that reaches the oracle's loss.
#include <catch2/catch.hpp>

#include "autograd/functions.h"
#include "data/generator.h"
#include "models/registry.h"
#include "models/set_transformer.h"
#include "nn/optim.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::models;
using namespace ncl::test;

namespace {

// A small network for tests that train or differentiate: width 32, 2 heads, 8 inducing points.
SetTransformerConfig tiny_config() {
  SetTransformerConfig c;
  c.dim = 32;
  c.heads = 2;
  c.inducing = 8;
  c.isab_layers = 1;
  c.sab_layers = 1;
  return c;
}

}  // namespace

TEST_CASE("SetTransformer has the published size and names", "[models]") {
  Rng rng(0);
  SetTransformer net(SetTransformerConfig{}, rng);
  REQUIRE(net.parameter_count() == 423301);  // the peer's ISAB32×2 + PMA4 + SAB×2 + Linear(128→5)
  auto named = net.named_parameters();
  REQUIRE(named.front().first == "isab0.I");
  REQUIRE(named.back().first == "head.bias");
  REQUIRE(SetTransformerConfig::from_json(net.config()).to_json() == net.config());
  REQUIRE_THROWS_WITH(SetTransformerConfig::from_json({{"heads", 3}}),
                      Catch::Contains("multiple of heads"));
  REQUIRE_THROWS_WITH(SetTransformerConfig::from_json({{"depth", 3}}),
                      Catch::Contains("unknown key 'depth'"));
  REQUIRE_THROWS_WITH(make_model("kmeans", {}, rng), Catch::Contains("known: set-transformer"));
}

TEST_CASE("mixture_log_likelihood equals the host mixture code", "[models]") {
  Rng rng(3);
  const int64_t B = 2, N = 7, K = 3, D = 2;
  Tensor x = random_tensor({B, N, D}, 1, DType::F64, -3, 3);
  MixtureOutput m{Variable(random_tensor({B, K}, 2)), Variable(random_tensor({B, K, D}, 3, DType::F64, -2, 2)),
                  Variable(random_tensor({B, K, D}, 4, DType::F64, 0.3, 1.5))};
  std::vector<double> ll = mixture_log_likelihood(Variable(x), m).value().to_vector();
  std::vector<double> all = x.to_vector();
  for (int64_t b = 0; b < B; ++b) {
    data::GaussianMixture g = to_gaussian_mixture(m, b);
    std::vector<double> points(all.begin() + b * N * D, all.begin() + (b + 1) * N * D);
    double mean = 0.0;
    for (int64_t n = 0; n < N; ++n) mean += ll[b * N + n] / double(N);
    REQUIRE(mean == Approx(data::mean_log_likelihood(g, points, 1e-10)).epsilon(1e-12));
  }
}

TEST_CASE("MoG log-likelihood passes a float64 gradient check", "[models][grad]") {
  const int64_t B = 2, N = 5, K = 3, D = 2;
  std::vector<Tensor> inputs{random_tensor({B, N, D}, 11, DType::F64, -2, 2), random_tensor({B, K}, 12),
                             random_tensor({B, K, D}, 13), random_tensor({B, K, D}, 14, DType::F64, 0.5, 1.5)};
  auto fn = [](const std::vector<Variable>& v) {
    return mixture_log_likelihood(v[0], MixtureOutput{v[1], v[2], v[3]});
  };
  require_gradcheck(gradcheck(fn, inputs));
}

TEST_CASE("the whole Set Transformer passes a float64 gradient check", "[models][grad]") {
  Rng rng(5);
  SetTransformer net(tiny_config(), rng);
  net.to(DType::F64);
  GradcheckOptions options;
  options.params = net.parameters();
  auto fn = [&](const std::vector<Variable>& v) {
    return neg(mean_all(mixture_log_likelihood(v[0], net.forward(v[0]))));
  };
  require_gradcheck(gradcheck(fn, {random_tensor({2, 6, 2}, 21, DType::F64, -2, 2)}, options));
}

TEST_CASE("permuting the points permutes the labels and leaves the mixture unchanged", "[models]") {
  Rng rng(7);
  SetTransformer net(SetTransformerConfig{}, rng);
  data::Batch batch = data::MogK4().sample(1, rng);
  const int64_t N = batch.points.dim(1), D = 2;
  std::vector<double> x = batch.points.to_vector(), shuffled(x.size());
  std::vector<int64_t> perm = rng.permutation(N);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) shuffled[n * D + d] = x[perm[n] * D + d];
  ClusterResult a = net.cluster(x), b = net.cluster(shuffled);
  for (int64_t k = 0; k < a.clusters; ++k) {
    REQUIRE(b.mixture->weights[k] == Approx(a.mixture->weights[k]).epsilon(1e-5));
    for (int64_t d = 0; d < D; ++d)
      REQUIRE(b.mixture->means[k * D + d] == Approx(a.mixture->means[k * D + d]).epsilon(1e-5));
  }
  int agree = 0;
  for (int64_t n = 0; n < N; ++n) agree += b.labels[n] == a.labels[perm[n]];
  REQUIRE(agree >= N - 1);  // float32 sums in another order may flip a point on a boundary
  REQUIRE(*b.log_likelihood == Approx(*a.log_likelihood).epsilon(1e-5));
}

TEST_CASE("a tiny Set Transformer overfits one batch down to the oracle's loss", "[models][overfit]") {
  Rng rng(1);
  SetTransformer net(tiny_config(), rng);
  data::Batch batch = data::MogK4().sample(2, rng);
  double oracle = 0.0;
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<double> all = batch.points.to_vector();
    const int64_t N = batch.points.dim(1);
    std::vector<double> points(all.begin() + b * N * 2, all.begin() + (b + 1) * N * 2);
    oracle -= data::mean_log_likelihood(batch.truth[b], points) / 2.0;
  }
  nn::Adam adam(net.named_parameters(), nn::AdamOptions{3e-3});
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 1500; ++step) {
    adam.zero_grad();
    Variable loss = net.loss(batch, rng);
    if (step == 0) first = loss.value().item();
    last = loss.value().item();
    loss.backward();
    adam.step();
  }
  INFO("initial loss " << first << ", final " << last << ", oracle " << oracle);
  REQUIRE(last < first - 1.0);
  REQUIRE(last < oracle + 0.05);
}

// nn/ layers and set blocks: float64 gradient checks for Linear, MLP (ReLU, PReLU, ELU),
// LayerNorm, MAB (± key mask, ± LayerNorm), SAB, ISAB, PMA; permutation equivariance and
// invariance; masking a point equals removing it.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "nn/attention.h"
#include "nn/layers.h"
#include "tensor/ops.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::nn;
using namespace ncl::test;

namespace {

// Key mask (B, N) as I32, 1 = removed.
Tensor mask_of(const std::vector<double>& values, int64_t B, int64_t N) {
  return Tensor::from_vector(values, {B, N}, DType::I32);
}

// Rows of a (B, N, D) tensor reordered by perm along N.
Tensor permute_set(const Tensor& x, const std::vector<int64_t>& perm) {
  std::vector<double> index;
  for (int64_t b = 0; b < x.dim(0); ++b)
    for (int64_t p : perm) index.push_back(double(b * x.dim(1) + p));
  Tensor flat = x.reshape({x.dim(0) * x.dim(1), x.dim(2)});
  Tensor idx = Tensor::from_vector(index, {int64_t(index.size())}, DType::I32);
  return ops::index_select(flat, idx).reshape(x.shape());
}

}  // namespace

TEST_CASE("Linear, MLP and LayerNorm: gradients match finite differences (F64)", "[nn][grad]") {
  Rng rng(1);
  SECTION("Linear on a rank-3 input") {
    Linear linear(5, 3, rng);
    require_module_gradcheck(linear, [&](const std::vector<Variable>& x) { return linear.forward(x[0]); },
                 {random_tensor({2, 3, 5}, 11)});
  }
  SECTION("Linear without bias") {
    Linear linear(4, 3, rng, /*bias=*/false);
    require_module_gradcheck(linear, [&](const std::vector<Variable>& x) { return linear.forward(x[0]); },
                 {random_tensor({3, 4}, 12)});
  }
  for (Activation act : {Activation::ReLU, Activation::PReLU, Activation::ELU}) {
    DYNAMIC_SECTION("MLP with activation " << int(act)) {
      MLP mlp({3, 7, 5, 2}, act, rng);
      require_module_gradcheck(mlp, [&](const std::vector<Variable>& x) { return mlp.forward(x[0]); },
                   {random_tensor({2, 5, 3}, 13)});
    }
  }
  SECTION("LayerNorm") {
    LayerNorm ln(5);
    ln.weight.set_value(random_tensor({5}, 14, DType::F32, 0.5, 1.5));
    ln.bias.set_value(random_tensor({5}, 15, DType::F32));
    require_module_gradcheck(ln, [&](const std::vector<Variable>& x) { return ln.forward(x[0]); },
                 {random_tensor({2, 3, 5}, 16)});
  }
}

TEST_CASE("MLP: PReLU slopes start at 0.25 and the parameter count is right", "[nn]") {
  Rng rng(2);
  MLP mlp({2, 4, 3}, Activation::PReLU, rng, /*final_bias=*/false);
  // (2·4 + 4) + 1 slope + 4·3 (no final bias)
  REQUIRE(mlp.parameter_count() == 12 + 1 + 12);
  auto named = mlp.named_parameters();
  bool found = false;
  for (auto& [name, p] : named)
    if (name == "prelu.0") {
      found = true;
      REQUIRE(p.value().item() == Approx(0.25));
    }
  REQUIRE(found);
}

TEST_CASE("Set blocks: gradients match finite differences (F64)", "[nn][grad]") {
  Rng rng(3);
  Tensor X = random_tensor({2, 5, 3}, 21), Y = random_tensor({2, 4, 6}, 22);
  Tensor mask = mask_of({0, 1, 0, 0, 1, 1, 1, 1}, 2, 4);  // set 1 fully masked
  for (bool ln : {false, true})
    for (bool masked : {false, true}) {
      DYNAMIC_SECTION("MAB ln=" << ln << " mask=" << masked) {
        MAB mab(3, 6, 8, 2, ln, rng);
        Tensor m = masked ? mask : Tensor();
        require_module_gradcheck(mab, [&](const std::vector<Variable>& v) { return mab.forward(v[0], v[1], m); },
                     {X, Y});
      }
    }
  SECTION("SAB with a key mask") {
    SAB sab(3, 8, 4, false, rng);
    Tensor m = mask_of({0, 0, 1, 0, 1, 0, 0, 0, 0, 1}, 2, 5);
    require_module_gradcheck(sab, [&](const std::vector<Variable>& v) { return sab.forward(v[0], m); }, {X});
  }
  SECTION("ISAB with a key mask") {
    ISAB isab(3, 8, 2, 3, false, rng);
    Tensor m = mask_of({0, 0, 1, 0, 1, 0, 0, 0, 0, 1}, 2, 5);
    require_module_gradcheck(isab, [&](const std::vector<Variable>& v) { return isab.forward(v[0], m); }, {X});
  }
  SECTION("PMA with LayerNorm") {
    PMA pma(8, 4, 2, true, rng);
    require_module_gradcheck(pma, [&](const std::vector<Variable>& v) { return pma.forward(v[0]); },
                 {random_tensor({2, 5, 8}, 23)});
  }
}

TEST_CASE("Set blocks: permuting the set permutes SAB/ISAB and leaves PMA unchanged", "[nn]") {
  Rng rng(4);
  SAB sab(2, 16, 4, false, rng);
  ISAB isab(2, 16, 4, 5, false, rng);
  PMA pma(16, 4, 3, false, rng);
  Tensor X = random_tensor({3, 7, 2}, 31, DType::F32, -2, 2);
  std::vector<int64_t> perm = {4, 0, 6, 2, 1, 5, 3};
  Tensor Xp = permute_set(X, perm);
  NoGradGuard no_grad;
  for (auto* block : {static_cast<Module*>(&sab), static_cast<Module*>(&isab)}) {
    auto run = [&](const Tensor& x) {
      return block == &sab ? sab.forward(Variable(x)).value() : isab.forward(Variable(x)).value();
    };
    require_close(run(Xp), permute_set(run(X), perm), 1e-5, 1e-5);
  }
  Tensor Z = sab.forward(Variable(X)).value();
  require_close(pma.forward(Variable(permute_set(Z, perm))).value(),
                pma.forward(Variable(Z)).value(), 1e-5, 1e-5);
}

TEST_CASE("Set blocks: a masked point is the same as a removed point", "[nn]") {
  Rng rng(5);
  ISAB isab(2, 8, 2, 4, false, rng);
  PMA pma(8, 2, 2, false, rng);
  Tensor X = random_tensor({1, 6, 2}, 41, DType::F32);
  Tensor mask = mask_of({0, 1, 0, 0, 1, 0}, 1, 6);
  Tensor kept = ops::index_select(X.reshape({6, 2}),
                                  Tensor::from_vector({0, 2, 3, 5}, {4}, DType::I32))
                    .reshape({1, 4, 2});
  NoGradGuard no_grad;
  Tensor with_mask = pma.forward(isab.forward(Variable(X), mask), mask).value();
  Tensor without = pma.forward(isab.forward(Variable(kept))).value();
  require_close(with_mask, without, 1e-5, 1e-6);
}

TEST_CASE("MAB: a fully masked set gives zero attention, never NaN", "[nn]") {
  Rng rng(6);
  MAB mab(3, 3, 4, 2, false, rng);
  Tensor X = random_tensor({1, 2, 3}, 51, DType::F32), Y = random_tensor({1, 3, 3}, 52, DType::F32);
  Tensor all = mask_of({1, 1, 1}, 1, 3);
  NoGradGuard no_grad;
  Tensor out = mab.forward(Variable(X), Variable(Y), all).value();
  // With every key removed the attention term is 0, so O = Q + relu(Q Woᵀ + bo), Q = X Wqᵀ + bq.
  auto param = [&](const std::string& name) {
    for (auto& [n, p] : mab.named_parameters())
      if (n == name) return p.value();
    FAIL("no parameter " << name);
    return Tensor();
  };
  Tensor Q = ops::add(ops::matmul(X, param("fc_q.weight"), false, true), param("fc_q.bias"));
  Tensor rff = ops::unary(UnaryOp::Relu, ops::add(ops::matmul(Q, param("fc_o.weight"), false, true),
                                                   param("fc_o.bias")));
  require_close(out, ops::add(Q, rff), 1e-6, 1e-6);
}

TEST_CASE("MAB with shared queries (projections folded into them) in F32 matches F64", "[nn]") {
  // ISAB's first attention at training size: 32 inducing points over 300 points of 128
  // features, 4 heads; set 1 loses a third of its points, set 2 all of them. Float64 runs the
  // same formula through other kernels (and set_blocks_test checks it against PyTorch), so this
  // checks the float32 ones: the scores' product, softmax down 128 columns, A·Y and the rest.
  Rng rng(8);
  MAB mab(128, 128, 128, 4, /*ln=*/false, rng);
  Tensor inducing = random_tensor({1, 32, 128}, 81, DType::F32);
  Tensor points = random_tensor({3, 300, 128}, 82, DType::F32);
  std::vector<double> removed(3 * 300, 0.0);
  for (int n = 0; n < 300; ++n) removed[300 + size_t(n)] = n % 3 == 0;
  for (int n = 0; n < 300; ++n) removed[600 + size_t(n)] = 1.0;
  const Tensor mask = mask_of(removed, 3, 300);
  Tensor weights = random_tensor({3, 32, 128}, 83, DType::F64);
  for (const Tensor& key_mask : {Tensor(), mask}) {
    INFO((key_mask.defined() ? "with a key mask" : "without a mask"));
    std::vector<Tensor> out, dpoints;
    std::vector<std::vector<Tensor>> dparams;
    for (DType dtype : {DType::F32, DType::F64}) {
      mab.to(dtype);
      mab.zero_grad();
      Variable Y(points.to(dtype), true);
      Variable O = mab.forward(Variable(inducing.to(dtype)), Y, key_mask);
      sum_all(O * Variable(weights.to(dtype))).backward();
      out.push_back(O.value().to(DType::F64));
      dpoints.push_back(Y.grad().to(DType::F64));
      dparams.emplace_back();
      for (const Variable& p : mab.parameters())
        dparams.back().push_back(grad_or_zeros(p).to(DType::F64));
    }
    require_close(out[0], out[1], 1e-4, 1e-5);
    require_close(dpoints[0], dpoints[1], 1e-3, 1e-6);
    for (size_t i = 0; i < dparams[0].size(); ++i) {
      INFO("parameter " << i);
      require_close(dparams[0][i], dparams[1][i], 1e-3, 1e-5);
    }
  }
}

TEST_CASE("MAB: shared queries folded or computed the reference way agree (F64)", "[nn]") {
  // nn::set_fold_shared_queries(false) runs K = Y Wkᵀ + bk, V = Y Wvᵀ + bv and the per-head
  // products; with it on, the projections are folded into the queries. Same outputs and input
  // gradients; the parameters' too, except fc_k.bias, which the folded path leaves without one
  // (the reference's is 0 up to rounding). Set 1 loses some keys, set 2 all of them.
  Rng rng(12);
  MAB mab(6, 5, 8, 2, /*ln=*/false, rng);
  mab.to(DType::F64);
  Tensor queries = random_tensor({1, 3, 6}, 121), keys = random_tensor({3, 7, 5}, 122);
  Tensor weights = random_tensor({3, 3, 8}, 123);
  const Tensor mask =
      mask_of({0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1}, 3, 7);
  for (const Tensor& key_mask : {Tensor(), mask}) {
    INFO((key_mask.defined() ? "with a key mask" : "without a mask"));
    std::vector<Tensor> out, dqueries, dkeys;
    std::map<std::string, std::vector<Tensor>> dparams;
    for (bool fold : {true, false}) {
      set_fold_shared_queries(fold);
      mab.zero_grad();
      Variable X(queries, true), Y(keys, true);
      Variable O = mab.forward(X, Y, key_mask);
      sum_all(O * Variable(weights)).backward();
      set_fold_shared_queries(true);
      out.push_back(O.value());
      dqueries.push_back(X.grad());
      dkeys.push_back(Y.grad());
      for (const auto& [name, p] : mab.named_parameters()) {
        if (name == "fc_k.bias") {
          CHECK(p.grad().defined() != fold);
          if (!fold) require_close(p.grad(), Tensor::zeros(p.shape(), DType::F64), 0, 1e-14);
          continue;
        }
        dparams[name].push_back(p.grad());
      }
    }
    require_close(out[0], out[1], 1e-13, 1e-13);
    require_close(dqueries[0], dqueries[1], 1e-12, 1e-13);
    require_close(dkeys[0], dkeys[1], 1e-12, 1e-13);
    for (const auto& [name, grads] : dparams) {
      INFO("parameter " << name);
      require_close(grads[0], grads[1], 1e-12, 1e-13);
    }
  }
  SECTION("sets without points: no attention, O = Q + rFF(Q) either way") {
    std::vector<Tensor> out;
    for (bool fold : {true, false}) {
      set_fold_shared_queries(fold);
      out.push_back(mab.forward(Variable(queries), Variable(Tensor::zeros({2, 0, 5}, DType::F64)))
                        .value());
      set_fold_shared_queries(true);
    }
    require_close(out[0], out[1], 1e-14, 1e-14);
  }
}

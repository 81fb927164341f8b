// MAB (± LayerNorm, ± key mask with a fully masked set), ISAB and PMA reproduce
// ../shared/testdata/set_blocks.json: outputs and every input and parameter gradient,
// computed independently with PyTorch in float64, to 1e-10.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/functions.h"
#include "nn/attention.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::nn;
using namespace ncl::test;
using json = nlohmann::json;

namespace {

// The fixtures use D = 8 with 2 heads (contiguous blocks of 4 features).
constexpr int64_t kHeads = 2;

json load_cases() {
  std::ifstream in(std::string(NCL_TESTDATA_DIR) + "/set_blocks.json");
  REQUIRE(in.good());
  return json::parse(in)["cases"];
}

Tensor tensor_of(const json& entry, DType dtype = DType::F64) {
  std::vector<double> values;
  for (const auto& v : entry["data"]) values.push_back(v.is_boolean() ? double(v.get<bool>()) : v.get<double>());
  return Tensor::from_vector(values, Shape(entry["shape"].get<std::vector<int64_t>>()), dtype);
}

// Overwrites every parameter with the fixture's values; the two name sets must be equal.
void load_params(Module& module, const json& params) {
  auto named = module.named_parameters();
  REQUIRE(named.size() == params.size());
  for (auto& [name, p] : named) {
    INFO("parameter " << name);
    REQUIRE(params.contains(name));
    Tensor t = tensor_of(params[name]);
    REQUIRE(t.shape() == p.shape());
    p.set_value(t);
  }
}

void check_case(Module& module, const json& c,
                const std::function<Variable(const std::vector<Variable>&, const Tensor&)>& run) {
  load_params(module, c["params"]);
  std::vector<Variable> inputs;
  std::vector<std::string> names;
  for (auto& [name, entry] : c["inputs"].items()) {
    inputs.emplace_back(tensor_of(entry), true);
    names.push_back(name);
  }
  Tensor mask = c["masks"].contains("key_mask") ? tensor_of(c["masks"]["key_mask"], DType::I32)
                                                : Tensor();
  Variable out = run(inputs, mask);
  require_close(out.value(), tensor_of(c["out"]), 1e-10, 1e-10);
  sum_all(out * Variable(tensor_of(c["R"]))).backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of input " << names[i]);
    require_close(inputs[i].grad(), tensor_of(c["grad_inputs"][names[i]]), 1e-10, 1e-10);
  }
  for (auto& [name, p] : module.named_parameters()) {
    INFO("gradient of parameter " << name);
    require_close(grad_or_zeros(p), tensor_of(c["grad_params"][name]), 1e-10, 1e-10);
  }
}

}  // namespace

TEST_CASE("Set blocks reproduce the independent PyTorch float64 fixtures", "[nn]") {
  json cases = load_cases();
  REQUIRE(cases.size() == 5);
  Rng rng(0);
  for (const json& c : cases) {
    std::string name = c["name"];
    DYNAMIC_SECTION(name) {
      if (name.rfind("mab", 0) == 0) {
        bool ln = c["params"].contains("ln0.weight");
        int64_t dq = c["inputs"]["X"]["shape"][2], dk = c["inputs"]["Y"]["shape"][2];
        int64_t dim = c["out"]["shape"][2];
        MAB mab(dq, dk, dim, kHeads, ln, rng);
        check_case(mab, c, [&](const std::vector<Variable>& v, const Tensor& m) {
          return mab.forward(v[0], v[1], m);
        });
      } else if (name == "isab") {
        int64_t din = c["inputs"]["X"]["shape"][2], m = c["params"]["I"]["shape"][1];
        ISAB isab(din, c["out"]["shape"][2], kHeads, m, false, rng);
        check_case(isab, c, [&](const std::vector<Variable>& v, const Tensor& mask) {
          return isab.forward(v[0], mask);
        });
      } else {
        REQUIRE(name == "pma");
        PMA pma(c["inputs"]["Z"]["shape"][2], kHeads, c["params"]["S"]["shape"][1], false, rng);
        check_case(pma, c, [&](const std::vector<Variable>& v, const Tensor& mask) {
          return pma.forward(v[0], mask);
        });
      }
    }
  }
}

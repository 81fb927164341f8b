#include "tests/helpers.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <sstream>
#include <vector>

#include "tensor/random.h"
#include "tensor/safetensors.h"

namespace ncl::test {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype, double lo, double hi) {
  Rng rng(seed);
  return rng.uniform_tensor(shape, lo, hi, dtype);
}

namespace {
std::string first_entries(const std::vector<double>& v) {
  std::ostringstream out;
  out.precision(10);
  out << "[";
  for (size_t i = 0; i < v.size() && i < 5; ++i) out << (i ? ", " : "") << v[i];
  return out.str() + (v.size() > 5 ? ", ...]" : "]");
}
}  // namespace

void require_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  INFO("actual " << actual.shape() << ", expected " << expected.shape());
  REQUIRE(actual.shape() == expected.shape());
  std::vector<double> a = actual.to_vector(), e = expected.to_vector();
  // Worst element by how far it is past its own tolerance; a NaN on either side is the worst.
  size_t worst = 0;
  double worst_excess = -INFINITY, max_abs_diff = 0;
  bool ok = true;
  for (size_t i = 0; i < a.size(); ++i) {
    double diff = std::abs(a[i] - e[i]);
    bool same_inf = std::isinf(a[i]) && a[i] == e[i];
    double excess = same_inf ? -INFINITY : std::isnan(diff) ? INFINITY
                                                            : diff - (atol + rtol * std::abs(e[i]));
    if (!same_inf) max_abs_diff = std::max(max_abs_diff, std::isnan(diff) ? INFINITY : diff);
    if (excess > 0) ok = false;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (ok) return;
  std::ostringstream msg;
  msg.precision(12);
  msg << "not close (rtol " << rtol << ", atol " << atol << "): worst at flat index " << worst
      << ": actual " << a[worst] << " expected " << e[worst] << "; max |diff| " << max_abs_diff
      << "\n  actual   " << first_entries(a) << "\n  expected " << first_entries(e);
  FAIL(msg.str());
}

Tensor grad_or_zeros(const Variable& p) {
  return p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), p.dtype(), p.device());
}

void require_gradcheck(const GradcheckResult& result) {
  INFO(result.message);
  REQUIRE(result.ok);
}

void require_module_gradcheck(nn::Module& module, const GradcheckFn& fn,
                              const std::vector<Tensor>& inputs) {
  module.to(DType::F64);
  GradcheckOptions options;
  options.params = module.parameters();
  require_gradcheck(gradcheck(fn, inputs, options));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Run run_ncl(const std::string& args) { return run_shell(std::string(NCL_BINARY) + " " + args + " 2>&1"); }
const std::string kSmallSetTransformer =
    R"(--config '{"dim":32,"heads":2,"inducing":8,"isab_layers":1,"sab_layers":1}' --batch 2)";
const std::string kSmallDac =
    R"(--config '{"dim":16,"heads":2,"inducing":4,"blocks":2,"flow_blocks":2,"flow_hidden":16}')"
    " --batch 2";
const std::string kSmallNcp =
    R"(--model ncp --config '{"hidden":8,"h_dim":8,"g_dim":8,"encoder_layers":1,"g_layers":1,)"
    R"("f_layers":1,"orders":2}' --batch 4)";

Run train_ok(const std::string& args, const std::string& out) {
  Run r = run_ncl("train " + args + " --log-every 0 --out " + out);
  INFO(r.output);
  REQUIRE(r.code == 0);
  return r;
}

Run run_shell_stdout(const std::string& command) { return run_shell(command + " 2>/dev/null"); }
Run run_ncl_stdout(const std::string& args) { return run_shell_stdout(std::string(NCL_BINARY) + " " + args); }

Run run_shell(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  std::array<char, 4096> buffer;
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) out.append(buffer.data(), n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

void require_refused(const std::vector<Refusal>& cases) {
  for (const Refusal& c : cases) {
    Run r = run_ncl(c.args + " < /dev/null");
    INFO(c.args << "\n" << r.output);
    REQUIRE(r.code == c.code);
    REQUIRE_THAT(r.output, Catch::Contains(c.says));
    REQUIRE(std::count(r.output.begin(), r.output.end(), '\n') <= 2);
  }
}

void require_same_checkpoint(const std::string& a, const std::string& b) {
  TensorFile ta = load_safetensors(a), tb = load_safetensors(b);
  REQUIRE(ta.metadata.at("step") == tb.metadata.at("step"));
  REQUIRE(ta.metadata.at("rng") == tb.metadata.at("rng"));
  REQUIRE(ta.tensors.size() == tb.tensors.size());
  for (const auto& [name, t] : ta.tensors) {
    INFO("tensor " << name);
    const Tensor* u = tb.find(name);
    REQUIRE(u != nullptr);
    REQUIRE(u->nbytes() == t.nbytes());
    REQUIRE(std::memcmp(u->raw_data(), t.raw_data(), t.nbytes()) == 0);
  }
}

void require_exact_resume(const std::string& args, int steps, int until,
                          const std::string& resume_args) {
  const std::string whole = temp_file("resume_whole.safetensors");
  const std::string parts = temp_file("resume_parts.safetensors");
  const std::string run = args + " --steps " + std::to_string(steps);
  train_ok(run, whole);
  train_ok(run + " --until " + std::to_string(until), parts);
  REQUIRE(load_safetensors(parts).metadata.at("step") == std::to_string(until));
  Run resume =
      run_ncl("train --resume " + parts + " --out " + parts + " --log-every 0 " + resume_args);
  INFO(resume.output);
  REQUIRE(resume.code == 0);
  REQUIRE(load_safetensors(parts).metadata.at("step") == std::to_string(steps));
  require_same_checkpoint(whole, parts);
  std::filesystem::remove(whole);
  std::filesystem::remove(parts);
}

std::string temp_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("ncl_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

}  // namespace ncl::test

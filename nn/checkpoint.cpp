#include "nn/checkpoint.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace ncl::nn {
namespace {
bool is_optimizer_state(const std::string& name) { return name.rfind("adam.", 0) == 0; }

// The index of the first NaN or ±Inf among a host tensor's floats, or −1 (integers: always −1).
template <class T>
int64_t first_non_finite(const T* values, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i])) return i;
  return -1;
}
constexpr const char* kNonFiniteHint =
    "; HINT: the file is damaged or was saved from a diverged run: use an earlier checkpoint";

int64_t first_non_finite(const Tensor& t) {
  if (t.dtype() == DType::F32) return first_non_finite(t.data<float>(), t.numel());
  if (t.dtype() == DType::F64) return first_non_finite(t.data<double>(), t.numel());
  return -1;
}
}  // namespace

void save_checkpoint(const std::string& path, const Module& module, const Adam* optimizer,
                     std::map<std::string, std::string> metadata) {
  TensorFile file;
  file.metadata = std::move(metadata);
  file.metadata["format"] = kCheckpointFormat;
  file.metadata["format_version"] = std::to_string(kCheckpointVersion);
  for (const auto& [name, p] : module.named_parameters()) file.tensors.emplace_back(name, p.value());
  if (optimizer) {
    for (auto& entry : optimizer->state()) file.tensors.push_back(entry);
    file.metadata["adam.step"] = std::to_string(optimizer->steps_taken());
  }
  save_safetensors(path, file);
}

TensorFile load_checkpoint(const std::string& path) {
  TensorFile file = load_safetensors(path);
  auto format = file.metadata.find("format");
  NCL_CHECK(format != file.metadata.end() && format->second == kCheckpointFormat, path,
            ": a safetensors file but not an ncl checkpoint (metadata 'format' is ",
            format == file.metadata.end() ? "missing" : "'" + format->second + "'", ")");
  auto version = file.metadata.find("format_version");
  NCL_CHECK(version != file.metadata.end() &&
                version->second == std::to_string(kCheckpointVersion),
            path, ": checkpoint format version ",
            version == file.metadata.end() ? "missing" : version->second, ", this ncl reads ",
            kCheckpointVersion, "; HINT: re-train or convert the checkpoint with the ncl that made it");
  return file;
}

void load_parameters(Module& module, const TensorFile& checkpoint) {
  std::set<std::string> expected;
  // Check everything first, so a failed load leaves the module untouched.
  auto params = module.named_parameters();
  for (const auto& [name, p] : params) {
    expected.insert(name);
    const Tensor* t = checkpoint.find(name);
    NCL_CHECK(t != nullptr, "checkpoint: parameter '", name, "' ", p.shape(),
              " is missing; HINT: was it saved from a different model or configuration?");
    NCL_CHECK(t->shape() == p.shape(), "checkpoint: parameter '", name, "' has shape ",
              t->shape(), ", the model expects ", p.shape());
    NCL_CHECK(t->dtype() == p.dtype(), "checkpoint: parameter '", name, "' is ", t->dtype(),
              ", the model expects ", p.dtype());
    // Training does not save a non-finite parameter (the divergence monitor rolls back first),
    // so one here means a damaged file; loaded, it would turn every output into NaN unnoticed.
    const int64_t bad = first_non_finite(*t);
    NCL_CHECK(bad < 0, "checkpoint: parameter '", name, "' holds a non-finite value (NaN or Inf) ",
              "at element ", bad, kNonFiniteHint);
  }
  for (const auto& [name, t] : checkpoint.tensors)
    NCL_CHECK(expected.count(name) || is_optimizer_state(name), "checkpoint: unexpected tensor '",
              name, "' ", t.shape(), " not in the model; HINT: wrong model or configuration?");
  for (auto& [name, p] : params) {
    p.set_value(checkpoint.find(name)->to(p.device()).clone());
    p.zero_grad();
  }
}

void load_optimizer(Adam& optimizer, const TensorFile& checkpoint) {
  auto step = checkpoint.metadata.find("adam.step");
  NCL_CHECK(step != checkpoint.metadata.end(), "checkpoint: no optimizer state "
            "(metadata 'adam.step' missing); HINT: it was saved without --resume support");
  std::vector<std::pair<std::string, Tensor>> state;
  for (const auto& entry : checkpoint.tensors) {
    if (!is_optimizer_state(entry.first)) continue;
    const int64_t bad = first_non_finite(entry.second);
    NCL_CHECK(bad < 0, "checkpoint: optimizer state '", entry.first, "' holds a non-finite value ",
              "(NaN or Inf) at element ", bad, kNonFiniteHint);
    state.push_back(entry);
  }
  int64_t steps = 0;
  const std::string& text = step->second;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), steps);
  NCL_CHECK(!text.empty() && error == std::errc() && end == text.data() + text.size() && steps >= 0,
            "checkpoint: metadata 'adam.step' is not a step count: '", text, "'");
  optimizer.load_state(state, steps);
}

std::string exact_decimal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double metadata_number(const std::string& text, const std::string& key, const std::string& path,
                       bool allow_inf) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  NCL_CHECK(!text.empty() && end == text.c_str() + text.size() && !std::isnan(v) &&
                (allow_inf || std::isfinite(v)),
            path, ": checkpoint metadata '", key, "' is not a number: '", text, "'");
  return v;
}

}  // namespace ncl::nn

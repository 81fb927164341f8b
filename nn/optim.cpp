#include "nn/optim.h"

#include <cmath>
#include <numbers>

#include "tensor/ops.h"

namespace ncl::nn {

Adam::Adam(std::vector<NamedParameter> params, AdamOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& [name, p] : params_) {
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
}

void Adam::step() {
  ++step_;
  AdamArgs args{options_.lr, options_.beta1, options_.beta2, options_.eps, options_.weight_decay,
                options_.decoupled, step_};
  auto update = [&](size_t i) {
    Variable& p = params_[i].second;
    if (!p.grad().defined()) return;
    Tensor value = p.value();
    ops::adam_step(value, p.grad(), m_[i], v_[i], args);
  };
  // On the CPU, parameters of 32k elements and more are split over the threads one by one (the
  // kernel does that), and the smaller ones, most of them, are shared out over the threads
  // whole: each update is memory-bound, and one after another they used one core's bandwidth.
  bool cpu = true;
  std::vector<int64_t> sizes;
  for (const auto& [name, p] : params_) {
    sizes.push_back(p.grad().defined() ? p.numel() : 0);
    cpu = cpu && p.value().device() == Device::CPU;
  }
  if (cpu) ops::run_cpu_shares(sizes, 32768, update);
  else
    for (size_t i = 0; i < params_.size(); ++i) update(i);
}

void Adam::restart() {
  for (Tensor& t : m_) ops::fill_(t, 0.0);
  for (Tensor& t : v_) ops::fill_(t, 0.0);
  step_ = 0;
}

void Adam::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Adam::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back("adam.m." + params_[i].first, m_[i]);
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back("adam.v." + params_[i].first, v_[i]);
  return out;
}

void Adam::load_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t step) {
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
    NCL_CHECK(false, "Adam::load_state: optimizer state '", name, "' is missing");
    static Tensor none;
    return none;
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    for (auto [prefix, slot] : {std::pair{"adam.m.", &m_[i]}, std::pair{"adam.v.", &v_[i]}}) {
      const Tensor& t = find(prefix + name);
      NCL_CHECK(t.shape() == slot->shape(), "Adam::load_state: '", prefix, name, "' has shape ",
                t.shape(), ", the parameter has ", slot->shape());
      *slot = t.to(slot->dtype()).to(slot->device()).clone();
    }
  }
  step_ = step;
}

double grad_norm(const std::vector<Variable>& params) {
  double total = 0;
  for (const Variable& p : params)
    if (p.grad().defined()) total += ops::sum_all(ops::unary(UnaryOp::Square, p.grad())).item();
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Variable>& params, double max_norm) {
  double norm = grad_norm(params);
  if (norm > max_norm) {
    double factor = max_norm / (norm + 1e-6);
    for (const Variable& p : params) {
      if (!p.grad().defined()) continue;
      const_cast<Variable&>(p).set_grad(ops::scale(p.grad(), factor));
    }
  }
  return norm;
}

double StepSchedule::lr(int64_t step) const {
  double rate = base;
  for (int64_t m : milestones)
    if (step >= m) rate *= gamma;
  return rate;
}

double CosineSchedule::lr(int64_t step) const {
  if (step >= total) return min;
  double t = double(step) / double(total);
  return min + (base - min) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}

}  // namespace ncl::nn

// NCP's networks and its batched, teacher-forced training forward (inference:
// ncp_inference.cpp).
#include "models/ncp.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "autograd/functions.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace ncl::models {

nlohmann::json NcpConfig::to_json() const {
  return {{"dim_input", dim_input}, {"hidden", hidden},   {"h_dim", h_dim},
          {"g_dim", g_dim},         {"encoder_layers", encoder_layers},
          {"g_layers", g_layers},   {"f_layers", f_layers}, {"orders", orders}};
}

NcpConfig NcpConfig::from_json(const nlohmann::json& j) {
  NCL_CHECK(j.is_object(), "ncp config must be a JSON object, got ", j.dump());
  NcpConfig c;
  for (const auto& [key, value] : j.items()) {
    int64_t* field = key == "dim_input"        ? &c.dim_input
                     : key == "hidden"         ? &c.hidden
                     : key == "h_dim"          ? &c.h_dim
                     : key == "g_dim"          ? &c.g_dim
                     : key == "encoder_layers" ? &c.encoder_layers
                     : key == "g_layers"       ? &c.g_layers
                     : key == "f_layers"       ? &c.f_layers
                     : key == "orders"         ? &c.orders
                                               : nullptr;
    NCL_CHECK(field != nullptr, "ncp config: unknown key '", key, "'");
    NCL_CHECK(value.is_number_integer() && value.get<int64_t>() >= 1 &&
                  value.get<int64_t>() <= config_ceiling(key),
              "ncp config: ", key, " must be an integer from 1 to ", config_ceiling(key), ", got ",
              value.dump());
    *field = value.get<int64_t>();
  }
  return c;
}

namespace {

// {in, hidden × layers, out}
std::vector<int64_t> widths(int64_t in, int64_t hidden, int64_t layers, int64_t out) {
  std::vector<int64_t> w{in};
  w.insert(w.end(), size_t(layers), hidden);
  w.push_back(out);
  return w;
}

// The fixed sparse maps that turn one ordering's labels into NCP's candidate rows. Rows of the
// candidate matrix run over datasets b, points n, candidates k = 0..K_n (point 0 has one
// candidate, the cluster it opens: it is not scored, but g of it is the cached g(H_0) later).
struct OrderMaps {
  int64_t width = 0;                     // W slots per point
  std::shared_ptr<RowMap> cluster_sums;  // (R × B·N): H_k(n) + h_n from the h rows
  std::shared_ptr<RowMap> unread;        // (B·N × B·N): U(n) = Σ_{i>n} q_i
  std::shared_ptr<RowMap> g_sums;        // (R × R): G_k = Σ_{j≠k} g(H_j) + g(H_k + h_n)
  std::shared_ptr<RowMap> point_of;      // (R × B·N): the point each candidate scores
  std::shared_ptr<RowMap> slots;         // (B·N·W × R): logits into padded slots
  Tensor mask;                           // I32 (B·N, W), 1 = no candidate in that slot
};

OrderMaps build_maps(const std::vector<std::vector<int>>& labels, int64_t N, DType dtype,
                     Device device) {
  const int64_t B = int64_t(labels.size());
  int64_t width = 1;
  for (const auto& l : labels) width = std::max<int64_t>(width, *std::max_element(l.begin(), l.end()) + 2);
  RowMapBuilder sums, gs, point, unread, slots;
  std::vector<int32_t> mask(size_t(B * N * width), 1);
  std::vector<int64_t> row_of(size_t(B * N * width), -1);  // candidate row of (b, n, k)
  int64_t row = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int>& c = labels[size_t(b)];
    std::vector<std::vector<int64_t>> members;  // per cluster: its points' rows (b·N + i)
    std::vector<int64_t> current;               // per cluster: the candidate row of g(H_k)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t K = int64_t(members.size()), at = b * N + n;
      NCL_CHECK(c[size_t(n)] >= 0 && c[size_t(n)] <= K, "ncp: labels must be numbered by first "
                "appearance; point ", n, " has label ", c[size_t(n)], " with ", K, " clusters before it");
      for (int64_t k = 0; k <= K; ++k, ++row) {
        if (k < K)
          for (int64_t i : members[size_t(k)]) sums.add(i);
        sums.add(at);
        sums.end_row();
        for (int64_t j = 0; j < K; ++j)
          if (j != k) gs.add(current[size_t(j)]);
        gs.add(row);
        gs.end_row();
        point.add(at);
        point.end_row();
        row_of[size_t(at * width + k)] = row;
        mask[size_t(at * width + k)] = 0;
      }
      const int k = c[size_t(n)];
      if (k == K) members.emplace_back(), current.push_back(0);
      members[size_t(k)].push_back(at);
      current[size_t(k)] = row_of[size_t(at * width + k)];
    }
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = n + 1; i < N; ++i) unread.add(b * N + i);
      unread.end_row();
    }
  }
  for (int64_t r : row_of) {
    if (r >= 0) slots.add(r);
    slots.end_row();
  }
  OrderMaps m;
  m.width = width;
  m.cluster_sums = std::make_shared<RowMap>(sums.build(B * N, dtype, device));
  m.g_sums = std::make_shared<RowMap>(gs.build(row, dtype, device));
  m.point_of = std::make_shared<RowMap>(point.build(B * N, dtype, device));
  m.unread = std::make_shared<RowMap>(unread.build(B * N, dtype, device));
  m.slots = std::make_shared<RowMap>(slots.build(row, dtype, device));
  std::vector<double> mask_values(mask.begin(), mask.end());
  m.mask = Tensor::from_vector(mask_values, {B * N, width}, DType::I32, device);
  return m;
}

// The batch's points and labels read in `order` (shared by all datasets), labels renumbered.
std::pair<Tensor, std::vector<std::vector<int>>> reorder(const data::Batch& batch,
                                                         const std::vector<int64_t>& order) {
  const int64_t B = batch.points.dim(0), N = batch.points.dim(1), D = batch.points.dim(2);
  std::vector<double> index;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n : order) index.push_back(double(b * N + n));
  Tensor rows = Tensor::from_vector(index, {B * N}, DType::I32);
  Tensor points = ops::index_select(batch.points.reshape({B * N, D}), rows).reshape({B, N, D});
  std::vector<std::vector<int>> labels;
  for (const auto& l : batch.labels) {
    std::vector<int> read;
    for (int64_t n : order) read.push_back(l[size_t(n)]);
    labels.push_back(relabel_by_appearance(read));
  }
  return {points, labels};
}

std::vector<std::vector<int64_t>> draw_orders(int64_t orders, int64_t N, Rng& rng) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < orders; ++i) out.push_back(rng.permutation(N));
  return out;
}

}  // namespace

std::vector<int> relabel_by_appearance(const std::vector<int>& labels) {
  std::vector<int> out;
  std::vector<std::pair<int, int>> seen;  // (old, new); few clusters, so a list is enough
  for (int l : labels) {
    auto it = std::find_if(seen.begin(), seen.end(), [l](const auto& p) { return p.first == l; });
    if (it == seen.end()) {
      seen.emplace_back(l, int(seen.size()));
      it = seen.end() - 1;
    }
    out.push_back(it->second);
  }
  return out;
}

Ncp::Ncp(const NcpConfig& config, Rng& rng) : config_(config) {
  const NcpConfig& c = config_;
  h_ = std::make_unique<nn::MLP>(widths(c.dim_input, c.hidden, c.encoder_layers, c.h_dim),
                                 nn::Activation::PReLU, rng);
  q_ = std::make_unique<nn::MLP>(widths(c.dim_input, c.hidden, c.encoder_layers, c.h_dim),
                                 nn::Activation::PReLU, rng);
  g_ = std::make_unique<nn::MLP>(widths(c.h_dim, c.hidden, c.g_layers, c.g_dim),
                                 nn::Activation::PReLU, rng);
  f_ = std::make_unique<nn::MLP>(widths(c.g_dim + c.h_dim, c.hidden, c.f_layers, 1),
                                 nn::Activation::PReLU, rng, /*final_bias=*/false);
  register_module("h", *h_);
  register_module("q", *q_);
  register_module("g", *g_);
  register_module("f", *f_);
}

TrainingRecipe Ncp::recipe() const {
  TrainingRecipe r;
  r.steps = 3500;
  r.batch = 64;
  r.lr = 1e-4;
  r.decay_at = 0.0;
  r.weight_decay = 0.01;
  r.restarts = {{1200, 5e-5}, {2200, 1e-5}};
  r.micro_batch = 32;  // one half of the batch per thread on 2 cores (ncl_bench: 0.68× the time)
  return r;
}

data::EpisodeOptions Ncp::episodes() {
  data::EpisodeOptions e;
  e.clusters_min = 1;
  e.clusters_max = 6;
  e.points_min = 5;
  e.points_max = 99;
  return e;
}

Variable Ncp::log_probs(const Variable& points, const std::vector<std::vector<int>>& labels,
                        Tensor* mask) const {
  NCL_CHECK(points.rank() == 3 && points.dim(2) == config_.dim_input, "ncp: points ",
            points.shape(), " must be (B, N, ", config_.dim_input, ")");
  const int64_t B = points.dim(0), N = points.dim(1);
  NCL_CHECK(int64_t(labels.size()) == B, "ncp: ", labels.size(), " label lists for ", B, " datasets");
  for (const auto& l : labels) NCL_CHECK(int64_t(l.size()) == N, "ncp: a label list is not N long");
  const DType dtype = points.value().dtype();
  const OrderMaps maps = build_maps(labels, N, dtype, points.value().device());
  const Variable x = reshape(points, {B * N, config_.dim_input});
  const Variable h = h_->forward(x), q = q_->forward(x);          // (B·N, h_dim)
  // y1 = f's first layer on [G_k, U]: G_k = Σ g-rows enters only through W_G, so each
  // candidate's g row is carried as p = W_G g(H_k + h_n), (R, hidden); U through W_U once per
  // point, with the bias, then added to its K+1 candidates.
  const Fold fold = folded();
  const Variable p = linear(g_->forward_hidden(combine_rows(h, maps.cluster_sums)), fold.m, fold.c);
  const Variable u = linear(combine_rows(q, maps.unread), fold.w_u, f_->layer(0).bias);  // (B·N, hidden)
  const Variable y1 = combine_rows(p, maps.g_sums) + combine_rows(u, maps.point_of);
  const Variable logits = f_->forward_after_first(y1);               // (R, 1)
  const Variable padded = reshape(combine_rows(logits, maps.slots), {B * N, 1, maps.width});
  if (mask != nullptr) *mask = maps.mask;
  return reshape(log_softmax(padded, maps.mask), {B * N, maps.width});
}

Ncp::Fold Ncp::folded() const {
  const nn::Linear& first = f_->layer(0);
  const nn::Linear& last = g_->layer(g_->depth() - 1);
  const Variable w_g = slice(first.weight, 1, 0, config_.g_dim);  // (hidden, g_dim)
  Fold fold;
  fold.m = matmul(w_g, last.weight);  // (hidden, g_dim)·(g_dim, hidden)
  fold.c = reshape(linear(reshape(last.bias, {1, config_.g_dim}), w_g, Variable()), {config_.hidden});
  fold.w_u = slice(first.weight, 1, config_.g_dim, config_.g_dim + config_.h_dim);
  return fold;
}

Variable Ncp::order_nll(const Variable& points, const std::vector<std::vector<int>>& labels) const {
  const int64_t B = points.dim(0), N = points.dim(1);
  const Variable lp = log_probs(points, labels);  // (B·N, W)
  const int64_t W = lp.dim(1);
  RowMapBuilder pick;  // one row: −1/B at every scored point's true slot
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 1; n < N; ++n) pick.add((b * N + n) * W + labels[size_t(b)][size_t(n)], -1.0 / double(B));
  pick.end_row();
  auto map = std::make_shared<RowMap>(pick.build(B * N * W, lp.value().dtype(), lp.value().device()));
  return reshape(combine_rows(reshape(lp, {B * N * W, 1}), map), Shape{});
}

Variable Ncp::loss(const data::Batch& batch, Rng& rng) const {
  const auto orders = draw_orders(config_.orders, batch.points.dim(1), rng);
  Variable total;
  for (const auto& order : orders) {
    auto [points, labels] = reorder(batch, order);
    Variable nll = order_nll(Variable(points.to(device())), labels);
    total = total.defined() ? total + nll : nll;
  }
  return total;
}

StepReport Ncp::backward(const data::Batch& batch, int64_t micro_batch, Rng& rng) const {
  const int64_t N = batch.points.dim(1);
  const auto orders = draw_orders(config_.orders, N, rng);
  StepReport report;
  std::vector<double> per_point;
  for (const auto& order : orders) {
    data::Batch read;
    std::tie(read.points, read.labels) = reorder(batch, order);
    const Chunks chunks = device() == Device::CPU ? Chunks::OnThreads : Chunks::InOrder;
    auto nll_of = [&](const data::Batch& part, int64_t) {
      return order_nll(Variable(part.points.to(device())), part.labels);
    };
    const double nll = backward_in_chunks(read, micro_batch, chunks, nll_of);
    if (!std::isfinite(nll)) return {nll, std::nullopt};  // the caller stops before any update
    report.loss += nll;
    per_point.push_back(nll / double(N));
  }
  if (per_point.size() >= 2) {
    double mean = 0.0, squares = 0.0;
    for (double v : per_point) mean += v / double(per_point.size());
    for (double v : per_point) squares += (v - mean) * (v - mean);
    report.order_variance = squares / double(per_point.size() - 1);
  }
  return report;
}

std::vector<double> Ncp::logits_from_scratch(const std::vector<double>& points,
                                             const std::vector<int>& labels, int64_t n) const {
  NoGradGuard no_grad;
  const int64_t D = config_.dim_input, N = int64_t(points.size()) / D;
  NCL_CHECK(n >= 1 && n < N && int64_t(labels.size()) >= n, "logits_from_scratch: bad n");
  const DType dtype = parameters().front().value().dtype();
  auto row = [&](int64_t i) {
    return Variable(Tensor::from_vector({points.begin() + i * D, points.begin() + (i + 1) * D},
                                        {1, D}, dtype, device()));
  };
  const int64_t K = *std::max_element(labels.begin(), labels.begin() + n) + 1;
  std::vector<Variable> H(static_cast<size_t>(K));  // H_k = Σ h over the members read so far
  for (int64_t i = 0; i < n; ++i) {
    Variable hi = h_->forward(row(i));
    Variable& Hk = H[size_t(labels[size_t(i)])];
    Hk = Hk.defined() ? Hk + hi : hi;
  }
  Variable U;  // Σ q over the points after n
  for (int64_t i = n + 1; i < N; ++i) {
    Variable qi = q_->forward(row(i));
    U = U.defined() ? U + qi : qi;
  }
  if (!U.defined())
    U = Variable(Tensor::zeros({1, config_.h_dim}, dtype, device()));
  const Variable hn = h_->forward(row(n));
  std::vector<double> logits;
  for (int64_t k = 0; k <= K; ++k) {
    Variable G;  // g over every cluster of the clustering in which point n joined k
    for (int64_t j = 0; j <= K; ++j) {
      if (j == K && k != K) continue;  // no new cluster: nothing to evaluate, g(empty) = 0
      Variable Hj = j == K ? hn : (j == k ? H[size_t(j)] + hn : H[size_t(j)]);
      Variable gj = g_->forward(Hj);
      G = G.defined() ? G + gj : gj;
    }
    logits.push_back(f_->forward(concat({G, U}, 1)).value().item());
  }
  return logits;
}

}  // namespace ncl::models

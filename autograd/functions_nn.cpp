// Softmax family, layer norm, losses and gradient-flow helpers. Softmax, log-softmax,
// logsumexp, layer norm and the Gaussian log-density have fused backward kernels (numerics,
// memory, and for the density the dozen broadcasting passes it replaces); the other losses are
// compositions of primitives.
#include <cmath>
#include <numbers>
#include <optional>
#include <vector>

#include "autograd/functions.h"
#include "tensor/ops.h"

namespace ncl {

// y = softmax(x) over unmasked keys;  dx = y ⊙ (dy - Σ_j dy_j y_j)
Variable softmax(const Variable& x, const Tensor& key_mask) {
  Tensor y = ops::softmax(x.value(), key_mask);
  return make_result("softmax", y, {x},
                     [y, key_mask](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::softmax_backward(y, dy, key_mask, false)};
                     });
}

// Column c of each entry: y = softmax(x[:, c]) over unmasked rows;  dx = y ⊙ (dy - Σ_r dy_r y_r)
Variable softmax_columns(const Variable& x, const Tensor& key_mask) {
  Tensor y = ops::softmax_columns(x.value(), key_mask);
  return make_result("softmax_columns", y, {x}, [y](const Tensor& dy, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::softmax_columns_backward(y, dy)};
  });
}

// y = x - logsumexp(x);  dx = dy - softmax(x) · Σ_j dy_j
Variable log_softmax(const Variable& x, const Tensor& key_mask) {
  Tensor y = ops::log_softmax(x.value(), key_mask);
  return make_result("log_softmax", y, {x},
                     [y, key_mask](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::softmax_backward(y, dy, key_mask, true)};
                     });
}

// y = log Σ_j exp(x_j);  dx = dy ⊙ softmax(x)  (dy broadcast along the reduced axis)
Variable logsumexp(const Variable& x, const Tensor& key_mask) {
  Tensor tx = x.value();
  return make_result("logsumexp", ops::logsumexp(tx, key_mask), {x},
                     [tx, key_mask](const Tensor& dy, const std::vector<bool>&) {
                       Tensor p = ops::softmax(tx, key_mask);
                       Tensor column = dy.reshape(tx.shape().with(-1, 1));
                       return std::vector<Tensor>{ops::mul(p, column)};
                     });
}

// y = x̂ ⊙ gamma + beta with x̂ = (x - mean) · rstd over the last axis.
// dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)) with ĝ = dy ⊙ gamma;
// dgamma = Σ_rows dy ⊙ x̂;  dbeta = Σ_rows dy.  (Derivation: docs/derivations.md.)
Variable layer_norm(const Variable& x, const Variable& gamma, const Variable& beta, double eps) {
  Tensor tx = x.value(), tg = gamma.value();
  ops::LayerNormOutput out = ops::layer_norm(tx, tg, beta.value(), eps);
  Tensor mean = out.mean, rstd = out.rstd;
  return make_result("layer_norm", out.y, {x, gamma, beta},
                     [tx, tg, mean, rstd](const Tensor& dy, const std::vector<bool>& need) {
                       ops::LayerNormGrads g = ops::layer_norm_backward(tx, tg, mean, rstd, dy);
                       return std::vector<Tensor>{need[0] ? g.dx : Tensor(),
                                                  need[1] ? g.dgamma : Tensor(),
                                                  need[2] ? g.dbeta : Tensor()};
                     });
}

// BCE(σ(x), t) = -t log σ(x) - (1-t) log(1-σ(x)) = softplus(x) - x·t, stable for any x.
Variable bce_with_logits(const Variable& logits, const Variable& targets) {
  return softplus(logits) - logits * targets;
}

namespace {
// A call in one of the fused op's two layouts: x as (G, N, D), mean and sigma as (G, K, D)
// (ops::gaussian_log_density), and the result's shape.
struct GaussianLayout {
  Shape x, params, out;
};

// x (…, N, 1, D) against (…, 1, K, D) → (…, N, K): a mixture's components; or x (…, N, D)
// against (…, 1, D) → (…, N): one Gaussian per group. The leading axes (…) must be equal.
std::optional<GaussianLayout> gaussian_layout(const Shape& x, const Shape& mean,
                                              const Shape& sigma) {
  const int r = x.rank();
  if (r < 2 || mean != sigma || mean.rank() != r || x[r - 1] != mean[r - 1] || x[r - 1] < 1)
    return std::nullopt;
  const bool mixture = r >= 3 && x[r - 2] == 1 && mean[r - 3] == 1;
  if (!mixture && mean[r - 2] != 1) return std::nullopt;
  const int lead = mixture ? r - 3 : r - 2;
  std::vector<int64_t> out;
  int64_t G = 1;
  for (int i = 0; i < lead; ++i) {
    if (x[i] != mean[i]) return std::nullopt;
    out.push_back(x[i]);
    G *= x[i];
  }
  const int64_t N = x[lead], K = mixture ? mean[r - 2] : 1, D = x[r - 1];
  out.push_back(N);
  if (mixture) out.push_back(K);
  return GaussianLayout{{G, N, D}, {G, K, D}, Shape(out)};
}
}  // namespace

// log N(x; μ, σ²): y = Σ_d -½ z² - log σ - ½ log 2π over the last axis, z = (x - μ)/σ broadcast;
// dx = -Σ dy·z/σ,  dμ = Σ dy·z/σ,  dσ = Σ dy·(z² - 1)/σ (each summed over what it was broadcast
// along). Fused (one kernel each way) in the two layouts of gaussian_layout; composed from
// primitives for any other broadcast.
Variable gaussian_log_density(const Variable& x, const Variable& mean, const Variable& sigma) {
  const std::optional<GaussianLayout> layout =
      gaussian_layout(x.shape(), mean.shape(), sigma.shape());
  if (!layout) {
    Variable z = (x - mean) / sigma;
    Variable per_dim = scale(square(z), -0.5) - log(sigma);  // z has the broadcast shape
    double d = double(z.dim(-1));
    return add_scalar(sum(per_dim, -1), -0.5 * d * std::log(2.0 * std::numbers::pi));
  }
  Tensor xv = x.value().reshape(layout->x), mv = mean.value().reshape(layout->params);
  Tensor sv = sigma.value().reshape(layout->params);
  Tensor y = ops::gaussian_log_density(xv, mv, sv);
  const Shape grouped = y.shape(), x_shape = x.shape(), params = mean.shape();
  return make_result("gaussian_log_density", y.reshape(layout->out), {x, mean, sigma},
                     [xv, mv, sv, grouped, x_shape, params](const Tensor& dy,
                                                            const std::vector<bool>& need) {
                       ops::GaussianGrads g =
                           ops::gaussian_log_density_backward(xv, mv, sv, dy.reshape(grouped));
                       return std::vector<Tensor>{need[0] ? g.dx.reshape(x_shape) : Tensor(),
                                                  need[1] ? g.dmean.reshape(params) : Tensor(),
                                                  need[2] ? g.dsigma.reshape(params) : Tensor()};
                     });
}

// z = μ + σ ⊙ ε: gradients flow to μ and σ, ε is a constant draw.
Variable reparameterize(const Variable& mean, const Variable& sigma, const Tensor& eps) {
  return mean + sigma * Variable(eps);
}

// y = x;  dx = s·dy
Variable scale_grad(const Variable& x, double s) {
  return make_result("scale_grad", x.value(), {x},
                     [s](const Tensor& dy, const std::vector<bool>&) {
                       return std::vector<Tensor>{ops::scale(dy, s)};
                     });
}

}  // namespace ncl

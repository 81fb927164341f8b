// Masked autoregressive flow (MAF) for DAC's warped-MoG density: MaskedLinear -> MADE -> MAF.
//
// Direction (as DAC-py's flows, reference doc §3.4): each MADE maps data to noise,
//   z_d = (x_d − shift_d(x_<d, c)) / scale_d(x_<d, c),   log|det ∂z/∂x| = −Σ_d log scale_d,
// so log p(x | c) is one parallel pass over the coordinates; sampling (noise to data) would be
// sequential over them and is not needed for training. Axis letters: R rows (points, B·N),
// D coordinates, H hidden units, C context features.
#pragma once

#include <memory>
#include <vector>

#include "nn/layers.h"

namespace ncl::nn {

// y = x (W ⊙ M)ᵀ + b for x (R, in) -> (R, out). W (out, in) and b (out) are parameters; the
// 0/1 mask M (out, in) is a constant (converted to W's dtype and device when used).
class MaskedLinear : public Module {
 public:
  MaskedLinear(int64_t in, int64_t out, Tensor mask, Rng& rng);
  Variable forward(const Variable& x) const;

  Variable weight;  // (out, in)
  Variable bias;    // (out)
  const Tensor& mask() const { return mask_; }

 private:
  Tensor mask_;  // (out, in)
};

// MADE's affine parameters for every coordinate: both (R, D).
struct ShiftScale {
  Variable shift;
  Variable scale;  // softplus(raw) + 1e-5 > 0
};

// Autoregressive network over D coordinates (Germain et al. degrees: input d has degree d + 1,
// hidden unit k has degree 1 + k mod (D − 1), output d has degree d + 1 and sees only hidden
// units of smaller degree), so shift_d and scale_d depend on x_<d and the context only:
//   h = ELU(MaskedLinear(x) + Linear_nobias(c)); h = ELU(MaskedLinear(h)); MaskedLinear(h)
// -> (R, 2D) = [shift | raw scale]. Coordinate 0's outputs are learned constants.
class MADE : public Module {
 public:
  MADE(int64_t dim, int64_t hidden, int64_t context_dim, Rng& rng);
  // x (R, D), context (G, C) with R a multiple of G: consecutive blocks of R / G rows share
  // one context row (G = R: a context per row; DAC: one per dataset) -> shift, scale (R, D).
  ShiftScale forward(const Variable& x, const Variable& context) const;

  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
  std::unique_ptr<MaskedLinear> input_, hidden_, output_;
  std::unique_ptr<Linear> context_;
};

// `blocks` MADEs with the coordinate order reversed between consecutive blocks, over a
// standard-normal base: log p(x | c) = log N(z; 0, I) + Σ_blocks log|det ∂z/∂x|.
class MAF : public Module {
 public:
  MAF(int64_t dim, int64_t context_dim, Rng& rng, int64_t blocks = 4, int64_t hidden = 128);
  // x (R, D), context (G, C) grouped as in MADE::forward -> (R).
  Variable log_prob(const Variable& x, const Variable& context) const;

 private:
  int64_t dim_;
  std::vector<std::unique_ptr<MADE>> blocks_;
};

}  // namespace ncl::nn

// Multi-head attention's two products, with the heads addressed in place (ops::head_scores,
// ops::head_apply_into) instead of being split into (H·B, N, Dh) copies and merged back.
// Head h of a (B, N, D) tensor is its feature block h; per-head tensors are (H·B, ·, ·).
#include "autograd/functions.h"
#include "tensor/ops.h"

namespace ncl {

// S_h = α Q_h K_hᵀ;  dQ_h = α dS_h K_h,  dK_h = α dS_hᵀ Q_h
Variable attention_scores(const Variable& q, const Variable& k, int64_t heads, double alpha) {
  Tensor tq = q.value(), tk = k.value();
  Tensor s = ops::head_scores(tq, tk, heads, alpha);
  return make_result(
      "attention_scores", s, {q, k},
      [tq, tk, heads, alpha](const Tensor& ds, const std::vector<bool>& need) {
        Tensor dq, dk;
        if (need[0]) {
          dq = Tensor::empty(tq.shape(), tq.dtype(), tq.device());
          ops::head_apply_into(ds, false, tk, dq, heads, alpha, 0.0);
        }
        if (need[1]) {
          dk = Tensor::empty(tk.shape(), tk.dtype(), tk.device());
          ops::head_apply_into(ds, true, tq, dk, heads, alpha, 0.0);
        }
        return std::vector<Tensor>{dq, dk};
      });
}

// O = R + concat_h(A_h V_h), computed as a copy of R onto which each head's GEMM accumulates;
// dA_h = dO_h V_hᵀ,  dV_h = A_hᵀ dO_h,  dR = dO
Variable attention_output(const Variable& a, const Variable& v, const Variable& residual,
                          int64_t heads) {
  Tensor ta = a.value(), tv = v.value();
  NCL_CHECK(residual.rank() == 3 && residual.dim(0) == v.dim(0) && residual.dim(2) == v.dim(2) &&
                a.rank() == 3 && residual.dim(1) == a.dim(1),
            "attention_output: residual ", residual.shape(), " must be (B, Nq, D) for a ",
            a.shape(), " and v ", v.shape());
  Tensor out = residual.value().clone();  // (B, Nq, D)
  ops::head_apply_into(ta, false, tv, out, heads, 1.0, 1.0);
  return make_result("attention_output", out, {a, v, residual},
                     [ta, tv, heads](const Tensor& dout, const std::vector<bool>& need) {
                       Tensor da, dv;
                       if (need[0]) da = ops::head_scores(dout, tv, heads, 1.0);
                       if (need[1]) {
                         dv = Tensor::empty(tv.shape(), tv.dtype(), tv.device());
                         ops::head_apply_into(ta, true, dout, dv, heads, 1.0, 0.0);
                       }
                       return std::vector<Tensor>{da, dv, need[2] ? dout : Tensor()};
                     });
}

}  // namespace ncl

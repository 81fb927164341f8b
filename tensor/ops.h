// Tensor ops: every computation in ncl reaches the kernels through these functions.
//
// Each op checks devices, dtypes and shapes (throwing ncl::Error that names the op and the
// shapes), allocates its result, collapses the shapes to the kernel's (rows, cols) or
// (batch, M, N, K) view and calls ncl::cpu::<op> or ncl::cuda::<op> (tensor/backend.h).
// No gradients here: autograd/functions.h builds the differentiable versions on top.
// All inputs of one op must share device and (for floating ops) dtype.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "tensor/kernel_args.h"
#include "tensor/row_map.h"
#include "tensor/tensor.h"

namespace ncl::ops {

// ---- elementwise ---------------------------------------------------------------------------
Tensor unary(UnaryOp op, const Tensor& x, double alpha = 0.0);
inline Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
inline Tensor scale(const Tensor& x, double s) { return unary(UnaryOp::Scale, x, s); }
inline Tensor add_scalar(const Tensor& x, double s) { return unary(UnaryOp::AddScalar, x, s); }

// b broadcasts over a when b has a's shape, one element, a's last-axis length and no other
// axis above 1 (a row / bias), or a's shape with last axis 1 (a column). Anything else throws:
// use broadcast_to first. The result has a's shape.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
// Whether the kernel can broadcast b over a directly, and how (no throw).
bool broadcast_supported(const Shape& a, const Shape& b, Broadcast* mode);

// out[i] = cond[i] != 0 ? a[i] : b[i]; cond is I32 with a's shape; a and b have equal shapes.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// PReLU with one slope or one per last-axis entry: x > 0 ? x : slope·x; and its backward,
// {dx, dslope}.
Tensor prelu(const Tensor& x, const Tensor& slope);
std::pair<Tensor, Tensor> prelu_backward(const Tensor& x, const Tensor& slope, const Tensor& dy);
Tensor cast(const Tensor& x, DType dtype);
void fill_(Tensor& x, double value);  // in place
void add_(Tensor& a, const Tensor& b);  // a += b in place; b has a's shape

// ---- reductions ----------------------------------------------------------------------------
// Over one axis; keepdim leaves that axis with size 1.
Tensor sum(const Tensor& x, int axis, bool keepdim = false);
Tensor mean(const Tensor& x, int axis, bool keepdim = false);
// argmax (optional) receives the I32 index of the first maximum, shaped like the result.
Tensor max(const Tensor& x, int axis, bool keepdim = false, Tensor* argmax = nullptr);
Tensor sum_all(const Tensor& x);  // shape ()

// ---- matrix products -----------------------------------------------------------------------
// a (..., M, K) · b (..., K, N) -> (..., M, N), with optional transposes of the last two axes.
// Batch axes must match, or b may be 2-D (one matrix shared by every batch entry; then, when
// a is not transposed, the batch folds into M for a single large GEMM). Scaled by alpha.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false,
              double alpha = 1.0);
// c = alpha·op(a)·op(b) + beta·c, in place; c must already have the result shape.
void matmul_into(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b,
                 double alpha, double beta);
// A Linear layer's forward: x (R, in) · weightᵀ (weight (out, in)) + bias (out) in every row
// -> (R, out); bias may be undefined. Where ncl's CPU kernel takes the shape (small_gemm.h) the
// bias is added as the product is stored: one pass over y instead of a bias copy and a GEMM
// adding to it.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- per-head attention products (no head copies) ------------------------------------------
// A "heads" tensor is (B, N, D) whose D features are H contiguous blocks of Dh = D/H (head h =
// features [h·Dh, (h+1)·Dh)); a "per-head" tensor is (H·B, R, C), head-major (entry h·B + b).
// The GEMMs read and write head blocks in place through leading dimensions (GemmArgs).
// scores = alpha · x_h y_hᵀ: x (B, Nx, D), y (B, Ny, D) heads -> (H·B, Nx, Ny) per-head.
Tensor head_scores(const Tensor& x, const Tensor& y, int64_t heads, double alpha);
// out_h = alpha · op(p_h) v_h + beta · out_h: p per-head (H·B, R, C) (op = transpose when
// trans_p), v (B, ·, D) and out (B, ·, D) heads. Writes only out's head blocks (all of them).
void head_apply_into(const Tensor& p, bool trans_p, const Tensor& v, Tensor& out, int64_t heads,
                     double alpha, double beta);

// ---- softmax family (last axis) ------------------------------------------------------------
// key_mask: undefined, or I32 (Bm, C) with 1 = key removed. x is (..., Q, C); its leading axes
// flatten to G groups of Q rows and group g uses mask row g % Bm (so heads folded head-major,
// g = h·B + b, share the mask of set b). Masked entries and fully masked rows give 0.
Tensor softmax(const Tensor& x, const Tensor& key_mask = {});
Tensor log_softmax(const Tensor& x, const Tensor& key_mask = {});
// Gradient of softmax (log = false) or log_softmax (log = true) given its output y.
Tensor softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& key_mask, bool log);
Tensor logsumexp(const Tensor& x, const Tensor& key_mask = {});  // (...) without the last axis
// Softmax down the columns of x (E, R, C): column c of entry e is one distribution over the R
// rows (attention with its keys down the rows and one query per column, as MAB lays out few
// queries over many keys). key_mask: undefined, or I32 (Bm, R) with 1 = key (row) removed;
// entry e uses mask row e % Bm. Masked rows and fully masked columns give 0. The backward takes
// the output y (0 wherever a mask removed something, so it needs no mask).
Tensor softmax_columns(const Tensor& x, const Tensor& key_mask = {});
Tensor softmax_columns_backward(const Tensor& y, const Tensor& dy);

// ---- layer norm (last axis) ----------------------------------------------------------------
struct LayerNormOutput { Tensor y, mean, rstd; };       // mean, rstd: (rows)
struct LayerNormGrads { Tensor dx, dgamma, dbeta; };
LayerNormOutput layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);
LayerNormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& dy);

// ---- diagonal Gaussian log-density ---------------------------------------------------------
// (G, N, K): log N(x[g,n] ; mean[g,k], diag(sigma[g,k])²) for x (G, N, D), mean and sigma
// (G, K, D); the backward gives the gradients of Σ dout ⊙ out.
Tensor gaussian_log_density(const Tensor& x, const Tensor& mean, const Tensor& sigma);
struct GaussianGrads { Tensor dx, dmean, dsigma; };
GaussianGrads gaussian_log_density_backward(const Tensor& x, const Tensor& mean,
                                            const Tensor& sigma, const Tensor& dout);

// ---- layout (all copy into a new contiguous tensor) ----------------------------------------
Tensor permute(const Tensor& x, const std::vector<int>& perm);
Tensor transpose(const Tensor& x, int axis0, int axis1);
// numpy rules: x's axes align to the right of `shape`; size-1 axes repeat.
Tensor broadcast_to(const Tensor& x, const Shape& shape);
// The adjoint of broadcast_to: sums x (of a broadcast shape) down to `shape`.
Tensor sum_to(const Tensor& x, const Shape& shape);
Tensor concat(const std::vector<Tensor>& xs, int axis);
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end);  // [start, end)
// Rows of x viewed as (R, C...) picked by an I32 index (n) -> (n, C...).
Tensor index_select(const Tensor& x, const Tensor& index);
// out (rows, C...) = zeros, then out[index[i]] += src[i] for each row i of src (segment sum).
Tensor index_add(const Tensor& src, const Tensor& index, int64_t rows);
// out (map.rows, ...) with row r = Σ weight · x rows over the map's row r (tensor/row_map.h);
// x has map.cols rows. transpose: apply Mᵀ instead (x has map.rows rows, out map.cols).
Tensor combine_rows(const Tensor& x, const RowMap& map, bool transpose = false);

// ---- CPU threads and counters --------------------------------------------------------------
// Threads the CPU kernels use (an OpenMP team; OpenBLAS itself stays single-threaded and is
// called per batch entry or row block, see tensor/cpu/parallel.h). Default: all cores, or
// OMP_NUM_THREADS.
void set_cpu_threads(int threads);
int cpu_threads();
// Runs f(group, begin, end) over [0, n) in at most cpu_threads() contiguous groups at once, one
// CPU thread each (group g: [n·g/G, n·(g+1)/G)); inside f the CPU kernels run single-threaded.
// Returns G; rethrows the first exception a group threw. For independent work on CPU tensors
// (the micro-batches of a training step, models/model.cpp).
int run_cpu_groups(int64_t n, const std::function<void(int group, int64_t begin, int64_t end)>& f);
// Runs f(i) for every item i < sizes.size(): items of at least `alone` elements one after
// another on this thread (f may split each over the threads itself), then the others shared
// out over the CPU threads in contiguous runs of about equal total size, single-threaded there.
// For many small independent updates (Adam's parameters, the merge of gradient sinks).
void run_cpu_shares(const std::vector<int64_t>& sizes, int64_t alone,
                    const std::function<void(size_t item)>& f);
// Whether a CUDA device is present and usable (false when built without CUDA). Never throws.
bool cuda_available();
// Checks that the GPU can be used: a usable device, and cuBLAS, which ncl opens only when the
// GPU is first asked for (a CPU run never maps its 210 MiB). Throws with the reason and a HINT.
void require_cuda();
// Allows TF32 tensor-core GEMMs on the GPU (off by default, so GPU results match the CPU's).
void set_cuda_tf32(bool allow);
// Waits for the GPU to finish the work queued so far (timing); nothing to wait for on the CPU.
void synchronize(Device device);
// Floating-point operations issued to GEMM since the start (2·M·N·K per product), for the
// benchmark's "fraction of the GEMM floor".
int64_t gemm_flops();

// ---- optimizer -----------------------------------------------------------------------------
void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamArgs& args);

}  // namespace ncl::ops

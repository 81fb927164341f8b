// Helpers shared by every test file: seeded random tensors, an elementwise closeness check that
// says where and by how much two tensors differ, and a gradcheck assertion that prints why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/module.h"
#include "tensor/tensor.h"

namespace ncl::test {

// Small literal tensors on the CPU: f64({1, 2, 3}, {3}), i32({0, 1}, {2}) for masks and indices.
inline Tensor f64(const std::vector<double>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape, DType::F64);
}
inline Tensor i32(const std::vector<double>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape, DType::I32);
}

// Uniform values in [lo, hi) from Rng(seed), as `dtype` on the CPU.
Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::F64, double lo = -1.0,
                     double hi = 1.0);

// Requires equal shapes and |actual - expected| <= atol + rtol·|expected| everywhere. On
// failure reports the worst index with both values, the max |diff| and the first 5 entries.
void require_close(const Tensor& actual, const Tensor& expected, double rtol, double atol);

// A parameter's gradient, or zeros of its shape when it received none: a parameter the loss does
// not depend on (MAB's key bias with shared queries, nn/attention.h) gets no gradient.
Tensor grad_or_zeros(const Variable& p);

// INFO(result.message); REQUIRE(result.ok).
void require_gradcheck(const GradcheckResult& result);

// Gradient check of fn with respect to its inputs and every parameter of module (converted to
// F64 first).
void require_module_gradcheck(nn::Module& module, const GradcheckFn& fn,
                              const std::vector<Tensor>& inputs);

// The ncl binary run through the shell with `args`: exit code and stdout+stderr together.
struct Run {
  int code;
  std::string output;
};
// A shell command as written (redirections included): exit code and its standard output.
Run run_shell(const std::string& command);
// `ncl args` with stdout and stderr together.
Run run_ncl(const std::string& args);
// The small models the CLI tests train, as `ncl train` flags (--model, --config, --batch): a
// few steps of each take well under a second. A 14,565-parameter Set Transformer; a DAC of
// width 16 with 2-block stacks (add --model dac or dac-maf); an NCP of width 8.
extern const std::string kSmallSetTransformer, kSmallDac, kSmallNcp;
// `ncl train ARGS --log-every 0 --out OUT`, required to exit 0.
Run train_ok(const std::string& args, const std::string& out);
// The same with standard output only (stderr discarded).
Run run_shell_stdout(const std::string& command);
Run run_ncl_stdout(const std::string& args);

// A command that ncl must refuse: its arguments, the exit code (2 usage, 1 error) and a piece
// of the message.
struct Refusal {
  std::string args;
  int code;
  std::string says;
};
// Runs each with stdin from /dev/null: the code, the message, and at most two lines of output.
void require_refused(const std::vector<Refusal>& cases);

// Two checkpoints from `ncl train` hold the same step, Rng state and tensors, bit for bit.
void require_same_checkpoint(const std::string& a, const std::string& b);
// `ncl train ARGS --steps STEPS` straight through, and with `--until UNTIL` then `--resume
// RESUME_ARGS` (the rest comes from the checkpoint; the thread count does not, so give the same
// --threads in both): both must end in the same bits.
void require_exact_resume(const std::string& args, int steps, int until,
                          const std::string& resume_args = "");

// The whole file as bytes ("" when it cannot be read).
std::string read_text(const std::string& path);

// A path in this test process's own temporary directory (created on first use).
std::string temp_file(const std::string& name);

}  // namespace ncl::test

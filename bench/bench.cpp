// ncl_bench: the engine's speed and memory figures, printed as one table.
//
//   sgemm GFLOP/s at the shapes the Set Transformer uses: the Linear layers' (B·N)×128×128,
//   the attention products per head (N×32 · 32×N and N×N · N×32, batched over H·B), and a
//   1024³ product as the machine's sgemm rate;
//   the Set Transformer stack ISAB32(2→128) → ISAB32 → PMA4 → SAB → SAB → Linear(128→5)
//   on B=10, N=500: median forward+backward and forward+backward+Adam step time, GEMM FLOPs
//   per step, the fraction of the GEMM floor (GEMM FLOPs / sgemm rate / step time), peak RSS.
// Usage: ncl_bench [--threads T] [--steps S]. Compare with spec/performance.md's PyTorch
// figure (0.068 s per training step at B=10, N=500, 485 MiB).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "nn/attention.h"
#include "nn/optim.h"
#include "tensor/ops.h"

using namespace ncl;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Median GFLOP/s of op(a)·op(b) over `reps` runs after one warm-up.
double gemm_rate(const Tensor& a, const Tensor& b, bool trans_b, int reps) {
  Tensor c = ops::matmul(a, b, false, trans_b);
  std::vector<double> times;
  int64_t flops = 0;
  for (int i = 0; i < reps; ++i) {
    int64_t before = ops::gemm_flops();
    auto start = Clock::now();
    ops::matmul_into(a, b, c, false, trans_b, 1.0, 0.0);
    times.push_back(seconds_since(start));
    flops = ops::gemm_flops() - before;
  }
  return double(flops) / median(times) / 1e9;
}

// The Set Transformer of spec/models.md §1 without its MoG loss: the bench times the network.
struct SetTransformerStack : nn::Module {
  nn::ISAB isab0, isab1;
  nn::PMA pma;
  nn::SAB sab0, sab1;
  nn::Linear head;
  explicit SetTransformerStack(Rng& rng)
      : isab0(2, 128, 4, 32, false, rng),
        isab1(128, 128, 4, 32, false, rng),
        pma(128, 4, 4, false, rng),
        sab0(128, 128, 4, false, rng),
        sab1(128, 128, 4, false, rng),
        head(128, 5, rng) {
    register_module("isab0", isab0);
    register_module("isab1", isab1);
    register_module("pma", pma);
    register_module("sab0", sab0);
    register_module("sab1", sab1);
    register_module("head", head);
  }
  Variable forward(const Variable& X) const {
    Variable H = isab1.forward(isab0.forward(X));  // (B, N, 128)
    Variable S = sab1.forward(sab0.forward(pma.forward(H)));  // (B, 4, 128)
    return head.forward(S);  // (B, 4, 5)
  }
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, steps = 20;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: ncl_bench [--threads T] [--steps S]\n");
      return 2;
    }
  }
  if (threads > 0) ops::set_cpu_threads(threads);
  Rng rng(0);
  const int64_t B = 10, N = 500, D = 128, H = 4;

  std::printf("ncl benchmark (CPU, %d OpenBLAS threads)\n\n", ops::cpu_threads());
  std::printf("%-52s %12s\n", "sgemm shape", "GFLOP/s");
  Tensor big = rng.normal_tensor({1024, 1024});
  double peak = gemm_rate(big, big, false, 5);
  std::printf("%-52s %12.1f\n", "1024 x 1024 x 1024 (the machine's sgemm rate)", peak);
  Tensor x = rng.normal_tensor({B * N, D}), w = rng.normal_tensor({D, D});
  std::printf("%-52s %12.1f\n", "(B*N=5000) x 128 x 128, x W^T (Linear)", gemm_rate(x, w, true, 10));
  Tensor q = rng.normal_tensor({H * B, N, D / H}), k = rng.normal_tensor({H * B, N, D / H});
  std::printf("%-52s %12.1f\n", "40 x (500 x 32 . 32 x 500), Q K^T (SAB scores)",
              gemm_rate(q, k, true, 10));
  Tensor a = rng.normal_tensor({H * B, N, N});
  std::printf("%-52s %12.1f\n", "40 x (500 x 500 . 500 x 32), A V (SAB output)",
              gemm_rate(a, q, false, 10));
  Tensor qi = rng.normal_tensor({H * B, 32, D / H});
  std::printf("%-52s %12.1f\n", "40 x (32 x 32 . 32 x 500), I K^T (ISAB, 32 inducing)",
              gemm_rate(qi, k, true, 10));

  // The Set Transformer step.
  SetTransformerStack net(rng);
  nn::Adam adam(net.named_parameters(), nn::AdamOptions{});
  Tensor X = rng.normal_tensor({B, N, 2});
  Tensor r = rng.normal_tensor({B, 4, 5});
  std::vector<double> fwd_bwd, full;
  int64_t flops_per_step = 0;
  for (int i = 0; i < steps + 3; ++i) {  // 3 warm-up steps fill the allocator's cache
    int64_t flops_before = ops::gemm_flops();
    auto start = Clock::now();
    adam.zero_grad();
    Variable loss = sum_all(net.forward(Variable(X)) * Variable(r));
    loss.backward();
    double t_fb = seconds_since(start);
    adam.step();
    double t_full = seconds_since(start);
    if (i >= 3) {
      fwd_bwd.push_back(t_fb);
      full.push_back(t_full);
      flops_per_step = ops::gemm_flops() - flops_before;
    }
  }
  double step = median(full), floor = double(flops_per_step) / (peak * 1e9);
  AllocatorStats stats = allocator_for(Device::CPU).stats();
  std::printf("\nSet Transformer stack, B=%ld N=%ld, %ld parameters, median of %d steps\n",
              long(B), long(N), long(net.parameter_count()), steps);
  std::printf("%-52s %12.4f s\n", "forward + backward", median(fwd_bwd));
  std::printf("%-52s %12.4f s\n", "forward + backward + Adam (training step)", step);
  std::printf("%-52s %12.2f\n", "GEMM GFLOP per step", double(flops_per_step) / 1e9);
  std::printf("%-52s %12.4f s\n", "GEMM floor (GFLOP / sgemm rate)", floor);
  std::printf("%-52s %12.2f\n", "fraction of the GEMM floor (floor / step)", floor / step);
  std::printf("%-52s %12.1f MiB\n", "peak RSS (whole process)", peak_rss_mib());
  std::printf("%-52s %12.1f MiB\n", "allocator peak bytes in use",
              double(stats.peak_bytes_in_use) / (1 << 20));
  std::printf("%-52s %12ld\n", "allocator blocks from the OS (all steps)", long(stats.os_allocations));
  std::printf("\nPyTorch peer (spec/performance.md, same machine class): 0.068 s/step, 485 MiB.\n");
  return 0;
}

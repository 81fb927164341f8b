// ncl_bench: the engine's speed and memory figures, printed as one table.
//
//   sgemm GFLOP/s at the shapes the Set Transformer uses: the Linear layers' (B·N)×128×128,
//   the attention products per head (N×32 · 32×N and N×N · N×32, batched over H·B, and the
//   thin products of 32 keys or inducing points, which run on ncl's own kernel on the CPU —
//   NCL_THIN_GEMM=0 gives OpenBLAS's figures), and a large square product (1024³ on the CPU,
//   8192³ on the GPU), best of 20, as the sgemm rate;
//   the Set Transformer training step (models/set_transformer: MoG loss, backward, Adam) on
//   mog-k4 batches of B=10 with N in [300,600) and N = 500 (and B=100, N=1000 on the GPU):
//   median forward+backward and full step time next to PyTorch's CPU figure
//   (spec/performance.md), GEMM FLOPs per step, the fraction of the GEMM floor (GEMM FLOPs /
//   sgemm rate / step time), peak RSS and the allocator's peak — also with ISAB's and PMA's
//   shared queries unfolded (the reference computation; nn/attention.h), and the default
//   step against that computation's GEMM floor; DAC's step (B=100, whole batch
//   and micro-batches, min and anchored losses); DAC's clustering time per dataset on the first
//   100 datasets of the mog-12 benchmark with the shipped checkpoint (or --dac CKPT), refined
//   and not, with its GEMM FLOPs and fraction of the GEMM floor; NCP's training iteration
//   (B=64, 6 orderings) and its sampling time (S = 100 clusterings of one dataset of N = 100
//   and 1000 points, drawn and by beam search).
// Usage: ncl_bench [--threads T] [--steps S] [--device cpu|cuda] [--only SECTION] [--dac CKPT]
//                  [--ncp CKPT] [--default-only].
// --default-only keeps, of the training steps, the rows `ncl train` runs by default (its
// micro-batch on the CPU) and skips NCP's sampling: what bench/peer_ab.sh sets against the
// PyTorch peers.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "data/generator.h"
#include "data/benchmark.h"
#include "data/crp.h"
#include "data/mog.h"
#include "models/dac.h"
#include "models/ncp.h"
#include "models/registry.h"
#include "nn/checkpoint.h"
#include "models/set_transformer.h"
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

// GFLOP/s of op(a)·op(b) over `reps` runs after one warm-up: the median, or the best run when
// `best` (the machine's peak rate, which the GEMM floor is measured against).
double gemm_rate(const Tensor& a, const Tensor& b, bool trans_b, int reps, bool best = false,
                 bool trans_a = false) {
  Tensor c = ops::matmul(a, b, trans_a, trans_b);
  ops::synchronize(c.device());
  std::vector<double> times;
  int64_t flops = 0;
  for (int i = 0; i < reps; ++i) {
    int64_t before = ops::gemm_flops();
    auto start = Clock::now();
    ops::matmul_into(a, b, c, trans_a, trans_b, 1.0, 0.0);
    ops::synchronize(c.device());
    times.push_back(seconds_since(start));
    flops = ops::gemm_flops() - before;
  }
  double t = best ? *std::min_element(times.begin(), times.end()) : median(times);
  return double(flops) / t / 1e9;
}

// Median seconds per training step (zero_grad, loss, backward, Adam) of `model` on batches from
// `generator`, after 3 warm-up steps, and the GEMM FLOPs. On the GPU the clock stops after the
// stream has finished (ops::synchronize), so a step's time includes all its kernels.
struct StepTiming {
  double fwd_bwd, step;       // medians, seconds
  double total_seconds = 0;   // all measured steps
  int64_t total_flops = 0;    // GEMM FLOPs of all measured steps
};
StepTiming time_training_step(const models::ClusteringModel& model, const data::Generator& generator,
                              int64_t batch, int steps, Rng& rng, int64_t micro_batch = 0) {
  nn::Adam adam(model.named_parameters(), nn::AdamOptions{});
  std::vector<double> fwd_bwd, full;
  StepTiming out{0, 0};
  // The first warm-up step uses the largest of 30 batches (for DAC's N in [300, 1000) that is
  // N ≈ 980 on average), so the caching allocator already holds blocks for nearly every later
  // size and the measured steps show the steady state of a long run, not first-touch faults.
  data::Batch largest = generator.sample(batch, rng);
  for (int draw = 0; draw < 30; ++draw) {
    data::Batch b = generator.sample(batch, rng);
    if (b.points.dim(1) > largest.points.dim(1)) largest = std::move(b);
  }
  for (int i = 0; i < steps + 3; ++i) {
    data::Batch b = i == 0 ? largest : generator.sample(batch, rng);
    int64_t flops_before = ops::gemm_flops();
    auto start = Clock::now();
    adam.zero_grad();
    model.backward(b, micro_batch, rng);
    ops::synchronize(model.device());
    double t_fb = seconds_since(start);
    adam.step();
    ops::synchronize(model.device());
    double t_full = seconds_since(start);
    if (i >= 3) {
      fwd_bwd.push_back(t_fb);
      full.push_back(t_full);
      out.total_seconds += t_full;
      out.total_flops += ops::gemm_flops() - flops_before;
    }
  }
  out.fwd_bwd = median(fwd_bwd);
  out.step = median(full);
  return out;
}

// A row's label: a micro-batch row sits indented under its configuration's whole-batch row, or
// names the configuration itself when that row is left out (--default-only).
std::string row_label(const std::string& setting, int64_t micro_batch, bool default_only) {
  if (micro_batch == 0) return setting;
  std::string flag = "--micro-batch " + std::to_string(micro_batch);
  return default_only ? setting + " " + flag : "  " + flag;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, steps = 20;
  bool default_only = false;
  std::string device_name = "cpu", only, ncp_checkpoint;
  std::string dac_checkpoint = std::string(NCL_SOURCE_DIR) + "/models/checkpoints/dac-mog.safetensors";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (arg == "--device" && i + 1 < argc) device_name = argv[++i];
    else if (arg == "--only" && i + 1 < argc) only = argv[++i];
    else if (arg == "--ncp" && i + 1 < argc) ncp_checkpoint = argv[++i];
    else if (arg == "--dac" && i + 1 < argc) dac_checkpoint = argv[++i];
    else if (arg == "--default-only") default_only = true;
    else {
      std::fprintf(stderr, "usage: ncl_bench [--threads T] [--steps S] [--device cpu|cuda] "
                           "[--only gemm|set-transformer|dac|dac-cluster|ncp] [--dac CKPT] [--ncp CKPT] "
                           "[--default-only]\n");
      return 2;
    }
  }
  if (device_name != "cpu" && device_name != "cuda") {
    std::fprintf(stderr, "ncl_bench: --device must be cpu or cuda\n");
    return 2;
  }
  const Device device = device_name == "cuda" ? Device::CUDA : Device::CPU;
  if (device == Device::CUDA && !ops::cuda_available()) {
    std::fprintf(stderr, "ncl_bench: no usable CUDA device\n");
    return 1;
  }
  if (threads > 0) ops::set_cpu_threads(threads);
  Rng rng(0);
  const int64_t B = 10, N = 500, D = 128, H = 4;
  auto on_device = [&](const Shape& shape) { return rng.normal_tensor(shape).to(device); };

  if (device == Device::CPU) std::printf("ncl benchmark (CPU, %d threads)\n\n", ops::cpu_threads());
  else std::printf("ncl benchmark (CUDA, TF32 off)\n\n");
  std::printf("%-52s %12s\n", "sgemm shape", "GFLOP/s");
  const int64_t P = device == Device::CUDA ? 8192 : 1024;  // large enough to reach the peak
  Tensor big = on_device({P, P});
  double peak = gemm_rate(big, big, false, 20, /*best=*/true);
  std::printf("%-52s %12.1f\n",
              (std::to_string(P) + "^3, best of 20 (the sgemm rate)").c_str(), peak);
  if (only.empty() || only == "gemm") {
    Tensor x = on_device({B * N, D}), w = on_device({D, D});
    std::printf("%-52s %12.1f\n", "(B*N=5000) x 128 x 128, x W^T (Linear)", gemm_rate(x, w, true, 10));
    Tensor q = on_device({H * B, N, D / H}), k = on_device({H * B, N, D / H});
    std::printf("%-52s %12.1f\n", "40 x (500 x 32 . 32 x 500), Q K^T (SAB scores)",
                gemm_rate(q, k, true, 10));
    Tensor a = on_device({H * B, N, N});
    std::printf("%-52s %12.1f\n", "40 x (500 x 500 . 500 x 32), A V (SAB output)",
                gemm_rate(a, q, false, 10));
    Tensor qi = on_device({H * B, 32, D / H});
    std::printf("%-52s %12.1f\n", "40 x (32 x 32 . 32 x 500), I K^T (ISAB, 32 inducing)",
                gemm_rate(qi, k, true, 10));
    // ISAB's second attention, 32 keys: scores, output and the gradients' transposed products.
    // On the CPU these thin products run on ncl's kernel (NCL_THIN_GEMM=0: on OpenBLAS).
    Tensor kh = on_device({H * B, 32, D / H});
    std::printf("%-52s %12.1f\n", "40 x (500 x 32 . 32 x 32), Q K^T (32 keys)",
                gemm_rate(q, kh, true, 10));
    std::printf("%-52s %12.1f\n", "40 x (500 x 32 . 32 x 32), P V (32 keys)",
                gemm_rate(q, kh, false, 10));
    std::printf("%-52s %12.1f\n", "40 x ((500 x 32)^T . 500 x 32), P^T dO (32 x 32)",
                gemm_rate(q, k, false, 10, false, /*trans_a=*/true));
    Tensor s32 = on_device({H * B, 32, N});
    std::printf("%-52s %12.1f\n", "40 x ((32 x 500)^T . 32 x 32), dS^T Q (500 x 32)",
                gemm_rate(s32, kh, false, 10, false, /*trans_a=*/true));

  }
  if (only.empty() || only == "set-transformer") {
    // The Set Transformer training step (spec/performance.md's two configurations).
    struct Config {
      const char* setting;
      int64_t batch, n_min, n_max;
      double peer_seconds, peer_mib;
      int64_t micro_batch = 0;  // datasets per forward/backward (0: the whole batch)
      bool is_default = false;  // what `ncl train` runs on the CPU
      bool unfolded = false;    // shared queries computed the reference way (nn/attention.h)
    };
    std::printf("\nSet Transformer training step (MoG loss + Adam), median of %d steps\n", steps);
    std::printf("%-28s %9s %9s %9s %8s %9s %9s\n", "configuration", "fwd+bwd", "step", "PyTorch",
                "ratio", "GFLOP", "floor");
    const bool cpu = device == Device::CPU;
    std::vector<Config> configs{{"B=10, N in [300,600)", 10, 300, 600, 0.043, 517, 0, !cpu},
                                {"B=10, N in [300,600)", 10, 300, 600, 0.043, 517, 5, cpu},
                                {"B=10, N in [300,600)", 10, 300, 600, 0.043, 517, 1},
                                {"B=10, N in [300,600)", 10, 300, 600, 0.043, 517, 5, false, true},
                                {"B=10, N = 500", 10, 500, 501, 0.068, 485, 0, !cpu},
                                {"B=10, N = 500", 10, 500, 501, 0.068, 485, 5, cpu},
                                {"B=10, N = 500", 10, 500, 501, 0.068, 485, 5, false, true}};
    // Per setting: the default row's total step time and the unfolded row's GEMM work.
    std::map<std::string, double> default_step, unfolded_flops;
    if (!cpu) configs.push_back({"B=100, N = 1000", 100, 1000, 1001, 2.88, 1536, 0, true});
    for (const Config& c : configs) {
      if (default_only && !c.is_default) continue;
      // Every row sees the same weights and the same draws of N, whichever rows run.
      Rng init(0), batches(7);
      data::MogK4 generator(c.n_min, c.n_max);
      models::SetTransformer net(models::SetTransformerConfig{}, init);
      net.to(device);
      nn::set_fold_shared_queries(!c.unfolded);
      StepTiming t = time_training_step(net, generator, c.batch, steps, batches, c.micro_batch);
      nn::set_fold_shared_queries(true);
      double gflop = double(t.total_flops) / steps / 1e9;
      double fraction = double(t.total_flops) / (peak * 1e9) / t.total_seconds;
      const std::string label = c.unfolded ? "  --micro-batch " + std::to_string(c.micro_batch) +
                                                 ", unfolded"
                                           : row_label(c.setting, c.micro_batch, default_only);
      std::printf("%-28s %8.4fs %8.4fs %8.3fs %8.2f %9.2f %9.2f\n", label.c_str(), t.fwd_bwd,
                  t.step, c.peer_seconds, t.step / c.peer_seconds, gflop, fraction);
      if (c.is_default) default_step[c.setting] = t.total_seconds;
      if (c.unfolded) unfolded_flops[c.setting] = double(t.total_flops);
    }
    for (const Config& c : configs)
      if (c.unfolded && unfolded_flops.count(c.setting) && default_step.count(c.setting))
        std::printf("%s: the default step against the model's GEMM floor (the unfolded "
                    "computation's %.2f GFLOP a step): %.2f\n", c.setting,
                    unfolded_flops[c.setting] / steps / 1e9,
                    unfolded_flops[c.setting] / (peak * 1e9) / default_step[c.setting]);
  }
  if (only.empty() || only == "dac") {
    // DAC's training step (min loss, Gaussian density): spec/performance.md's configuration;
    // and the anchored loss (no PyTorch figure), whose chunks also run on the threads at once.
    const int dac_steps = std::max(4, steps / 2);
    // N varies over [300, 1000), so a step's cost varies 3×: both modes see the same batches
    // (Rng(7)) and the table shows means over them.
    std::printf("\nDAC training step (loss + clip + Adam), mean of %d steps\n", dac_steps);
    std::printf("%-28s %9s %9s %8s %9s %9s  %11s\n", "configuration", "step", "PyTorch", "ratio",
                "GFLOP", "floor", "peak in use");
    data::Mog generator("mog", 4, 1000);
    struct Mode {
      const char* setting;
      int64_t micro_batch;  // datasets per forward/backward (0: all 100 at once)
      const char* loss = "min";
    };
    const int64_t default_micro_batch = device == Device::CPU ? 2 : 0;  // `ncl train`'s
    const char* min_setting = "B=100, N in [300,1000)";
    for (const Mode& mode : {Mode{min_setting, 0}, Mode{min_setting, 20}, Mode{min_setting, 5},
                             Mode{min_setting, 2}, Mode{min_setting, 1},
                             Mode{"anc loss, whole batch", 0, "anc"}, Mode{"anc loss", 2, "anc"}}) {
      if (default_only && (mode.micro_batch != default_micro_batch || std::string(mode.loss) != "min"))
        continue;
      Rng init(0), batches(7);
      models::DacConfig config;
      config.loss = mode.loss;
      models::Dac net(config, init);
      net.to(device);
      allocator_for(device).reset_peak();
      StepTiming t = time_training_step(net, generator, 100, dac_steps, batches, mode.micro_batch);
      const double step = t.total_seconds / dac_steps, gflop = double(t.total_flops) / dac_steps / 1e9;
      const bool peer = std::string(mode.loss) == "min";  // the spec's PyTorch step: min loss
      char ratio[16] = "-";
      if (peer) std::snprintf(ratio, sizeof ratio, "%.2f", step / 2.63);
      std::printf("%-28s %8.3fs %9s %8s %9.1f %9.2f  %7.0f MiB\n",
                  row_label(mode.setting, mode.micro_batch, default_only).c_str(), step,
                  peer ? "2.63s" : "-", ratio, gflop, gflop / peak / step,
                  double(allocator_for(device).stats().peak_bytes_in_use) / (1 << 20));
    }
  }
  if (only.empty() || only == "dac-cluster") {
    // Clustering the first 100 datasets of mog-12 (N in [900, 3000), K <= 12; the benchmark's
    // seed 0), after one warm-up dataset: one at a time with every kernel split over the
    // threads (`ncl cluster`'s latency), and on the CPU also the datasets on the threads at
    // once, each single-threaded (`ncl eval`'s ms per dataset: wall-clock over the count).
    // A pass runs the network on the points still unclaimed, so the work depends on the model.
    std::unique_ptr<models::ClusteringModel> dac =
        models::load_model(nn::load_checkpoint(dac_checkpoint), dac_checkpoint);
    dac->to(device);
    // The same draws as the benchmark file's first 100 (`ncl gen --data mog-12 --seed 0`).
    const auto generator = data::make_generator("mog-12");
    const data::Benchmark mog12 =
        data::generate_benchmark(*generator, 100, generator->benchmark_batch(), 0);
    std::printf("\nDAC clustering, first %zu datasets of mog-12, %s\n", mog12.datasets.size(),
                dac_checkpoint.c_str());
    std::printf("%-28s %10s %9s %9s %9s\n", "inference", "ms/dataset", "passes", "GFLOP", "floor");
    const int64_t M = int64_t(mog12.datasets.size());
    const bool on_threads = device == Device::CPU && ops::cpu_threads() >= 2;
    for (int mode = 0; mode < (on_threads ? 3 : 2); ++mode) {
      models::InferenceOptions options;
      options.refine = mode != 1;
      dac->cluster(mog12.datasets.front().points, options);  // warm-up
      const int64_t flops_before = ops::gemm_flops();
      std::atomic<int64_t> next{0}, passes{0};
      auto sweep = [&] {
        for (int64_t i; (i = next++) < M;)
          passes += dac->cluster(mog12.datasets[size_t(i)].points, options).passes;
      };
      auto start = Clock::now();
      if (mode == 2)
        ops::run_cpu_groups(ops::cpu_threads(), [&](int, int64_t, int64_t) { sweep(); });
      else
        sweep();
      const double seconds = seconds_since(start);
      const double gflop = double(ops::gemm_flops() - flops_before) / double(M) / 1e9;
      const char* label[] = {"refined (the default)", "--no-refine",
                             "refined, datasets on threads"};
      std::printf("%-28s %10.1f %9.2f %9.2f %9.2f\n", label[mode], 1e3 * seconds / double(M),
                  double(passes) / double(M), gflop, gflop / peak / (seconds / double(M)));
    }
  }
  if (only.empty() || only == "ncp") {
    // NCP's training iteration (spec/performance.md): B = 64, N in [5, 100), 6 orderings with
    // their gradients summed, coupled weight decay. N varies 20×, so both figures are means
    // over the same batches (Rng(7)).
    const int ncp_steps = std::max(8, steps);
    std::printf("\nNCP training iteration (6 orderings + Adam), mean of %d iterations\n", ncp_steps);
    std::printf("%-28s %9s %9s %8s %9s %8s %9s  %11s\n", "configuration", "step", "PyTorch", "ratio",
                "peer", "ratio", "floor", "peak in use");
    data::CrpMog generator;
    double gflop = 0.0;
    Rng init(0), batches(7);
    models::Ncp net(models::NcpConfig{}, init);
    net.to(device);
    for (int64_t micro_batch : {0, 32}) {  // whole batch; one half per thread on 2 cores
      if (default_only && micro_batch != (device == Device::CPU ? 32 : 0)) continue;
      batches = Rng(7);
      allocator_for(device).reset_peak();
      StepTiming t = time_training_step(net, generator, 64, ncp_steps, batches, micro_batch);
      const double step = t.total_seconds / ncp_steps;
      gflop = double(t.total_flops) / ncp_steps / 1e9;
      std::printf("%-28s %8.3fs %8.2fs %8.2f %8.2fs %8.2f %9.2f  %7.0f MiB\n",
                  row_label("B=64, N in [5,100)", micro_batch, default_only).c_str(), step, 3.13,
                  step / 3.13, 1.73, step / 1.73, gflop / peak / step,
                  double(allocator_for(device).stats().peak_bytes_in_use) / (1 << 20));
    }
    std::printf("%-28s %9.1f GFLOP of GEMMs per iteration (the reference's unfolded network: ~140)\n",
                "", gflop);
    if (!default_only) {
      // NCP's sampling: S = 100 clusterings of one dataset, drawn as one batch. Its cost depends
      // on the weights (a trained model's draws agree, so fewer distinct particles): --ncp CKPT
      // times a trained checkpoint instead of fresh weights.
      std::unique_ptr<models::ClusteringModel> trained;
      if (!ncp_checkpoint.empty()) {
        trained = models::load_model(nn::load_checkpoint(ncp_checkpoint), ncp_checkpoint);
        trained->to(device);
      }
      const models::ClusteringModel& sampler = trained ? *trained : net;
      std::printf("\nNCP inference on one dataset, S = 100 (median of 3), %s\n",
                  trained ? ncp_checkpoint.c_str() : "fresh weights");
      for (int64_t n : {100, 1000}) {
        data::CrpMogOptions o;
        o.n_min = n, o.n_max = n + 1;
        data::Batch b = data::CrpMog(o).sample(1, batches);
        for (models::Search search : {models::Search::Sample, models::Search::Beam}) {
          models::InferenceOptions options;
          options.search = search;
          std::vector<double> times;
          for (int rep = 0; rep < 3; ++rep) {
            auto start = Clock::now();
            models::ClusterResult r = sampler.cluster(b.points.to_vector(), options);
            times.push_back(seconds_since(start));
          }
          std::printf("  N = %-5lld %-8s %10.1f ms\n", (long long)n,
                      search == models::Search::Sample ? "sample" : "beam", 1e3 * median(times));
        }
      }
    }
  }
  AllocatorStats stats = allocator_for(device).stats();
  std::printf("\n%-52s %12.1f MiB\n", "peak RSS (whole process)", peak_rss_mib());
  std::printf("%-52s %12.1f MiB\n",
              device == Device::CUDA ? "allocator peak bytes in use (GPU)" : "allocator peak bytes in use",
              double(stats.peak_bytes_in_use) / (1 << 20));
  std::printf("%-52s %12ld\n", "allocator blocks from the OS (all steps)", long(stats.os_allocations));
  std::printf("%-52s %12ld\n", "allocator cache flushes (memory bound)", long(stats.cache_flushes));
  std::printf("\nratio = step / PyTorch's CPU step (spec/performance.md, 2 threads; PyTorch peak RSS\n"
              "517 MiB at N in [300,600), 485 MiB at N = 500, 1.5 GiB at B=100, N=1000; DAC: 2.63 s,\n"
              "6.1 GiB; NCP: 3.13 s, 4.8 GiB, and our clean vectorised PyTorch peer 1.73 s, 1.6 GiB).\n"
              "Run one section (--only) to read its own peak RSS. floor =\n"
              "fraction of the GEMM floor (GEMM FLOPs / the sgemm rate above / step time).\n");
  return 0;
}

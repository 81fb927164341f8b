// CPU parallelism in one place. OpenBLAS always runs single-threaded inside ncl; the kernels
// split their own work (batch entries, row blocks, flat ranges) over one OpenMP team, so there
// is never a second thread pool competing with the first (nor BLAS threads waking for tiny
// attention products). Work is split into contiguous static chunks: every element is computed
// by exactly one thread with the same arithmetic as the serial loop, so results do not depend on
// the thread count except where a GEMM is split into row blocks (see gemm.cpp).
// One level of threads only: inside a parallel region (run_groups below, where each thread
// runs a whole micro-batch), parallel_for runs its range serially on the calling thread.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace ncl::cpu {

// Runs f(begin, end) over [0, n) in at most threads() contiguous chunks of at least min_chunk
// items; serially when n is small or one thread is set.
template <class F>
void parallel_for(int64_t n, int64_t min_chunk, F f) {
  int64_t chunks = std::min<int64_t>(omp_get_max_threads(), n / std::max<int64_t>(min_chunk, 1));
  if (chunks <= 1 || omp_in_parallel()) {
    if (n > 0) f(int64_t(0), n);
    return;
  }
#pragma omp parallel for num_threads(int(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) f(n * c / chunks, n * (c + 1) / chunks);
}

// Items per chunk that make a chunk worth a thread: about 32k floats of streaming work.
inline int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_item, 1));
}

}  // namespace ncl::cpu

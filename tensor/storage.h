// Storage: one move-only block of device memory, and the caching allocator that backs it.
//
// Training allocates the same activation sizes every step. Returning those buffers to the OS
// and asking again costs page faults (the PyTorch DAC peer takes ~1M of them per step), so
// freed blocks go to a per-device free list keyed by a size bucket and are handed out again.
// Buckets are 4 per power of two (x, 1.25x, 1.5x, 1.75x), so at most 25% of a block is slack.
// Each thread has free lists of its own and takes back the blocks it freed before any other
// thread's (see CachingAllocator).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "tensor/shape.h"

namespace ncl {

struct AllocatorStats {
  int64_t os_allocations = 0;  // blocks obtained from the OS / driver (cache misses)
  int64_t cache_hits = 0;      // blocks served from the free lists
  int64_t bytes_in_use = 0;    // bytes held by live Storage objects (bucketed sizes)
  int64_t bytes_cached = 0;    // bytes sitting in free lists
  int64_t peak_bytes_in_use = 0;
  int64_t cache_flushes = 0;   // times the cache was given back to bound the memory held
};

class CachingAllocator {
 public:
  using RawAlloc = void* (*)(size_t bytes);
  using RawFree = void (*)(void* ptr);

  // limit_bytes > 0: a new block that would take the blocks in use past it is refused with an
  // ncl::Error, so that a request far beyond the machine (a model of absurd width) fails with
  // one line instead of the kernel's out-of-memory killer (the CPU's: its physical memory).
  CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, int64_t limit_bytes = 0);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Returns a block of at least `bytes`: a cached block of up to twice its bucket size (best
  // fit; from the calling thread's own free lists if they hold one, else from any other
  // thread's), else a new block of its bucket size. `bucket_bytes` gets the block's real size.
  // Before a new block would take the memory held (in use + cached) past 5/4 of the most ever
  // in use, the cache is given back to the OS first: with set sizes that vary from step to
  // step, blocks of sizes no later request fits would otherwise pile up without bound.
  void* allocate(size_t bytes, size_t* bucket_bytes);
  void release(void* ptr, size_t bucket_bytes);  // to this thread's free list, not to the OS
  void empty_cache();                            // give every cached block back to the OS
  AllocatorStats stats() const;
  void reset_peak();  // peak_bytes_in_use = bytes_in_use (to measure one phase)

  static size_t bucket_size(size_t bytes);
  // The set of free lists the calling thread releases to and takes from first.
  static int thread_slot();

 private:
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  // Free blocks by bucket size, one set of lists per thread slot (threads take slots in the
  // order they first ask; beyond kSlots threads share them). A block a thread freed a moment
  // ago is likely still in its core's caches; with one set of lists for both threads of a
  // training step, the Set Transformer's 2-thread step took 3–4 % longer (docs/performance.md).
  static constexpr int kSlots = 16;
  mutable std::mutex mutex_;
  std::array<std::map<size_t, std::vector<void*>>, kSlots> free_blocks_;
  AllocatorStats stats_;
  int64_t high_water_ = 0;  // the most bytes ever in use (reset_peak leaves it)
  int64_t limit_ = 0;
};

CachingAllocator& allocator_for(Device device);

// Storage owns `bytes` bytes on one device. Move-only: copying data is Tensor::clone().
class Storage {
 public:
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Storage(Storage&& other) noexcept;
  Storage& operator=(Storage&& other) noexcept;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void free();
  Device device_ = Device::CPU;
  void* data_ = nullptr;
  size_t bytes_ = 0;         // what the caller asked for
  size_t bucket_bytes_ = 0;  // what the allocator handed out
};

}  // namespace ncl

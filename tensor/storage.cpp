#include "tensor/storage.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <utility>

#include "tensor/backend.h"
#include "tensor/error.h"

namespace ncl {

CachingAllocator::CachingAllocator(RawAlloc raw_alloc, RawFree raw_free, int64_t limit_bytes)
    : raw_alloc_(raw_alloc), raw_free_(raw_free), limit_(limit_bytes) {}

CachingAllocator::~CachingAllocator() { empty_cache(); }

// Slots in the order threads first ask, wrapping around.
int CachingAllocator::thread_slot() {
  static std::atomic<int> next{0};
  thread_local const int slot = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
  return slot;
}

size_t CachingAllocator::bucket_size(size_t bytes) {
  if (bytes <= 256) return 256;
  // Four buckets per octave: 2^k * {1, 1.25, 1.5, 1.75}.
  size_t octave = std::bit_floor(bytes);
  size_t quarter = octave / 4;
  size_t rounded = (bytes + quarter - 1) / quarter * quarter;
  return rounded;
}

void* CachingAllocator::allocate(size_t bytes, size_t* bucket_bytes) {
  size_t size = bucket_size(bytes);
  *bucket_bytes = size;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Best fit among cached blocks up to twice the bucket: when set sizes vary from step to
    // step (N in [300, 600)), small requests reuse the blocks of larger steps instead of
    // growing the cache with every new size. This thread's lists first, then the others'.
    const int own = thread_slot();
    for (int i = 0; i < kSlots; ++i) {
      auto& lists = free_blocks_[size_t((own + i) % kSlots)];
      auto it = lists.lower_bound(size);
      while (it != lists.end() && it->first <= 2 * size && it->second.empty()) ++it;
      if (it == lists.end() || it->first > 2 * size) continue;
      size = it->first;
      *bucket_bytes = size;
      void* ptr = it->second.back();
      it->second.pop_back();
      stats_.cache_hits++;
      stats_.bytes_cached -= int64_t(size);
      stats_.bytes_in_use += int64_t(size);
      if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
        stats_.peak_bytes_in_use = stats_.bytes_in_use;
      high_water_ = std::max(high_water_, stats_.bytes_in_use);
      return ptr;
    }
  }
  bool flush = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t held = stats_.bytes_in_use + stats_.bytes_cached + int64_t(size);
    flush = stats_.bytes_cached > 0 && held > high_water_ + high_water_ / 4;
    if (flush) stats_.cache_flushes++;
  }
  if (flush) empty_cache();
  if (limit_ > 0) {  // cached blocks count too (they are resident) until given back
    int64_t in_use = 0, cached = 0;
    auto read = [&] {
      std::lock_guard<std::mutex> lock(mutex_);
      in_use = stats_.bytes_in_use, cached = stats_.bytes_cached;
    };
    read();
    if (in_use + cached + int64_t(size) > limit_ && cached > 0) {
      empty_cache();
      read();
    }
    NCL_CHECK(in_use + cached + int64_t(size) <= limit_, "out of memory: ", size >> 20,
              " MiB more would take ncl's tensors past the machine's ", limit_ >> 30,
              " GiB; HINT: a smaller model, batch or dataset");
  }
  void* ptr = raw_alloc_(size);
  if (!ptr) {
    // Out of memory with blocks cached: give them back and try once more.
    empty_cache();
    ptr = raw_alloc_(size);
  }
  NCL_CHECK(ptr != nullptr, "allocator: out of memory allocating ", size, " bytes");
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.os_allocations++;
  stats_.bytes_in_use += int64_t(size);
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  high_water_ = std::max(high_water_, stats_.bytes_in_use);
  return ptr;
}

void CachingAllocator::release(void* ptr, size_t bucket_bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_blocks_[size_t(thread_slot())][bucket_bytes].push_back(ptr);
  stats_.bytes_in_use -= int64_t(bucket_bytes);
  stats_.bytes_cached += int64_t(bucket_bytes);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& lists : free_blocks_) {
    for (auto& [size, blocks] : lists)
      for (void* ptr : blocks) raw_free_(ptr);
    lists.clear();
  }
  stats_.bytes_cached = 0;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

namespace {
int64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  // 7/8 of it: past that the kernel's out-of-memory killer, not ncl, would end the run.
  return pages > 0 && page > 0 ? int64_t(pages) * int64_t(page) / 8 * 7 : 0;
}
}  // namespace

CachingAllocator& allocator_for(Device device) {
  // Function-local statics: created on first use, destroyed after every Storage of main().
  static CachingAllocator cpu_allocator(cpu::raw_alloc, cpu::raw_free, physical_memory());
  static CachingAllocator cuda_allocator(cuda::raw_alloc, cuda::raw_free);
  return device == Device::CPU ? cpu_allocator : cuda_allocator;
}

Storage::Storage(Device device, size_t bytes) : device_(device), bytes_(bytes) {
  data_ = allocator_for(device).allocate(bytes, &bucket_bytes_);
}

Storage::~Storage() { free(); }

Storage::Storage(Storage&& other) noexcept
    : device_(other.device_),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      bucket_bytes_(std::exchange(other.bucket_bytes_, 0)) {}

Storage& Storage::operator=(Storage&& other) noexcept {
  if (this != &other) {
    free();
    device_ = other.device_;
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    bucket_bytes_ = std::exchange(other.bucket_bytes_, 0);
  }
  return *this;
}

void Storage::free() {
  if (data_) allocator_for(device_).release(data_, bucket_bytes_);
  data_ = nullptr;
}

}  // namespace ncl

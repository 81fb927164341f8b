// CPU memory and data movement: allocation, copies, fill, cast, strided copy, where, and the
// row gather/scatter used by index_select / index_add, and combine_rows.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tensor/backend.h"
#include "tensor/cpu/dtype_dispatch.h"
#include "tensor/cpu/parallel.h"

namespace ncl::cpu {

void* raw_alloc(size_t bytes) {
  // 64-byte alignment suits AVX-512 loads and keeps rows from sharing cache lines.
  size_t rounded = (bytes + 63) / 64 * 64;
  return std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
}

void raw_free(void* ptr) { std::free(ptr); }

void copy_from_host(void* dst, const void* host_src, size_t bytes) { std::memcpy(dst, host_src, bytes); }
void copy_to_host(void* host_dst, const void* src, size_t bytes) { std::memcpy(host_dst, src, bytes); }
void copy_device(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

namespace {
// Calls fn(T{}) for any dtype, integers included.
template <class Fn>
void dispatch_any(DType dtype, Fn&& fn) {
  if (dtype == DType::F32) fn(float{});
  else if (dtype == DType::F64) fn(double{});
  else fn(int32_t{});
}
}  // namespace

void fill(Tensor& out, double value) {
  dispatch_any(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = static_cast<T*>(out.raw_data());
    parallel_for(out.numel(), grain(1),
                 [&](int64_t i0, int64_t i1) { std::fill(p + i0, p + i1, T(value)); });
  });
}

void cast(const Tensor& x, Tensor& out) {
  dispatch_any(x.dtype(), [&](auto x_zero) {
    dispatch_any(out.dtype(), [&](auto out_zero) {
      using X = decltype(x_zero);
      using O = decltype(out_zero);
      const X* src = static_cast<const X*>(x.raw_data());
      O* dst = static_cast<O*>(out.raw_data());
      for (int64_t i = 0; i < x.numel(); ++i) dst[i] = O(src[i]);
    });
  });
}

void copy_strided(const Tensor& src, Tensor& dst, const CopyArgs& args) {
  // Pad to rank 4 so one loop nest covers every rank; the innermost axis is a tight loop.
  int rank = args.shape.rank();
  int64_t n[4] = {1, 1, 1, 1}, ss[4] = {0, 0, 0, 0}, ds[4] = {0, 0, 0, 0};
  for (int i = 0; i < rank; ++i) {
    n[4 - rank + i] = args.shape[i];
    ss[4 - rank + i] = args.src_strides[size_t(i)];
    ds[4 - rank + i] = args.dst_strides[size_t(i)];
  }
  // Rows (i0, i1, i2) are split over the threads; each is copied by one.
  dispatch_any(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* s = static_cast<const T*>(src.raw_data()) + args.src_offset;
    T* d = static_cast<T*>(dst.raw_data()) + args.dst_offset;
    parallel_for(n[0] * n[1] * n[2], grain(n[3]), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t i0 = r / (n[1] * n[2]), i1 = r / n[2] % n[1], i2 = r % n[2];
        const T* sr = s + i0 * ss[0] + i1 * ss[1] + i2 * ss[2];
        T* dr = d + i0 * ds[0] + i1 * ds[1] + i2 * ds[2];
        if (ss[3] == 1 && ds[3] == 1) std::memcpy(dr, sr, size_t(n[3]) * sizeof(T));
        else
          for (int64_t i3 = 0; i3 < n[3]; ++i3) dr[i3 * ds[3]] = sr[i3 * ss[3]];
      }
    });
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_float(a.dtype(), "where", [&](auto zero) {
    using T = decltype(zero);
    const int32_t* c = cond.data<int32_t>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = c[i] ? pa[i] : pb[i];
  });
}

void index_select(const Tensor& x, const Tensor& index, Tensor& out, int64_t cols) {
  int64_t rows_in = cols == 0 ? 0 : x.numel() / cols;
  dispatch_float(x.dtype(), "index_select", [&](auto zero) {
    using T = decltype(zero);
    const int32_t* idx = index.data<int32_t>();
    for (int64_t i = 0; i < index.numel(); ++i) {
      NCL_CHECK(idx[i] >= 0 && idx[i] < rows_in, "index_select: index ", idx[i], " at position ",
                i, " is out of range [0, ", rows_in, ")");
      std::memcpy(out.data<T>() + i * cols, x.data<T>() + idx[i] * cols, size_t(cols) * sizeof(T));
    }
  });
}

void index_add(const Tensor& src, const Tensor& index, Tensor& out, int64_t cols) {
  int64_t rows_out = cols == 0 ? 0 : out.numel() / cols;
  dispatch_float(src.dtype(), "index_add", [&](auto zero) {
    using T = decltype(zero);
    const int32_t* idx = index.data<int32_t>();
    for (int64_t i = 0; i < index.numel(); ++i) {
      NCL_CHECK(idx[i] >= 0 && idx[i] < rows_out, "index_add: index ", idx[i], " at position ", i,
                " is out of range [0, ", rows_out, ")");
      const T* s = src.data<T>() + i * cols;
      T* d = out.data<T>() + idx[i] * cols;
      for (int64_t j = 0; j < cols; ++j) d[j] += s[j];
    }
  });
}

void combine_rows(const Tensor& offsets, const Tensor& index, const Tensor& weight,
                  const Tensor& x, Tensor& out, int64_t cols) {
  const int64_t rows = offsets.numel() - 1;
  dispatch_float(x.dtype(), "combine_rows", [&](auto zero) {
    using T = decltype(zero);
    const int32_t* off = offsets.data<int32_t>();
    const int32_t* idx = index.data<int32_t>();
    const T* w = weight.data<T>();
    const T* in = x.data<T>();
    T* o = out.data<T>();
    const int64_t per_row = rows == 0 ? 0 : cols * (index.numel() / rows + 1);
    parallel_for(rows, grain(per_row), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        T* d = o + r * cols;
        std::fill(d, d + cols, T(0));
        for (int32_t j = off[r]; j < off[r + 1]; ++j) {
          const T* s = in + int64_t(idx[j]) * cols;
          const T wj = w[j];
          for (int64_t c = 0; c < cols; ++c) d[c] += wj * s[c];
        }
      }
    });
  });
}

}  // namespace ncl::cpu

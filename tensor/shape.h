// Shape, DType and Device: the three facts every tensor carries besides its bytes.
//
// Axis letters used in shape comments across ncl (defined once, here):
//   B sets in a batch, N set size, M inducing points or seeds, D width, H heads,
//   Dh = D / H per-head width, K clusters. Shapes are row-major, last axis fastest.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <vector>

namespace ncl {

// F32 is the working type everywhere; F64 exists on the CPU so gradient checks are tight.
// I32 holds indices and masks (1 = masked); it is never differentiated.
enum class DType { F32, F64, I32 };
enum class Device { CPU, CUDA };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);    // "F32", "F64", "I32" (the safetensors spellings)
const char* device_name(Device device);  // "cpu", "cuda"
bool is_floating(DType dtype);

// Shape: rank 0..4. Rank 0 is a scalar with one element.
class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int rank() const { return rank_; }
  int64_t numel() const;
  // Axis access; negative axes count from the end (-1 is the last axis). Throws if out of range.
  int64_t operator[](int axis) const;
  int normalize_axis(int axis) const;
  std::vector<int64_t> dims() const { return {dims_.begin(), dims_.begin() + rank_}; }

  Shape with(int axis, int64_t size) const;  // copy with one axis resized
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }
  std::string str() const;  // "(2, 5, 3)"

 private:
  int rank_ = 0;
  std::array<int64_t, kMaxRank> dims_{};
};

std::ostream& operator<<(std::ostream& out, const Shape& shape);
std::ostream& operator<<(std::ostream& out, DType dtype);
std::ostream& operator<<(std::ostream& out, Device device);

}  // namespace ncl

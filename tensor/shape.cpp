#include "tensor/shape.h"

#include <ostream>

#include "tensor/error.h"

namespace ncl {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
  }
  return "?";
}

const char* device_name(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

bool is_floating(DType dtype) { return dtype == DType::F32 || dtype == DType::F64; }

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  NCL_CHECK(dims.size() <= size_t(kMaxRank), "Shape: rank ", dims.size(), " exceeds the maximum ",
            kMaxRank);
  rank_ = int(dims.size());
  for (int i = 0; i < rank_; ++i) {
    NCL_CHECK(dims[size_t(i)] >= 0, "Shape: negative dimension ", dims[size_t(i)]);
    dims_[size_t(i)] = dims[size_t(i)];
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[size_t(i)];
  return n;
}

int Shape::normalize_axis(int axis) const {
  int a = axis < 0 ? axis + rank_ : axis;
  NCL_CHECK(a >= 0 && a < rank_, "axis ", axis, " is out of range for shape ", str());
  return a;
}

int64_t Shape::operator[](int axis) const { return dims_[size_t(normalize_axis(axis))]; }

Shape Shape::with(int axis, int64_t size) const {
  Shape out = *this;
  out.dims_[size_t(normalize_axis(axis))] = size;
  return out;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[size_t(i)] != other.dims_[size_t(i)]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[size_t(i)]);
  return s + (rank_ == 1 ? ",)" : ")");
}

std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << shape.str(); }
std::ostream& operator<<(std::ostream& out, DType dtype) { return out << dtype_name(dtype); }
std::ostream& operator<<(std::ostream& out, Device device) { return out << device_name(device); }

}  // namespace ncl

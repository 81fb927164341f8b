// Tensor: a cheap handle to contiguous, row-major data on one device.
//
// A Tensor is shared_ptr<Storage> + Shape + DType. Copying a Tensor shares the data (like a
// pointer); `clone()` copies it. `reshape` is free (same storage, new shape); every other layout
// change (permute, broadcast, slice) is a copying op in tensor/ops.h. Tensors know nothing
// about gradients: that is autograd::Variable's job, one layer up.
#pragma once

#include <memory>
#include <vector>

#include "tensor/error.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace ncl {

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage; `defined()` is false

  // Uninitialised memory (NaN-filled while a PoisonGuard is alive; see below).
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::CPU);
  // Copies host values (converted to dtype) into a new tensor; values.size() must equal numel.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::F32, Device device = Device::CPU);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  int rank() const { return shape_.rank(); }
  int64_t numel() const { return shape_.numel(); }
  int64_t dim(int axis) const { return shape_[axis]; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }

  Tensor reshape(const Shape& shape) const;  // shares storage; numel must match
  Tensor clone() const;                      // deep copy on the same device
  Tensor to(Device device) const;            // copy to another device (shares if already there)
  Tensor to(DType dtype) const;              // converting copy (shares if already that dtype)

  // Raw element pointer, CPU only; T must match the dtype (float, double or int32_t).
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  std::vector<double> to_vector() const;  // host copy, converted to double
  double item() const;                     // the single element of a one-element tensor
  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }
  // Whether no other Tensor shares this one's storage, so it may be changed in place without
  // anyone seeing it (the autograd engine's gradient accumulation).
  bool unshared() const { return storage_ != nullptr && storage_.use_count() == 1; }

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::F32;
};

// While alive, every new floating-point Tensor is filled with NaN, so a kernel that forgets to
// write an element is caught by the first check that reads it. Used by gradcheck and tests.
class PoisonGuard {
 public:
  PoisonGuard();
  ~PoisonGuard();
  PoisonGuard(const PoisonGuard&) = delete;
  PoisonGuard& operator=(const PoisonGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace ncl

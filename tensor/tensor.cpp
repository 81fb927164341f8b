#include "tensor/tensor.h"

#include <cstdint>
#include <limits>

#include "tensor/backend.h"

namespace ncl {
namespace {

thread_local bool poison_new_tensors = false;

// Calls kernel(namespace) on the backend that owns `device`.
template <class CpuFn, class CudaFn>
void on_device(Device device, CpuFn cpu_fn, CudaFn cuda_fn) {
  if (device == Device::CPU) cpu_fn();
  else cuda_fn();
}

}  // namespace

PoisonGuard::PoisonGuard() : previous_(poison_new_tensors) { poison_new_tensors = true; }
PoisonGuard::~PoisonGuard() { poison_new_tensors = previous_; }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.storage_ = std::make_shared<Storage>(device, size_t(shape.numel()) * dtype_size(dtype));
  t.shape_ = shape;
  t.dtype_ = dtype;
  if (poison_new_tensors && is_floating(dtype))
    on_device(device, [&] { cpu::fill(t, std::numeric_limits<double>::quiet_NaN()); },
              [&] { cuda::fill(t, std::numeric_limits<double>::quiet_NaN()); });
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  on_device(device, [&] { cpu::fill(t, value); }, [&] { cuda::fill(t, value); });
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype,
                           Device device) {
  NCL_CHECK(int64_t(values.size()) == shape.numel(), "Tensor::from_vector: ", values.size(),
            " values for shape ", shape);
  Tensor host = empty(shape, DType::F64, Device::CPU);
  std::copy(values.begin(), values.end(), host.data<double>());
  return host.to(dtype).to(device);
}

Device Tensor::device() const {
  NCL_CHECK(defined(), "Tensor::device: tensor is undefined");
  return storage_->device();
}

Tensor Tensor::reshape(const Shape& shape) const {
  NCL_CHECK(shape.numel() == numel(), "reshape: cannot view ", shape_, " (", numel(),
            " elements) as ", shape, " (", shape.numel(), ")");
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  on_device(device(), [&] { cpu::copy_device(t.raw_data(), raw_data(), nbytes()); },
            [&] { cuda::copy_device(t.raw_data(), raw_data(), nbytes()); });
  return t;
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor t = empty(shape_, dtype_, target);
  if (target == Device::CUDA) cuda::copy_from_host(t.raw_data(), raw_data(), nbytes());
  else cuda::copy_to_host(t.raw_data(), raw_data(), nbytes());
  return t;
}

Tensor Tensor::to(DType target) const {
  if (dtype_ == target) return *this;
  Tensor t = empty(shape_, target, device());
  on_device(device(), [&] { cpu::cast(*this, t); }, [&] { cuda::cast(*this, t); });
  return t;
}

template <class T>
static constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else return DType::I32;
}

template <class T>
T* Tensor::data() {
  NCL_CHECK(defined(), "Tensor::data: tensor is undefined");
  NCL_CHECK(dtype_ == dtype_of<T>(), "Tensor::data: tensor is ", dtype_, ", asked for ",
            dtype_name(dtype_of<T>()));
  NCL_CHECK(device() == Device::CPU, "Tensor::data: tensor lives on ", device(),
            "; HINT: copy it with .to(Device::CPU) first");
  return static_cast<T*>(storage_->data());
}

template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int32_t* Tensor::data<int32_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int32_t* Tensor::data<int32_t>() const;

void* Tensor::raw_data() {
  NCL_CHECK(defined(), "Tensor::raw_data: tensor is undefined");
  return storage_->data();
}

const void* Tensor::raw_data() const {
  NCL_CHECK(defined(), "Tensor::raw_data: tensor is undefined");
  return storage_->data();
}

std::vector<double> Tensor::to_vector() const {
  Tensor host = to(Device::CPU).to(DType::F64);
  const double* p = host.data<double>();
  return std::vector<double>(p, p + numel());
}

double Tensor::item() const {
  NCL_CHECK(numel() == 1, "Tensor::item: tensor has shape ", shape_, ", not one element");
  return to_vector()[0];
}

}  // namespace ncl

#include "index/vector_rows.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "index/distance.h"

namespace nestor {
namespace {
constexpr size_t kAlignment = 64;
constexpr size_t kMinCapacity = 16;
}  // namespace

void VectorRows::AlignedFree::operator()(float* p) const {
  ::operator delete[](p, std::align_val_t(kAlignment));
}

VectorRows::VectorRows(int dimension, int stride) : dimension_(dimension), stride_(stride) {}

VectorRows::VectorRows(VectorRows&& other) noexcept
    : dimension_(other.dimension_),
      stride_(other.stride_),
      capacity_(std::exchange(other.capacity_, 0)),
      data_(std::move(other.data_)),
      ids_(std::move(other.ids_)),
      norms_(std::move(other.norms_)) {
  other.ids_.clear();
  other.norms_.clear();
}

VectorRows& VectorRows::operator=(VectorRows&& other) noexcept {
  if (this != &other) {
    dimension_ = other.dimension_;
    stride_ = other.stride_;
    capacity_ = std::exchange(other.capacity_, 0);
    data_ = std::move(other.data_);
    ids_ = std::move(other.ids_);
    norms_ = std::move(other.norms_);
    other.ids_.clear();
    other.norms_.clear();
  }
  return *this;
}

void VectorRows::Reserve(size_t n) {
  if (n <= capacity_) return;
  const size_t new_capacity = std::max({n, capacity_ + capacity_ / 2, kMinCapacity});
  const size_t floats = new_capacity * static_cast<size_t>(stride_);
  float* fresh = static_cast<float*>(
      ::operator new[](floats * sizeof(float), std::align_val_t(kAlignment)));
  std::unique_ptr<float[], AlignedFree> owned(fresh);
  const size_t used = size() * static_cast<size_t>(stride_);
  if (used > 0) std::memcpy(fresh, data_.get(), used * sizeof(float));
  std::memset(fresh + used, 0, (floats - used) * sizeof(float));
  data_ = std::move(owned);
  capacity_ = new_capacity;
  ids_.reserve(new_capacity);
  norms_.reserve(new_capacity);
}

size_t VectorRows::Append(DatapointId id, const float* vector) {
  if (size() == capacity_) Reserve(size() + 1);
  const size_t row = size();
  std::memcpy(data_.get() + row * stride_, vector, dimension_ * sizeof(float));
  ids_.push_back(id);
  norms_.push_back(SquaredNorm(vector, dimension_));
  return row;
}

void VectorRows::Set(size_t row, const float* vector) {
  std::memcpy(data_.get() + row * stride_, vector, dimension_ * sizeof(float));
  norms_[row] = SquaredNorm(vector, dimension_);
}

std::optional<DatapointId> VectorRows::SwapRemove(size_t row) {
  const size_t last = size() - 1;
  std::optional<DatapointId> moved;
  if (row != last) {
    std::memcpy(data_.get() + row * stride_, data_.get() + last * stride_,
                dimension_ * sizeof(float));
    ids_[row] = ids_[last];
    norms_[row] = norms_[last];
    moved = ids_[row];
  }
  std::memset(data_.get() + last * stride_, 0, dimension_ * sizeof(float));
  ids_.pop_back();
  norms_.pop_back();
  return moved;
}

void VectorRows::Clear() {
  data_.reset();
  capacity_ = 0;
  ids_.clear();
  ids_.shrink_to_fit();
  norms_.clear();
  norms_.shrink_to_fit();
}

size_t VectorRows::memory_bytes() const {
  return capacity_ * static_cast<size_t>(stride_) * sizeof(float) +
         ids_.capacity() * sizeof(DatapointId) + norms_.capacity() * sizeof(float);
}

}  // namespace nestor

#include "index/vector_rows.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "index/distance.h"

namespace nestor {
namespace {
constexpr size_t kMinCapacity = 16;
}  // namespace

VectorRows::VectorRows(int dimension, int stride) : dimension_(dimension), stride_(stride) {}

VectorRows::VectorRows(VectorRows&& other) noexcept
    : dimension_(other.dimension_),
      stride_(other.stride_),
      capacity_(std::exchange(other.capacity_, 0)),
      owner_(std::move(other.owner_)),
      data_(std::exchange(other.data_, nullptr)),
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
    owner_ = std::move(other.owner_);
    data_ = std::exchange(other.data_, nullptr);
    ids_ = std::move(other.ids_);
    norms_ = std::move(other.norms_);
    other.ids_.clear();
    other.norms_.clear();
  }
  return *this;
}

void VectorRows::Reserve(size_t n, const std::shared_ptr<RowArena>& arena) {
  if (n <= capacity_) return;
  // An arena is laid out for the final size; growth is geometric.
  const size_t new_capacity =
      arena != nullptr ? n : std::max({n, capacity_ + capacity_ / 2, kMinCapacity});
  RowBuffer fresh = AllocateRows(new_capacity * stride_ * sizeof(float), arena);
  const size_t used = size() * static_cast<size_t>(stride_);
  if (used > 0) std::memcpy(fresh.data, data_, used * sizeof(float));
  owner_ = std::move(fresh.owner);
  data_ = static_cast<float*>(fresh.data);
  capacity_ = new_capacity;
  ids_.reserve(new_capacity);
  norms_.reserve(new_capacity);
}

void VectorRows::Relocate(const std::shared_ptr<RowArena>& arena) {
  if (empty() || arena == nullptr) return;
  void* piece = arena->Take(RelocateBytes());
  if (piece == nullptr) return;
  std::memcpy(piece, data_, size() * stride_ * sizeof(float));
  owner_ = arena;
  data_ = static_cast<float*>(piece);
  capacity_ = size();
  // Laid out for good: no slack in the per-row arrays either (a loaded index then holds
  // what the built one did).
  ids_.shrink_to_fit();
  norms_.shrink_to_fit();
}

size_t VectorRows::Append(DatapointId id, const float* vector) {
  if (size() == capacity_) Reserve(size() + 1);
  const size_t row = size();
  std::memcpy(data_ + row * stride_, vector, dimension_ * sizeof(float));
  ids_.push_back(id);
  norms_.push_back(SquaredNorm(vector, dimension_));
  return row;
}

void VectorRows::Set(size_t row, const float* vector) {
  std::memcpy(data_ + row * stride_, vector, dimension_ * sizeof(float));
  norms_[row] = SquaredNorm(vector, dimension_);
}

std::optional<DatapointId> VectorRows::SwapRemove(size_t row) {
  const size_t last = size() - 1;
  std::optional<DatapointId> moved;
  if (row != last) {
    std::memcpy(data_ + row * stride_, data_ + last * stride_,
                dimension_ * sizeof(float));
    ids_[row] = ids_[last];
    norms_[row] = norms_[last];
    moved = ids_[row];
  }
  std::memset(data_ + last * stride_, 0, dimension_ * sizeof(float));
  ids_.pop_back();
  norms_.pop_back();
  return moved;
}

void VectorRows::Clear() {
  owner_.reset();
  data_ = nullptr;
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

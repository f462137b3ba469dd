#include "index/scalar_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

namespace nestor {

ScalarQuantizer::ScalarQuantizer(std::vector<float> offsets, std::vector<float> scales)
    : offsets_(std::move(offsets)), scales_(std::move(scales)) {}

ScalarQuantizer ScalarQuantizer::Train(const float* x, size_t n, int dimension, size_t ldx) {
  std::vector<float> lo(dimension, std::numeric_limits<float>::infinity());
  std::vector<float> hi(dimension, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < n; ++i) {
    const float* row = x + i * ldx;
    for (int j = 0; j < dimension; ++j) {
      lo[j] = std::min(lo[j], row[j]);
      hi[j] = std::max(hi[j], row[j]);
    }
  }
  std::vector<float> scales(dimension);
  for (int j = 0; j < dimension; ++j) {
    const float range = hi[j] - lo[j];
    scales[j] = range > 0.0f && std::isfinite(range) ? range / 255.0f : 1.0f;
    if (!std::isfinite(lo[j])) lo[j] = 0.0f;
  }
  return ScalarQuantizer(std::move(lo), std::move(scales));
}

void ScalarQuantizer::Encode(const float* x, uint8_t* code) const {
  const int d = dimension();
  for (int j = 0; j < d; ++j) {
    const float c = std::nearbyint((x[j] - offsets_[j]) / scales_[j]);
    code[j] = static_cast<uint8_t>(std::clamp(c, 0.0f, 255.0f));
  }
  std::memset(code + d, 0, code_stride() - d);
}

CodeRows::CodeRows(CodeRows&& other) noexcept
    : stride_(other.stride_),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)),
      owner_(std::move(other.owner_)),
      data_(std::exchange(other.data_, nullptr)) {}

CodeRows& CodeRows::operator=(CodeRows&& other) noexcept {
  stride_ = other.stride_;
  size_ = std::exchange(other.size_, 0);
  capacity_ = std::exchange(other.capacity_, 0);
  owner_ = std::move(other.owner_);
  data_ = std::exchange(other.data_, nullptr);
  return *this;
}

void CodeRows::Reserve(size_t n, const std::shared_ptr<RowArena>& arena) {
  if (n <= capacity_ || stride_ == 0) return;
  RowBuffer fresh = AllocateRows(n * stride_, arena);
  if (size_ > 0) std::memcpy(fresh.data, data_, size_ * stride_);
  owner_ = std::move(fresh.owner);
  data_ = static_cast<uint8_t*>(fresh.data);
  capacity_ = n;
}

void CodeRows::Relocate(const std::shared_ptr<RowArena>& arena) {
  if (size_ == 0 || stride_ == 0 || arena == nullptr) return;
  void* piece = arena->Take(RelocateBytes());
  if (piece == nullptr) return;
  std::memcpy(piece, data_, size_ * stride_);
  owner_ = arena;
  data_ = static_cast<uint8_t*>(piece);
  capacity_ = size_;
}

uint8_t* CodeRows::Append() {
  if (size_ == capacity_) Reserve(std::max<size_t>(16, capacity_ * 2));
  return mutable_row(size_++);
}

void CodeRows::SwapRemove(size_t row) {
  const size_t last = size_ - 1;
  if (row != last) std::memcpy(mutable_row(row), this->row(last), stride_);
  --size_;
}

}  // namespace nestor

// int8 scalar quantization of float vectors and the aligned storage of the codes.
#ifndef NESTOR_INDEX_SCALAR_QUANTIZER_H_
#define NESTOR_INDEX_SCALAR_QUANTIZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "index/row_memory.h"

namespace nestor {

// Per-dimension affine quantizer: coordinate j is coded as
//   c_j = clamp(round((x_j - offset_j) / scale_j), 0, 255)
// with offset_j / scale_j taken from the minimum / maximum of dimension j over a training
// sample (scale = (max - min) / 255; a constant dimension gets scale 1, code 0). Values
// outside the trained range (later upserts) are clamped. Decoding is
// x_j ~ offset_j + scale_j * c_j, so x.q ~ sum_j c_j (scale_j q_j) + sum_j offset_j q_j,
// which the partition scan evaluates with integer kernels (index/kernels/simd.h).
// (FAISS ScalarQuantizer QT_8bit is the same scheme.)
//
// Thread safety: const methods may be called concurrently.
class ScalarQuantizer {
 public:
  ScalarQuantizer() = default;
  // From stored parameters (each `dimension` floats; scales > 0).
  ScalarQuantizer(std::vector<float> offsets, std::vector<float> scales);

  // Trains on `n` >= 1 rows of `x` with `dimension` coordinates, `ldx` floats apart.
  static ScalarQuantizer Train(const float* x, size_t n, int dimension, size_t ldx);

  bool trained() const { return !offsets_.empty(); }
  int dimension() const { return static_cast<int>(offsets_.size()); }
  // Bytes per code row: dimension rounded up to a multiple of 64 (zero padding).
  int code_stride() const { return (dimension() + 63) / 64 * 64; }
  const std::vector<float>& offsets() const { return offsets_; }
  const std::vector<float>& scales() const { return scales_; }

  // Writes code_stride() bytes for `x` (dimension floats) into `code`, padding zero.
  void Encode(const float* x, uint8_t* code) const;

 private:
  std::vector<float> offsets_;
  std::vector<float> scales_;
};

// Code rows of `stride` bytes (a multiple of 64) in one 64-byte-aligned buffer
// (index/row_memory.h) that grows geometrically; row r mirrors row r of the partition's VectorRows (same append and
// swap-remove order).
//
// Thread safety: not thread-safe; the owning index guards it with its mutex.
class CodeRows {
 public:
  explicit CodeRows(int stride = 0) : stride_(stride) {}
  CodeRows(CodeRows&& other) noexcept;
  CodeRows& operator=(CodeRows&& other) noexcept;

  int stride() const { return stride_; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  const uint8_t* row(size_t i) const { return data_ + i * stride_; }
  uint8_t* mutable_row(size_t i) { return data_ + i * stride_; }

  // Makes room for `n` rows in total, in `arena` when it is given and has room.
  void Reserve(size_t n, const std::shared_ptr<RowArena>& arena = nullptr);
  // Bytes Reserve(n) takes from an arena.
  size_t ReserveBytes(size_t n) const { return RowArenaBytes(n * stride_); }
  // Moves the rows into `arena` (exactly size() rows); see VectorRows::Relocate.
  void Relocate(const std::shared_ptr<RowArena>& arena);
  // Bytes Relocate takes from an arena.
  size_t RelocateBytes() const { return RowArenaBytes(size_ * stride_); }
  // Appends an uninitialised row and returns it.
  uint8_t* Append();
  // Moves the last row into `row` and drops the last row.
  void SwapRemove(size_t row);
  size_t memory_bytes() const { return capacity_ * stride_; }

 private:
  int stride_;
  size_t size_ = 0;
  size_t capacity_ = 0;
  std::shared_ptr<void> owner_;  // keeps data_ alive
  uint8_t* data_ = nullptr;
};

}  // namespace nestor

#endif  // NESTOR_INDEX_SCALAR_QUANTIZER_H_

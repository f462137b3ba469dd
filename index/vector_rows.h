// Contiguous, aligned storage of float rows with their ids and squared norms.
#ifndef NESTOR_INDEX_VECTOR_ROWS_H_
#define NESTOR_INDEX_VECTOR_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "index/index.h"
#include "index/row_memory.h"

namespace nestor {

// Rows of `dimension` floats stored `stride` floats apart (stride >= dimension) in one
// 64-byte-aligned buffer (index/row_memory.h) whose capacity grows geometrically, with
// each row's id and full-dimension squared norm alongside. Padding floats (stride -
// dimension) are zero.
// Row order is insertion order except that removal moves the last row into the hole.
//
// The buffer is a valid row-major matrix for BLAS with leading dimension `stride`.
//
// Thread safety: not thread-safe; the owning index guards it with its mutex.
class VectorRows {
 public:
  // Floats per row rounded up to a whole 64-byte cache line.
  static int PaddedStride(int dimension) { return (dimension + 15) / 16 * 16; }

  VectorRows(int dimension, int stride);
  // Moving leaves the source empty (no rows, no buffer).
  VectorRows(VectorRows&& other) noexcept;
  VectorRows& operator=(VectorRows&& other) noexcept;

  int dimension() const { return dimension_; }
  int stride() const { return stride_; }
  size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }

  const float* data() const { return data_; }
  const float* row(size_t i) const { return data_ + i * stride_; }
  DatapointId id(size_t i) const { return ids_[i]; }
  absl::Span<const DatapointId> ids() const { return ids_; }
  // Squared norm of row i over all `dimension` coordinates.
  float squared_norm(size_t i) const { return norms_[i]; }
  absl::Span<const float> squared_norms() const { return norms_; }

  // Makes room for `n` rows in total, in `arena` when it is given and has room (see
  // AllocateRows).
  void Reserve(size_t n, const std::shared_ptr<RowArena>& arena = nullptr);
  // Bytes Reserve(n) takes from an arena.
  size_t ReserveBytes(size_t n) const { return RowArenaBytes(n * stride_ * sizeof(float)); }
  // Moves the rows into `arena` (a buffer of exactly size() rows, shared with whatever
  // else the arena holds); later growth leaves the arena again. No-op when empty or when
  // the arena is full.
  void Relocate(const std::shared_ptr<RowArena>& arena);
  // Bytes Relocate takes from an arena.
  size_t RelocateBytes() const { return RowArenaBytes(size() * stride_ * sizeof(float)); }
  // Appends `vector` (dimension floats) with `id`; returns its row.
  size_t Append(DatapointId id, const float* vector);
  // Overwrites the vector of `row` (id unchanged).
  void Set(size_t row, const float* vector);
  // Removes `row` by moving the last row into it. Returns the id of the moved row, or
  // nullopt when `row` was the last one.
  std::optional<DatapointId> SwapRemove(size_t row);
  // Removes all rows and frees the buffer.
  void Clear();

  // Bytes held: vector buffer (capacity), ids and norms.
  size_t memory_bytes() const;

 private:
  int dimension_;
  int stride_;
  size_t capacity_ = 0;
  std::shared_ptr<void> owner_;  // keeps data_ alive
  float* data_ = nullptr;
  std::vector<DatapointId> ids_;
  std::vector<float> norms_;
};

}  // namespace nestor

#endif  // NESTOR_INDEX_VECTOR_ROWS_H_

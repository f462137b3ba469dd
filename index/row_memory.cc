#include "index/row_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace nestor {

std::shared_ptr<RowArena> RowArena::Create(size_t bytes) {
  const size_t capacity = (std::max<size_t>(bytes, 1) + kHugePageBytes - 1) /
                          kHugePageBytes * kHugePageBytes;
  // Map one huge page more than needed, then unmap the unaligned head and the tail.
  const size_t span = capacity + kHugePageBytes;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = aligned + capacity;
  if (start + span > end) munmap(reinterpret_cast<void*>(end), start + span - end);
  void* base = reinterpret_cast<void*>(aligned);
  // EINVAL where the kernel has no transparent huge pages: ordinary pages then.
  (void)madvise(base, capacity, MADV_HUGEPAGE);
  return std::shared_ptr<RowArena>(new RowArena(base, capacity));
}

RowArena::~RowArena() { munmap(base_, capacity_); }

void* RowArena::Take(size_t bytes) {
  const size_t rounded = RowArenaBytes(bytes);
  if (rounded > capacity_ - used_) return nullptr;
  void* piece = base_ + used_;
  used_ += rounded;
  return piece;
}

RowBuffer AllocateRows(size_t bytes, const std::shared_ptr<RowArena>& arena) {
  RowBuffer buffer;
  if (arena != nullptr) {
    if (void* piece = arena->Take(bytes)) {
      buffer.owner = arena;
      buffer.data = piece;
      return buffer;
    }
  }
  if (bytes >= kHugePageBytes) {
    std::shared_ptr<RowArena> own = RowArena::Create(bytes);
    if (own != nullptr) {
      buffer.data = own->Take(bytes);
      buffer.owner = std::move(own);
      return buffer;
    }
  }
  const size_t rounded = RowArenaBytes(std::max<size_t>(bytes, 1));
  void* heap = std::aligned_alloc(64, rounded);
  if (heap == nullptr) throw std::bad_alloc();
  std::memset(heap, 0, rounded);
  buffer.owner = std::shared_ptr<void>(heap, [](void* p) { std::free(p); });
  buffer.data = heap;
  return buffer;
}

}  // namespace nestor

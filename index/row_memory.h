// Memory for the rows an index scans: 64-byte aligned, and in 2 MiB transparent huge pages
// where the kernel grants them.
//
// A query's code scan and exact reorder read rows scattered over the whole index (60,000 x
// 784 floats is 188 MB). With 4 KiB pages nearly every row read also misses the TLB, and
// the page walk itself misses the cache once other work (a gRPC request, the next batch)
// has run in between. One 2 MiB page covers 512 times as much, so the page tables of an
// index of a few hundred MB stay cached. Linux backs a mapping with huge pages when it is
// 2 MiB aligned and advised MADV_HUGEPAGE (transparent_hugepage "madvise" or "always";
// with "never" the advice is ignored and the memory is ordinary pages: correct, only
// slower). See the kernel's Documentation/admin-guide/mm/transhuge.rst.
//
// A partition's rows are usually far smaller than 2 MiB, so an index lays all of them out
// in one RowArena (PartitionedIndex::Build and loading a snapshot do so) instead of giving
// each its own allocation.
#ifndef NESTOR_INDEX_ROW_MEMORY_H_
#define NESTOR_INDEX_ROW_MEMORY_H_

#include <cstddef>
#include <memory>

namespace nestor {

// Bytes from which a single row buffer gets a mapping (and huge pages) of its own.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// One anonymous mapping, 2 MiB aligned and advised MADV_HUGEPAGE, handed out front to back
// in 64-byte aligned pieces. The mapping is unmapped when the last shared_ptr to the arena
// goes (row buffers taken from it hold one).
//
// Thread safety: Take() is not thread-safe; the owning index calls it under its mutex.
class RowArena {
 public:
  // An arena of at least `bytes` (rounded up to 2 MiB); nullptr when the mapping fails
  // (callers fall back to ordinary allocations).
  static std::shared_ptr<RowArena> Create(size_t bytes);
  ~RowArena();
  RowArena(const RowArena&) = delete;
  RowArena& operator=(const RowArena&) = delete;

  // The next `bytes` (rounded up to 64) of zeroed memory, or nullptr when fewer are left.
  void* Take(size_t bytes);
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }

 private:
  RowArena(void* base, size_t capacity) : base_(static_cast<char*>(base)), capacity_(capacity) {}
  char* base_;
  size_t capacity_;
  size_t used_ = 0;
};

// A row buffer: `data` is 64-byte aligned and zeroed, and lives as long as `owner`.
struct RowBuffer {
  std::shared_ptr<void> owner;
  void* data = nullptr;
};

// `bytes` > 0 of zeroed, 64-byte aligned memory. From `arena` when it is given and has
// room; otherwise a mapping of its own (huge pages) when bytes >= kHugePageBytes, else the
// heap. Throws std::bad_alloc when memory is exhausted, like operator new.
RowBuffer AllocateRows(size_t bytes, const std::shared_ptr<RowArena>& arena = nullptr);

// Rounds `bytes` up to the 64-byte pieces RowArena::Take hands out.
inline size_t RowArenaBytes(size_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace nestor

#endif  // NESTOR_INDEX_ROW_MEMORY_H_

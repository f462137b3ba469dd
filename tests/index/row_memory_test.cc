#include "index/row_memory.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/scalar_quantizer.h"
#include "index/vector_rows.h"

namespace nestor {
namespace {

bool AllZero(const void* p, size_t bytes) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < bytes; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

// The VmFlags line of the /proc/self/smaps entry that starts at `address` ("" if none).
std::string VmFlagsOfMappingAt(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::ostringstream want;
  want << std::hex << reinterpret_cast<uintptr_t>(address) << "-";
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    if (line.rfind(want.str(), 0) == 0) inside = true;
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(RowArenaTest, HandsOutAlignedZeroedPiecesFrontToBackUntilFull) {
  std::shared_ptr<RowArena> arena = RowArena::Create(3 << 20);
  ASSERT_NE(arena, nullptr);
  EXPECT_EQ(arena->capacity(), size_t{4} << 20);  // rounded up to whole 2 MiB pages
  char* first = static_cast<char*>(arena->Take(100));
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % kHugePageBytes, 0u);
  EXPECT_TRUE(AllZero(first, 100));
  char* second = static_cast<char*>(arena->Take(64));
  EXPECT_EQ(second, first + 128);  // 100 rounded up to 64-byte pieces
  EXPECT_EQ(arena->used(), 192u);
  EXPECT_EQ(arena->Take(arena->capacity()), nullptr);  // more than is left
  EXPECT_NE(arena->Take(arena->capacity() - 192), nullptr);  // exactly what is left
  EXPECT_EQ(arena->Take(1), nullptr);
}

TEST(RowArenaTest, MappingIsAdvisedForHugePages) {
  std::shared_ptr<RowArena> arena = RowArena::Create(kHugePageBytes);
  ASSERT_NE(arena, nullptr);
  void* base = arena->Take(64);
  std::memset(base, 1, 64);
  const std::string flags = VmFlagsOfMappingAt(base);
  ASSERT_FALSE(flags.empty()) << "no /proc/self/smaps entry starts at the arena";
  // "hg" is VM_HUGEPAGE, set by madvise(MADV_HUGEPAGE) (proc(5)). Kernels built without
  // transparent huge pages reject the advice; there is nothing to check then.
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!thp) GTEST_SKIP() << "kernel without transparent huge pages";
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
}

TEST(AllocateRowsTest, SmallFromTheHeapLargeFromAMappingOfItsOwnArenaWhenItFits) {
  RowBuffer small = AllocateRows(1000);
  ASSERT_NE(small.data, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data) % 64, 0u);
  EXPECT_TRUE(AllZero(small.data, 1000));

  RowBuffer large = AllocateRows(kHugePageBytes + 1);
  ASSERT_NE(large.data, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large.data) % kHugePageBytes, 0u);
  EXPECT_TRUE(AllZero(large.data, kHugePageBytes + 1));

  std::shared_ptr<RowArena> arena = RowArena::Create(kHugePageBytes);
  RowBuffer in_arena = AllocateRows(4096, arena);
  EXPECT_EQ(in_arena.owner, arena);
  EXPECT_EQ(arena->used(), 4096u);
  RowBuffer too_big = AllocateRows(kHugePageBytes, arena);  // 4096 bytes already taken
  EXPECT_NE(too_big.owner, arena);
  EXPECT_EQ(arena->used(), 4096u);
}

TEST(RelocateTest, VectorRowsKeepTheirRowsAndLeaveTheArenaWhenTheyGrow) {
  constexpr int kDim = 5;
  VectorRows rows(kDim, VectorRows::PaddedStride(kDim));
  for (int i = 0; i < 30; ++i) {
    const float v[kDim] = {float(i), 1, 2, 3, -float(i)};
    rows.Append(i, v);
  }
  std::weak_ptr<RowArena> watch;
  {
    std::shared_ptr<RowArena> arena = RowArena::Create(rows.RelocateBytes());
    watch = arena;
    rows.Relocate(arena);
    EXPECT_EQ(arena->used(), rows.RelocateBytes());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rows.data()) % kHugePageBytes, 0u);  // first piece
  }
  EXPECT_FALSE(watch.expired());  // the rows keep the arena mapped
  ASSERT_EQ(rows.size(), 30u);
  for (size_t r = 0; r < rows.size(); ++r) {
    EXPECT_EQ(rows.id(r), static_cast<DatapointId>(r));
    EXPECT_EQ(rows.row(r)[0], float(r));
    EXPECT_EQ(rows.row(r)[4], -float(r));
    EXPECT_EQ(rows.row(r)[5], 0.0f);  // padding
  }
  const float extra[kDim] = {7, 7, 7, 7, 7};
  rows.Append(99, extra);  // grows out of the arena
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(rows.row(30)[2], 7.0f);
  EXPECT_EQ(rows.row(29)[0], 29.0f);
  rows.SwapRemove(0);
  EXPECT_EQ(rows.id(0), 99);
}

TEST(RelocateTest, CodeRowsKeepTheirBytes) {
  CodeRows codes(64);
  for (int i = 0; i < 10; ++i) std::memset(codes.Append(), i + 1, 64);
  std::shared_ptr<RowArena> arena = RowArena::Create(codes.RelocateBytes());
  const uint8_t* before = codes.data();
  codes.Relocate(arena);
  EXPECT_NE(codes.data(), before);
  EXPECT_EQ(arena->used(), 640u);
  for (size_t r = 0; r < codes.size(); ++r) {
    EXPECT_EQ(codes.row(r)[0], r + 1);
    EXPECT_EQ(codes.row(r)[63], r + 1);
  }
  std::memset(codes.Append(), 42, 64);
  EXPECT_EQ(codes.row(10)[5], 42);
  EXPECT_EQ(codes.row(9)[5], 10);
}

}  // namespace
}  // namespace nestor

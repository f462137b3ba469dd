#include "index/vector_rows.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nestor {
namespace {

using ::testing::ElementsAre;

TEST(VectorRowsTest, RowsAreCacheLineAlignedAndPaddedWithZeros) {
  EXPECT_EQ(VectorRows::PaddedStride(1), 16);
  EXPECT_EQ(VectorRows::PaddedStride(16), 16);
  EXPECT_EQ(VectorRows::PaddedStride(17), 32);
  EXPECT_EQ(VectorRows::PaddedStride(784), 784);
  VectorRows rows(3, VectorRows::PaddedStride(3));
  for (int i = 0; i < 40; ++i) {  // several geometric growths
    const float v[3] = {float(i), float(i) + 0.5f, -1};
    EXPECT_EQ(rows.Append(100 + i, v), static_cast<size_t>(i));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rows.row(r)) % 64, 0u);
    EXPECT_EQ(rows.row(r)[0], float(r));
    EXPECT_EQ(rows.row(r)[3], 0.0f);  // padding
    EXPECT_EQ(rows.id(r), 100 + r);
    EXPECT_FLOAT_EQ(rows.squared_norm(r), r * r + (r + 0.5f) * (r + 0.5f) + 1);
  }
  EXPECT_GE(rows.memory_bytes(), 40u * (16 * sizeof(float) + 8 + 4));
}

TEST(VectorRowsTest, SetAndSwapRemove) {
  VectorRows rows(2, 2);
  const float a[2] = {1, 2}, b[2] = {3, 4}, c[2] = {5, 6}, z[2] = {0, 3};
  rows.Append(1, a);
  rows.Append(2, b);
  rows.Append(3, c);
  rows.Set(1, z);
  EXPECT_EQ(rows.squared_norm(1), 9.0f);
  // Removing row 0 moves the last row (id 3) into it.
  EXPECT_EQ(rows.SwapRemove(0), std::optional<DatapointId>(3));
  EXPECT_THAT(rows.ids(), ElementsAre(3, 2));
  EXPECT_EQ(rows.row(0)[1], 6.0f);
  EXPECT_EQ(rows.squared_norm(0), 61.0f);
  // Removing the last row moves nothing.
  EXPECT_EQ(rows.SwapRemove(1), std::nullopt);
  EXPECT_THAT(rows.ids(), ElementsAre(3));
  VectorRows moved = std::move(rows);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_EQ(rows.size(), 0u);  // NOLINT(bugprone-use-after-move): documented as empty
}

}  // namespace
}  // namespace nestor

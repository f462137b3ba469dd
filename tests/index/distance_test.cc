#include "index/distance.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/index/test_util.h"

namespace nestor {
namespace {

TEST(DistanceTest, HandComputedValues) {
  const float a[] = {1, 2, 3};
  const float b[] = {4, -5, 6};
  EXPECT_FLOAT_EQ(Dot(a, b, 3), 4 - 10 + 18);
  EXPECT_FLOAT_EQ(L2Sqr(a, b, 3), 9 + 49 + 9);
  EXPECT_FLOAT_EQ(SquaredNorm(a, 3), 14);
  EXPECT_FLOAT_EQ(Dot(a, b, 2), -6);      // prefix
  EXPECT_FLOAT_EQ(L2Sqr(a, b, 1), 9);     // prefix
  EXPECT_FLOAT_EQ(Dot(a, b, 0), 0);       // empty prefix
}

TEST(DistanceTest, MatchesDoublePrecisionForManyLengths) {
  // Lengths around the 16-lane unrolling, including tails.
  for (int d : {1, 7, 15, 16, 17, 31, 32, 33, 100, 784}) {
    const std::vector<float> v = testing::RandomVectors(2, d, 40 + d);
    const float* a = v.data();
    const float* b = v.data() + d;
    double dot = 0, l2 = 0;
    for (int j = 0; j < d; ++j) {
      dot += double{a[j]} * b[j];
      l2 += (double{a[j]} - b[j]) * (double{a[j]} - b[j]);
    }
    EXPECT_NEAR(Dot(a, b, d), dot, 1e-4 * (1 + d)) << "d=" << d;
    EXPECT_NEAR(L2Sqr(a, b, d), l2, 1e-4 * (1 + d)) << "d=" << d;
  }
}

}  // namespace
}  // namespace nestor

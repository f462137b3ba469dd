#include "index/top_k.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nestor {
namespace {

using ::testing::ElementsAre;

TEST(TopKTest, KeepsSmallestKeysNearestFirst) {
  TopK top(3, 10);
  for (float key : {5.0f, 1.0f, 4.0f, 2.0f, 3.0f}) top.Push(key, static_cast<DatapointId>(key * 10));
  EXPECT_EQ(top.threshold(), 3.0f);
  EXPECT_THAT(top.Finish(false),
              ElementsAre(Neighbor{10, 1.0f}, Neighbor{20, 2.0f}, Neighbor{30, 3.0f}));
}

TEST(TopKTest, TiesGoToSmallerIdWhateverTheOrder) {
  TopK top(2, 10);
  top.Push(1.0f, 9);
  top.Push(1.0f, 7);
  top.Push(1.0f, 8);
  top.Push(1.0f, 3);
  EXPECT_THAT(top.Finish(false), ElementsAre(Neighbor{3, 1.0f}, Neighbor{7, 1.0f}));
}

TEST(TopKTest, NegateTurnsKeysBackIntoSimilarities) {
  TopK top(5, 2);
  top.Push(-0.9f, 1);
  top.Push(-0.5f, 2);
  EXPECT_THAT(top.Finish(true), ElementsAre(Neighbor{1, 0.9f}, Neighbor{2, 0.5f}));
}

TEST(TopKTest, NaNNeverBeatsANumber) {
  TopK top(1, 2);
  top.Push(std::nanf(""), 1);
  top.Push(7.0f, 2);
  EXPECT_THAT(top.Finish(false), ElementsAre(Neighbor{2, 7.0f}));
}

}  // namespace
}  // namespace nestor

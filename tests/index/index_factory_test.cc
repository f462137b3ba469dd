#include "index/index_factory.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/partitioned_index.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

IndexOptions Valid() {
  IndexOptions options;
  options.dimension = 8;
  return options;
}

TEST(IndexFactoryTest, ZeroPartitionsMakesExactIndex) {
  auto index = CreateIndex(Valid());
  ASSERT_THAT(index, IsOk());
  EXPECT_EQ((*index)->stats().kind, "exact");
  EXPECT_EQ((*index)->dimension(), 8);
  EXPECT_EQ((*index)->metric(), Metric::kL2);
}

TEST(IndexFactoryTest, PositivePartitionsMakesPartitionedIndexWithDefaults) {
  IndexOptions options = Valid();
  options.num_partitions = 64;
  options.metric = Metric::kCosine;
  options.training_iterations = 0;
  options.max_training_points_per_partition = 0;
  auto index = CreateIndex(options);
  ASSERT_THAT(index, IsOk());
  const IndexStats stats = (*index)->stats();
  EXPECT_EQ(stats.kind, "partitioned");
  EXPECT_FALSE(stats.built);
  EXPECT_EQ(stats.num_partitions, 64);
  EXPECT_EQ((*index)->options().training_iterations, 20);
  EXPECT_EQ((*index)->options().max_training_points_per_partition, 256);
  EXPECT_EQ(static_cast<PartitionedIndex*>(index->get())->default_partitions_to_search(), 4);
}

TEST(IndexFactoryTest, DefaultPartitionsToSearchIsClampedToNumPartitions) {
  IndexOptions options = Valid();
  options.num_partitions = 3;
  options.default_partitions_to_search = 10;
  auto index = CreateIndex(options);
  ASSERT_THAT(index, IsOk());
  EXPECT_EQ((*index)->options().default_partitions_to_search, 3);
  options.default_partitions_to_search = 0;  // max(1, 3/16) = 1
  auto other = CreateIndex(options);
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(static_cast<PartitionedIndex*>(other->get())->default_partitions_to_search(), 1);
}

TEST(IndexFactoryTest, BadOptionsAreInvalidArgumentNamingTheField) {
  IndexOptions o = Valid();
  o.dimension = 0;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "dimension must be in [1, 65536], got 0"));
  o.dimension = 65537;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "got 65537"));
  o = Valid();
  o.metric = static_cast<Metric>(0);
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "metric"));
  o.metric = static_cast<Metric>(4);
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "got 4"));
  o = Valid();
  o.num_partitions = -1;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "num_partitions"));
  o.num_partitions = 1000001;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "got 1000001"));
  o = Valid();
  o.default_partitions_to_search = -2;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "default_partitions_to_search"));
  o = Valid();
  o.training_iterations = -1;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "training_iterations must be >= 1"));
  o = Valid();
  o.max_training_points_per_partition = -5;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "max_training_points_per_partition"));
}

TEST(IndexFactoryTest, ExtremeButValidOptionsAreAccepted) {
  IndexOptions o = Valid();
  o.dimension = 1;
  EXPECT_THAT(CreateIndex(o), IsOk());
  o.dimension = 65536;
  o.num_partitions = 1000000;
  EXPECT_THAT(CreateIndex(o), IsOk());
}

}  // namespace
}  // namespace nestor

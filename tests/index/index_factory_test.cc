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
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "training_iterations must be in 1..1000"));
  o.training_iterations = kMaxTrainingIterations + 1;  // would lock the index for days
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "training_iterations must be in 1..1000 (0 = "
                                                 "default 20), got 1001"));
  o.training_iterations = kMaxTrainingIterations;
  EXPECT_THAT(CreateIndex(o), IsOk());
  o = Valid();
  o.max_training_points_per_partition = -5;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "max_training_points_per_partition"));
}

// Options only a partitioned index can use have no effect on an exact one: CreateIndex
// refuses them, naming the option, the value given and the value expected.
TEST(IndexFactoryTest, ExactIndexRefusesPartitionedOnlyOptionsNamingGivenAndExpected) {
  IndexOptions o = Valid();
  o.routing_dim = 4;
  EXPECT_THAT(CreateIndex(o),
              StatusIs(kInvalid,
                       "routing_dim applies to partitioned indexes only (num_partitions > 0); "
                       "the exact index got routing_dim=4, expected 0 (= dimension 8)"));
  o = Valid();
  o.matryoshka_dims = {2, 4};
  EXPECT_THAT(CreateIndex(o),
              StatusIs(kInvalid,
                       "matryoshka_dims applies to partitioned indexes only (num_partitions > 0); "
                       "the exact index got matryoshka_dims={2, 4}, expected {} (the exact index "
                       "allows every prefix_dim in [1, 8])"));
  o.matryoshka_dims = {8};  // only the dimension: still a restriction of the prefixes
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "got matryoshka_dims={8}, expected {}"));
  o = Valid();
  o.default_partitions_to_search = 3;
  EXPECT_THAT(CreateIndex(o),
              StatusIs(kInvalid, "the exact index got default_partitions_to_search=3, expected 0"));
  o = Valid();
  o.reorder_k = 40;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "the exact index got reorder_k=40, expected 0"));
  o = Valid();
  o.pca_rotation = true;
  EXPECT_THAT(CreateIndex(o),
              StatusIs(kInvalid, "the exact index got pca_rotation=true, expected false"));
  // Malformed values keep their own message, as for a partitioned index.
  o = Valid();
  o.routing_dim = 9;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "routing_dim 9 is not in [1, 8]"));
  o = Valid();
  o.reorder_k = -1;
  EXPECT_THAT(CreateIndex(o), StatusIs(kInvalid, "reorder_k must be in [0, 1000000]"));
}

// A partitioned index of float codes scores its rows exactly: a default reorder_k would
// size a re-scoring it never does, so it is refused; int8 codes take it.
TEST(IndexFactoryTest, FloatCodesRefuseADefaultReorderK) {
  IndexOptions o = Valid();
  o.num_partitions = 4;
  o.code_type = CodeType::kFloat;
  o.reorder_k = 40;
  EXPECT_THAT(CreateIndex(o),
              StatusIs(kInvalid,
                       "reorder_k applies to int8 codes only (float codes are scored exactly); "
                       "the float index got reorder_k=40, expected 0"));
  o.reorder_k = 0;
  EXPECT_THAT(CreateIndex(o), IsOk());
  o.code_type = CodeType::kInt8;
  o.reorder_k = 40;
  auto int8 = CreateIndex(o);
  ASSERT_THAT(int8, IsOk());
  EXPECT_EQ((*int8)->options().reorder_k, 40);
}

// The no-op values are accepted, and so are the options an exact index ignores because
// their defaults are not no-op values (code_type, the k-means settings). The same
// partitioned-only values are fine with partitions.
TEST(IndexFactoryTest, ExactIndexAcceptsNoOpValuesAndIgnoredOptions) {
  IndexOptions o = Valid();
  o.routing_dim = 8;  // what 0 stands for; GetIndex reports it so
  o.code_type = CodeType::kFloat;
  o.training_iterations = 5;
  o.seed = 99;
  o.max_training_points_per_partition = 10;
  auto exact = CreateIndex(o);
  ASSERT_THAT(exact, IsOk());
  EXPECT_EQ((*exact)->stats().kind, "exact");
  EXPECT_EQ((*exact)->stats().code_type, "float");
  EXPECT_EQ((*exact)->options().routing_dim, 8);
  o.code_type = CodeType::kInt8;
  o.routing_dim = 0;
  exact = CreateIndex(o);
  ASSERT_THAT(exact, IsOk());
  EXPECT_EQ((*exact)->stats().code_type, "float");
  EXPECT_EQ((*exact)->options().routing_dim, 8);

  o = Valid();
  o.num_partitions = 4;
  o.routing_dim = 4;
  o.matryoshka_dims = {2, 4};
  o.default_partitions_to_search = 3;
  o.reorder_k = 40;
  o.pca_rotation = true;
  auto partitioned = CreateIndex(o);
  ASSERT_THAT(partitioned, IsOk());
  EXPECT_EQ((*partitioned)->options().routing_dim, 4);
  EXPECT_EQ((*partitioned)->options().reorder_k, 40);
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

// Recording of per-stage neighbour ranks (tuning/trace.h).
#include "tuning/trace.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace nestor::tuning {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Six vectors in three partitions of two: partition_of = {0, 0, 1, 1, 2, 2}.
const std::vector<uint32_t> kPartitionOf = {0, 0, 1, 1, 2, 2};

TraceOptions SmallOptions(int max_partitions = 0) {
  TraceOptions options;
  options.k = 2;
  options.num_partitions = 3;
  options.dimension = 4;
  options.max_partitions = max_partitions;
  return options;
}

TEST(TraceTest, RecordsPartitionRanksCompetitorCountsAndCodeRanks) {
  absl::StatusOr<TraceBuilder> builder = TraceBuilder::Create(SmallOptions(), kPartitionOf);
  ASSERT_THAT(builder, IsOk());
  // Centroid ranking: partition 1, then 2, then 0. Keys (smaller is nearer).
  const std::vector<uint32_t> order = {1, 2, 0};
  const std::vector<float> keys = {0.5f, 3.0f, 2.0f, 1.0f, 0.1f, 9.0f};
  // True neighbours: vector 3 (partition 1, rank 0) and vector 0 (partition 0, rank 2).
  ASSERT_THAT(builder->AddQuery(order, keys, {3, 0}), IsOk());
  const Trace trace = builder->Finish();
  ASSERT_THAT(ValidateTrace(trace), IsOk());
  ASSERT_EQ(trace.queries.size(), 1u);
  const QueryTrace& q = trace.queries[0];
  EXPECT_THAT(q.partition_sizes_in_rank_order, ElementsAre(2, 2, 2));
  EXPECT_THAT(q.codes_before_rank, ElementsAre(0, 2, 4, 6));

  const NeighborTrace& n3 = q.neighbors[0];
  EXPECT_EQ(n3.vector_index, 3u);
  EXPECT_EQ(n3.partition_rank, 0);
  // Beaten by: rank 0 {none: 2.0 > 1.0}, rank 1 {vector 4: 0.1}, rank 2 {vector 0: 0.5}.
  EXPECT_THAT(n3.better_before_rank, ElementsAre(0, 0, 1, 2));
  EXPECT_EQ(n3.better_by_partition_rank(1), 1u);
  EXPECT_EQ(n3.CodeRank(1), 0u);
  EXPECT_EQ(n3.CodeRank(3), 2u);

  const NeighborTrace& n0 = q.neighbors[1];
  EXPECT_EQ(n0.partition_rank, 2);
  // Key 0.5 is beaten by vector 4 (0.1) only.
  EXPECT_THAT(n0.better_before_rank, ElementsAre(0, 0, 1, 1));
  EXPECT_FALSE(n0.reachable_at(2));
  EXPECT_EQ(n0.CodeRank(2), kUnreachableCodeRank);
  EXPECT_EQ(n0.CodeRank(3), 1u);

  EXPECT_DOUBLE_EQ(trace.MeanCodesScanned(2), 4.0);
  EXPECT_DOUBLE_EQ(trace.MeanCodesScanned(100), 6.0);
}

TEST(TraceTest, EqualKeysAreBrokenBySmallerVectorIndex) {
  absl::StatusOr<TraceBuilder> builder = TraceBuilder::Create(SmallOptions(), kPartitionOf);
  ASSERT_THAT(builder, IsOk());
  const std::vector<float> keys(6, 1.0f);
  ASSERT_THAT(builder->AddQuery({0, 1, 2}, keys, {2, 5}), IsOk());
  const Trace trace = builder->Finish();
  // Vector 2 is beaten by 0 and 1 (rank 0); vector 5 by all five others.
  EXPECT_THAT(trace.queries[0].neighbors[0].better_before_rank, ElementsAre(0, 2, 2, 2));
  EXPECT_THAT(trace.queries[0].neighbors[1].better_before_rank, ElementsAre(0, 2, 4, 5));
}

TEST(TraceTest, NeighbourBeyondMaxPartitionsIsUnrankedAndItsKeysAreNotRead) {
  absl::StatusOr<TraceBuilder> builder =
      TraceBuilder::Create(SmallOptions(/*max_partitions=*/2), kPartitionOf);
  ASSERT_THAT(builder, IsOk());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Partition 0 is not among the first two ranked, so its NaN keys are never read.
  const std::vector<float> keys = {nan, nan, 2.0f, 1.0f, 0.1f, 9.0f};
  ASSERT_THAT(builder->AddQuery({1, 2}, keys, {3, 0}), IsOk());
  const Trace trace = builder->Finish();
  ASSERT_THAT(ValidateTrace(trace), IsOk());
  EXPECT_EQ(trace.max_partitions, 2);
  EXPECT_THAT(trace.queries[0].codes_before_rank, ElementsAre(0, 2, 4));
  EXPECT_THAT(trace.queries[0].neighbors[0].better_before_rank, ElementsAre(0, 0, 1));
  EXPECT_EQ(trace.queries[0].neighbors[1].partition_rank, kNotRanked);
  EXPECT_THAT(trace.queries[0].neighbors[1].better_before_rank, IsEmpty());
  EXPECT_EQ(trace.queries[0].neighbors[1].CodeRank(2), kUnreachableCodeRank);
}

TEST(TraceTest, RejectedQueryLeavesBuilderUsable) {
  absl::StatusOr<TraceBuilder> builder = TraceBuilder::Create(SmallOptions(), kPartitionOf);
  ASSERT_THAT(builder, IsOk());
  const std::vector<float> keys = {0.5f, 3.0f, 2.0f, 1.0f, 0.1f, 9.0f};
  std::vector<float> nan_keys = keys;
  nan_keys[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(builder->AddQuery({1, 2, 0}, nan_keys, {3, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "NaN"));
  EXPECT_THAT(builder->AddQuery({1, 1, 0}, keys, {3, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "appears twice"));
  EXPECT_THAT(builder->AddQuery({1, 2, 7}, keys, {3, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(builder->AddQuery({1, 2}, keys, {3, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "expected at least 3"));
  EXPECT_THAT(builder->AddQuery({1, 2, 0}, {1.0f}, {3, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, "expected 6 keys"));
  EXPECT_THAT(builder->AddQuery({1, 2, 0}, keys, {3}),
              StatusIs(absl::StatusCode::kInvalidArgument, "expected k = 2"));
  EXPECT_THAT(builder->AddQuery({1, 2, 0}, keys, {3, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, "appears twice"));
  EXPECT_THAT(builder->AddQuery({1, 2, 0}, keys, {3, 6}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(builder->num_queries(), 0u);
  // Scratch state was restored: the same query now records as in the first test.
  ASSERT_THAT(builder->AddQuery({1, 2, 0}, keys, {3, 0}), IsOk());
  const Trace trace = builder->Finish();
  EXPECT_THAT(trace.queries[0].neighbors[0].better_before_rank, ElementsAre(0, 0, 1, 2));
}

TEST(TraceTest, BadOptionsOrPartitionsAreInvalidArgument) {
  EXPECT_THAT(TraceBuilder::Create(SmallOptions(), {0, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, "partition_of[1]"));
  TraceOptions options = SmallOptions();
  options.k = 0;
  EXPECT_THAT(TraceBuilder::Create(options, kPartitionOf),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = SmallOptions(/*max_partitions=*/4);
  EXPECT_THAT(TraceBuilder::Create(options, kPartitionOf),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_partitions"));
  options = SmallOptions();
  options.shortlist_dim = 5;
  EXPECT_THAT(TraceBuilder::Create(options, kPartitionOf),
              StatusIs(absl::StatusCode::kInvalidArgument, "shortlist_dim"));
}

TEST(TraceTest, BuildTraceMatchesBuilderAndChecksSizes) {
  const std::vector<uint32_t> orders = {1, 2, 0, 0, 1, 2};
  const std::vector<float> keys = {0.5f, 3.0f, 2.0f, 1.0f, 0.1f, 9.0f,
                                   4.0f, 0.2f, 0.3f, 5.0f, 6.0f, 0.1f};
  const std::vector<uint32_t> neighbors = {3, 0, 1, 2};
  absl::StatusOr<Trace> trace = BuildTrace(SmallOptions(), kPartitionOf, orders, 3, keys,
                                           neighbors);
  ASSERT_THAT(trace, IsOk());
  ASSERT_EQ(trace->queries.size(), 2u);
  EXPECT_THAT(trace->queries[0].neighbors[0].better_before_rank, ElementsAre(0, 0, 1, 2));
  // Query 2: vector 1 (key 0.2, partition 0, rank 0) is beaten only by vector 5 (0.1,
  // rank 2); vector 2 (0.3, rank 1) by vectors 1 and 5.
  EXPECT_THAT(trace->queries[1].neighbors[0].better_before_rank, ElementsAre(0, 0, 0, 1));
  EXPECT_THAT(trace->queries[1].neighbors[1].better_before_rank, ElementsAre(0, 1, 1, 2));
  EXPECT_THAT(BuildTrace(SmallOptions(), kPartitionOf, orders, 3, keys, {3, 0, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BuildTrace(SmallOptions(), kPartitionOf, orders, 4, keys, neighbors),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BuildTrace(SmallOptions(), kPartitionOf, {1, 2, 0, 0, 0, 2}, 3, keys, neighbors),
              StatusIs(absl::StatusCode::kInvalidArgument, "query 1"));
}

TEST(TraceTest, ValidateTraceRejectsBrokenInvariants) {
  absl::StatusOr<Trace> trace =
      BuildTrace(SmallOptions(), kPartitionOf, {1, 2, 0}, 3,
                 {0.5f, 3.0f, 2.0f, 1.0f, 0.1f, 9.0f}, {3, 0});
  ASSERT_THAT(trace, IsOk());
  Trace broken = *trace;
  broken.queries[0].codes_before_rank[2] = 7;
  EXPECT_THAT(ValidateTrace(broken), StatusIs(absl::StatusCode::kInvalidArgument));
  broken = *trace;
  broken.queries[0].neighbors[0].better_before_rank[3] = 0;
  EXPECT_THAT(ValidateTrace(broken), StatusIs(absl::StatusCode::kInvalidArgument));
  broken = *trace;
  broken.queries[0].neighbors[0].better_before_rank[1] = 3;  // more than partition size 2
  broken.queries[0].neighbors[0].better_before_rank[2] = 3;
  broken.queries[0].neighbors[0].better_before_rank[3] = 3;
  EXPECT_THAT(ValidateTrace(broken), StatusIs(absl::StatusCode::kInvalidArgument));
  broken = *trace;
  broken.queries[0].neighbors.pop_back();
  EXPECT_THAT(ValidateTrace(broken), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace nestor::tuning

#include "index/partitioned_index.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::Ids;
using ::nestor::testing::IsOk;
using ::nestor::testing::MustCreate;
using ::nestor::testing::MustSearch;
using ::nestor::testing::PartitionedOptions;
using ::nestor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(PartitionedIndexTest, EmptyUnbuiltIndexReturnsEmptyLists) {
  auto index = MustCreate(PartitionedOptions(4, Metric::kL2, 8));
  auto results = MustSearch(*index, {1, 2, 3, 4}, SearchParams());
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_THAT(results[0], IsEmpty());
}

TEST(PartitionedIndexTest, UnbuiltNonEmptySearchIsFailedPrecondition) {
  auto index = MustCreate(PartitionedOptions(4, Metric::kL2, 8));
  ASSERT_THAT(index->Upsert({1, 2}, std::vector<float>(8, 0.5f)), IsOk());
  EXPECT_THAT(index->Search({1, 2, 3, 4}, SearchParams()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "index holds 2 vectors but is not built; call BuildIndex"));
}

TEST(PartitionedIndexTest, BuildWithTooFewVectorsIsFailedPreconditionAndChangesNothing) {
  auto index = MustCreate(PartitionedOptions(4, Metric::kL2, 8));
  ASSERT_THAT(index->Upsert(testing::SequentialIds(5), testing::RandomVectors(5, 4, 1)), IsOk());
  EXPECT_THAT(index->Build(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       "needs at least 8 vectors; the index holds 5"));
  EXPECT_EQ(index->size(), 5u);
  EXPECT_FALSE(index->stats().built);
  EXPECT_THAT(index->Search({1, 2, 3, 4}, SearchParams()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // An empty index cannot be built either.
  auto empty = MustCreate(PartitionedOptions(4, Metric::kL2, 1));
  EXPECT_THAT(empty->Build(), StatusIs(absl::StatusCode::kFailedPrecondition, "at least 1"));
}

// Seeded clustered data: 5,000 x 32 around 100 centres; 200 queries from the same law.
class PartitionedRecallTest : public ::testing::TestWithParam<Metric> {
 protected:
  static constexpr int kDim = 32;
  static constexpr size_t kRows = 5000;
  static constexpr size_t kQueries = 200;
  static constexpr int kPartitions = 64;

  void SetUp() override {
    const std::vector<float> all =
        testing::ClusteredVectors(kRows + kQueries, kDim, 100, 0.15f, 99);
    data_.assign(all.begin(), all.begin() + kRows * kDim);
    queries_.assign(all.begin() + kRows * kDim, all.end());
    ids_ = testing::SequentialIds(kRows, 1);
    exact_ = MustCreate(PartitionedOptions(kDim, GetParam(), 0));
    // Float codes (IVF-flat): full search must equal the oracle exactly, which int8 codes
    // only promise with reorder_k >= the vector count (see int8_index_test.cc).
    partitioned_ = MustCreate(PartitionedOptions(kDim, GetParam(), kPartitions, CodeType::kFloat));
    ASSERT_THAT(exact_->Upsert(ids_, data_), IsOk());
    ASSERT_THAT(partitioned_->Upsert(ids_, data_), IsOk());
    ASSERT_THAT(partitioned_->Build(), IsOk());
  }

  std::vector<float> data_, queries_;
  std::vector<DatapointId> ids_;
  std::unique_ptr<Index> exact_, partitioned_;
};

TEST_P(PartitionedRecallTest, RecallAtTenAgainstExactOracle) {
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = 8;
  const auto truth = MustSearch(*exact_, queries_, params);
  const auto approx = MustSearch(*partitioned_, queries_, params);
  const double recall = testing::Recall(approx, truth);
  EXPECT_GE(recall, 0.9) << MetricName(GetParam());
  // More partitions never hurt here.
  params.partitions_to_search = 16;
  EXPECT_GE(testing::Recall(MustSearch(*partitioned_, queries_, params), truth), recall);
}

TEST_P(PartitionedRecallTest, SearchingAllPartitionsEqualsExact) {
  for (int prefix : {0, 8}) {
    SearchParams params;
    params.k = 10;
    params.prefix_dim = prefix;
    params.partitions_to_search = kPartitions;
    params.num_threads = 2;
    const auto truth = MustSearch(*exact_, queries_, params);
    const auto got = MustSearch(*partitioned_, queries_, params);
    ASSERT_THAT(got, SizeIs(kQueries));
    EXPECT_EQ(testing::Recall(got, truth), 1.0) << "prefix " << prefix;
    for (size_t q = 0; q < kQueries; ++q) {
      ASSERT_THAT(got[q], SizeIs(10));
      EXPECT_EQ(Ids(got[q]), Ids(truth[q])) << "query " << q << " prefix " << prefix;
      for (size_t i = 0; i < 10; ++i) {
        EXPECT_NEAR(got[q][i].distance, truth[q][i].distance, 1e-4);
      }
    }
  }
}

// SearchParams.exact: with one partition searched and the smallest reorder_k, both code
// types return the exact top 10 of the oracle at the full dimension and at a prefix,
// batched and one query at a time (distances within float rounding of the double-
// precision oracle), and the knobs it ignores change nothing.
TEST_P(PartitionedRecallTest, ExactSearchEqualsOracleWhateverTheKnobs) {
  auto int8 = MustCreate(PartitionedOptions(kDim, GetParam(), kPartitions, CodeType::kInt8));
  ASSERT_THAT(int8->Upsert(ids_, data_), IsOk());
  ASSERT_THAT(int8->Build(), IsOk());
  for (const Index* index : {partitioned_.get(), int8.get()}) {
    for (int prefix : {0, 8}) {
      const int p = prefix > 0 ? prefix : kDim;
      const std::string what = absl::StrCat(index->stats().code_type, " prefix ", p);
      SearchParams params;
      params.k = 10;
      params.prefix_dim = prefix;
      params.partitions_to_search = 1;
      params.reorder_k = 10;
      params.exact = true;
      params.num_threads = 2;
      const auto got = MustSearch(*index, queries_, params);
      ASSERT_THAT(got, SizeIs(kQueries)) << what;
      for (size_t q = 0; q < kQueries; ++q) {
        const auto truth =
            testing::NaiveSearch(GetParam(), queries_.data() + q * kDim, data_, ids_, kDim, p, 10);
        ASSERT_THAT(got[q], SizeIs(10)) << what;
        for (size_t i = 0; i < 10; ++i) {
          EXPECT_EQ(got[q][i].id, truth[i].second) << what << " query " << q << " rank " << i;
          EXPECT_NEAR(got[q][i].distance, truth[i].first,
                      1e-4 * std::max(1.0, std::fabs(truth[i].first)))
              << what << " query " << q << " rank " << i;
        }
      }
      // One query at a time (kernels::DotRows instead of sgemm: the last bits of a
      // distance may differ; the partitions split over 3 threads and merged) and other
      // ignored knobs: the same neighbours.
      params.partitions_to_search = kPartitions;
      params.reorder_k = 0;
      params.num_threads = 3;
      const std::vector<float> one(queries_.begin(), queries_.begin() + kDim);
      const auto single = MustSearch(*index, one, params);
      ASSERT_THAT(single, SizeIs(1)) << what;
      EXPECT_EQ(Ids(single[0]), Ids(got[0])) << what;
      for (size_t i = 0; i < got[0].size() && i < single[0].size(); ++i) {
        EXPECT_NEAR(single[0][i].distance, got[0][i].distance,
                    1e-5 * std::max(1.0f, std::fabs(got[0][i].distance)))
            << what << " rank " << i;
      }
    }
  }
  // Approximate search with one partition misses some of them (so the check above is
  // not vacuous on this data).
  SearchParams approx;
  approx.k = 10;
  approx.partitions_to_search = 1;
  EXPECT_LT(testing::Recall(MustSearch(*partitioned_, queries_, approx),
                            MustSearch(*exact_, queries_, approx)),
            1.0);
}

TEST_P(PartitionedRecallTest, BuildIsDeterministicForASeed) {
  auto again = MustCreate(PartitionedOptions(kDim, GetParam(), kPartitions, CodeType::kFloat));
  ASSERT_THAT(again->Upsert(ids_, data_), IsOk());
  ASSERT_THAT(again->Build(), IsOk());
  SearchParams params;
  params.partitions_to_search = 4;
  EXPECT_EQ(MustSearch(*again, queries_, params), MustSearch(*partitioned_, queries_, params));
}

TEST_P(PartitionedRecallTest, StatsAfterBuild) {
  const IndexStats stats = partitioned_->stats();
  EXPECT_EQ(stats.kind, "partitioned");
  EXPECT_TRUE(stats.built);
  EXPECT_EQ(stats.vector_count, kRows);
  EXPECT_EQ(stats.num_partitions, kPartitions);
  EXPECT_GT(stats.build_seconds, 0.0);
  EXPECT_GE(stats.memory_bytes, kRows * (kDim * sizeof(float) + sizeof(DatapointId)) +
                                    kPartitions * kDim * sizeof(float));
}

TEST_P(PartitionedRecallTest, UpsertAndRemoveAfterBuildMatchExact) {
  // Replace 500 vectors with new random ones (moving them across partitions), add 500
  // new ids and remove 700; both indexes see the same operations.
  const std::vector<float> fresh = testing::ClusteredVectors(1000, kDim, 100, 0.15f, 5);
  std::vector<DatapointId> changed = testing::SequentialIds(500, 1);      // replaced
  std::vector<DatapointId> added = testing::SequentialIds(500, 100000);   // new
  std::vector<DatapointId> removed = testing::SequentialIds(700, 2000);   // removed
  for (Index* index : {exact_.get(), partitioned_.get()}) {
    ASSERT_THAT(index->Upsert(changed, std::vector<float>(fresh.begin(), fresh.begin() + 500 * kDim)),
                IsOk());
    ASSERT_THAT(index->Upsert(added, std::vector<float>(fresh.begin() + 500 * kDim, fresh.end())),
                IsOk());
    auto n = index->Remove(removed);
    ASSERT_THAT(n, IsOk());
    EXPECT_EQ(*n, 700u);
    EXPECT_EQ(index->size(), kRows + 500 - 700);
  }
  EXPECT_EQ(*partitioned_->GetVector(1), *exact_->GetVector(1));
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = kPartitions;
  const auto truth = MustSearch(*exact_, queries_, params);
  const auto got = MustSearch(*partitioned_, queries_, params);
  for (size_t q = 0; q < kQueries; ++q) EXPECT_EQ(Ids(got[q]), Ids(truth[q]));
  // Old vectors of replaced ids are never returned: querying with an old vector does not
  // find its id at distance/score of an exact match.
  for (DatapointId id : {DatapointId{1}, DatapointId{2}, DatapointId{3}}) {
    const std::vector<float> old(data_.begin() + (id - 1) * kDim, data_.begin() + id * kDim);
    auto r = MustSearch(*partitioned_, old, params);
    for (const Neighbor& n : r[0]) {
      if (n.id == id) {
        EXPECT_NEAR(n.distance,
                    testing::NaiveScore(GetParam(), old.data(), fresh.data() + (id - 1) * kDim, kDim),
                    1e-4);
      }
    }
  }
  // Removed ids are never returned.
  params.k = 100;
  for (const auto& list : MustSearch(*partitioned_, queries_, params)) {
    for (const Neighbor& n : list) EXPECT_FALSE(n.id >= 2000 && n.id < 2700) << n.id;
  }
  // Rebuilding from the new contents still agrees with the oracle.
  ASSERT_THAT(partitioned_->Build(), IsOk());
  params.k = 10;
  const auto rebuilt = MustSearch(*partitioned_, queries_, params);
  for (size_t q = 0; q < kQueries; ++q) EXPECT_EQ(Ids(rebuilt[q]), Ids(truth[q]));
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, PartitionedRecallTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine),
                         [](const auto& info) { return std::string(MetricName(info.param)); });

TEST(PartitionedIndexTest, SmallHandComputedAfterBuild) {
  // Two well separated groups, 2 partitions; each query is answered from its group and
  // k larger than the live count returns what exists.
  auto index = MustCreate(PartitionedOptions(2, Metric::kL2, 2));
  ASSERT_THAT(index->Upsert({1, 2, 3, 4}, {0, 0, 0, 1, 10, 10, 10, 11}), IsOk());
  ASSERT_THAT(index->Build(), IsOk());
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = 1;
  auto near_origin = MustSearch(*index, {0, 0.2f}, params);
  EXPECT_THAT(Ids(near_origin[0]), ElementsAre(1, 2));
  EXPECT_NEAR(near_origin[0][0].distance, 0.04, 1e-5);
  EXPECT_NEAR(near_origin[0][1].distance, 0.64, 1e-5);
  params.partitions_to_search = 2;
  EXPECT_THAT(Ids(MustSearch(*index, {10, 10}, params)[0]), ElementsAre(3, 4, 2, 1));
  // A new vector after build lands in its nearest partition and is found there.
  ASSERT_THAT(index->Upsert({5}, {9, 9}), IsOk());
  params.partitions_to_search = 1;
  EXPECT_THAT(Ids(MustSearch(*index, {9, 9}, params)[0]), ElementsAre(5, 3, 4));
  // Moving id 5 to the other group: it leaves the old partition.
  ASSERT_THAT(index->Upsert({5}, {0, -1}), IsOk());
  EXPECT_THAT(Ids(MustSearch(*index, {9, 9}, params)[0]), ElementsAre(3, 4));
  EXPECT_THAT(Ids(MustSearch(*index, {0, 0}, params)[0]), ElementsAre(1, 2, 5));
  // Removing everything leaves a built, empty index answering with empty lists.
  ASSERT_THAT(index->Remove({1, 2, 3, 4, 5}), IsOk());
  EXPECT_EQ(index->size(), 0u);
  EXPECT_TRUE(index->stats().built);
  EXPECT_THAT(MustSearch(*index, {0, 0}, params)[0], IsEmpty());
}

}  // namespace
}  // namespace nestor

#include "index/exact_index.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::Ids;
using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::unique_ptr<Index> MakeExact(int dimension, Metric metric) {
  IndexOptions options;
  options.dimension = dimension;
  options.metric = metric;
  auto index = CreateIndex(options);
  EXPECT_THAT(index, IsOk());
  return std::move(index).value();
}

std::vector<Neighbor> SearchOne(const Index& index, const std::vector<float>& query,
                                int k, int prefix_dim = 0) {
  SearchParams params;
  params.k = k;
  params.prefix_dim = prefix_dim;
  auto results = index.Search(query, params);
  EXPECT_THAT(results, IsOk());
  if (!results.ok()) return {};
  EXPECT_THAT(*results, SizeIs(1));
  return (*results)[0];
}

// Four 2-d vectors: (1,0) (0,2) (3,4) (-1,-1), ids 1..4; queries use (1,1).
std::unique_ptr<Index> MakeFour(Metric metric) {
  auto index = MakeExact(2, metric);
  EXPECT_THAT(index->Upsert({1, 2, 3, 4}, {1, 0, 0, 2, 3, 4, -1, -1}), IsOk());
  return index;
}

TEST(ExactIndexTest, L2HandComputed) {
  auto index = MakeFour(Metric::kL2);
  const auto result = SearchOne(*index, {1, 1}, 10);
  // Squared distances: 1, 2, 13, 8.
  EXPECT_THAT(Ids(result), ElementsAre(1, 2, 4, 3));
  EXPECT_THAT(result[0].distance, FloatNear(1, 1e-5));
  EXPECT_THAT(result[1].distance, FloatNear(2, 1e-5));
  EXPECT_THAT(result[2].distance, FloatNear(8, 1e-5));
  EXPECT_THAT(result[3].distance, FloatNear(13, 1e-5));
}

TEST(ExactIndexTest, InnerProductHandComputed) {
  auto index = MakeFour(Metric::kInnerProduct);
  const auto result = SearchOne(*index, {1, 1}, 10);
  // Dot products: 1, 2, 7, -2.
  EXPECT_THAT(Ids(result), ElementsAre(3, 2, 1, 4));
  EXPECT_THAT(result[0].distance, FloatNear(7, 1e-5));
  EXPECT_THAT(result[1].distance, FloatNear(2, 1e-5));
  EXPECT_THAT(result[2].distance, FloatNear(1, 1e-5));
  EXPECT_THAT(result[3].distance, FloatNear(-2, 1e-5));
}

TEST(ExactIndexTest, CosineHandComputedWithTieBrokenBySmallerId) {
  auto index = MakeFour(Metric::kCosine);
  const auto result = SearchOne(*index, {1, 1}, 10);
  // Cosines: 1/sqrt2, 2/(2 sqrt2) (equal), 7/(5 sqrt2), -1.
  EXPECT_THAT(Ids(result), ElementsAre(3, 1, 2, 4));
  EXPECT_THAT(result[0].distance, FloatNear(7 / (5 * std::sqrt(2.0)), 1e-5));
  EXPECT_EQ(result[1].distance, result[2].distance);
  EXPECT_THAT(result[1].distance, FloatNear(1 / std::sqrt(2.0), 1e-5));
  EXPECT_THAT(result[3].distance, FloatNear(-1, 1e-5));
}

TEST(ExactIndexTest, KSmallerThanSizeKeepsNearest) {
  auto index = MakeFour(Metric::kL2);
  EXPECT_THAT(Ids(SearchOne(*index, {1, 1}, 2)), ElementsAre(1, 2));
  EXPECT_THAT(Ids(SearchOne(*index, {1, 1}, 1)), ElementsAre(1));
}

// 4-d vectors a=(1,0,5,5) b=(0,1,0,0) c=(2,2,-9,0) d=(0,0,1,1), ids 10,20,30,40;
// query (1,0,1,0). Prefix 2 and full dimension give different orders.
std::unique_ptr<Index> MakePrefixIndex(Metric metric) {
  auto index = MakeExact(4, metric);
  EXPECT_THAT(index->Upsert({10, 20, 30, 40},
                            {1, 0, 5, 5, 0, 1, 0, 0, 2, 2, -9, 0, 0, 0, 1, 1}),
              IsOk());
  return index;
}

TEST(ExactIndexTest, L2PrefixHandComputed) {
  auto index = MakePrefixIndex(Metric::kL2);
  const std::vector<float> q = {1, 0, 1, 0};
  auto full = SearchOne(*index, q, 4);
  // Full: a 41, b 3, c 105, d 2.
  EXPECT_THAT(Ids(full), ElementsAre(40, 20, 10, 30));
  EXPECT_THAT(full[0].distance, FloatNear(2, 1e-4));
  EXPECT_THAT(full[2].distance, FloatNear(41, 1e-4));
  auto prefix = SearchOne(*index, q, 4, /*prefix_dim=*/2);
  // Prefix 2: a 0, b 2, c 5, d 1.
  EXPECT_THAT(Ids(prefix), ElementsAre(10, 40, 20, 30));
  EXPECT_THAT(prefix[0].distance, FloatNear(0, 1e-5));
  EXPECT_THAT(prefix[1].distance, FloatNear(1, 1e-5));
  EXPECT_THAT(prefix[2].distance, FloatNear(2, 1e-5));
  EXPECT_THAT(prefix[3].distance, FloatNear(5, 1e-5));
}

TEST(ExactIndexTest, InnerProductPrefixHandComputed) {
  auto index = MakePrefixIndex(Metric::kInnerProduct);
  const std::vector<float> q = {1, 0, 1, 0};
  // Full: a 6, b 0, c -7, d 1. Prefix 2: a 1, b 0, c 2, d 0.
  EXPECT_THAT(Ids(SearchOne(*index, q, 4)), ElementsAre(10, 40, 20, 30));
  auto prefix = SearchOne(*index, q, 4, 2);
  EXPECT_THAT(Ids(prefix), ElementsAre(30, 10, 20, 40));
  EXPECT_THAT(prefix[0].distance, FloatNear(2, 1e-5));
  EXPECT_THAT(prefix[1].distance, FloatNear(1, 1e-5));
}

TEST(ExactIndexTest, CosinePrefixesAreRenormalized) {
  auto index = MakePrefixIndex(Metric::kCosine);
  const std::vector<float> q = {1, 0, 1, 0};
  auto full = SearchOne(*index, q, 4);
  // Full: a 6/sqrt(102), b 0, c -7/sqrt(178), d 1/2.
  EXPECT_THAT(Ids(full), ElementsAre(10, 40, 20, 30));
  EXPECT_THAT(full[0].distance, FloatNear(6 / std::sqrt(102.0), 1e-5));
  EXPECT_THAT(full[1].distance, FloatNear(0.5, 1e-5));
  EXPECT_THAT(full[3].distance, FloatNear(-7 / std::sqrt(178.0), 1e-5));
  auto prefix = SearchOne(*index, q, 4, 2);
  // Prefix 2 (re-normalized): a 1, b 0, c 1/sqrt2; d's prefix is zero and scores 0,
  // tying b (ids 20 < 40).
  EXPECT_THAT(Ids(prefix), ElementsAre(10, 30, 20, 40));
  EXPECT_THAT(prefix[0].distance, FloatNear(1, 1e-5));
  EXPECT_THAT(prefix[1].distance, FloatNear(1 / std::sqrt(2.0), 1e-5));
  EXPECT_EQ(prefix[2].distance, 0.0f);
  EXPECT_EQ(prefix[3].distance, 0.0f);
}

// Exact index vs a double-precision loop on random data, all metrics, several prefixes,
// several threads and a database larger than one GEMM block.
class ExactIndexOracleTest : public ::testing::TestWithParam<Metric> {};

TEST_P(ExactIndexOracleTest, MatchesNaiveDoubleLoop) {
  const Metric metric = GetParam();
  constexpr int kDim = 24;
  constexpr size_t kRows = 5000;  // > kRowBlock: exercises two row blocks
  constexpr size_t kQueries = 40;
  constexpr size_t kK = 10;
  const std::vector<float> data = testing::RandomVectors(kRows, kDim, 7);
  const std::vector<DatapointId> ids = testing::SequentialIds(kRows, 1000);
  const std::vector<float> queries = testing::RandomVectors(kQueries, kDim, 8);
  auto index = MakeExact(kDim, metric);
  ASSERT_THAT(index->Upsert(ids, data), IsOk());
  for (int prefix : {0, 1, 5, 16, kDim}) {
    // 40 queries: one sgemm per row block on the calling thread, whatever num_threads.
    for (int threads : {1, 3, 20}) {
      SearchParams params;
      params.k = kK;
      params.prefix_dim = prefix;
      params.num_threads = threads;
      auto results = index->Search(queries, params);
      ASSERT_THAT(results, IsOk());
      ASSERT_THAT(*results, SizeIs(kQueries));
      const int p = prefix == 0 ? kDim : prefix;
      for (size_t q = 0; q < kQueries; ++q) {
        const auto truth =
            testing::NaiveSearch(metric, queries.data() + q * kDim, data, ids, kDim, p, kK);
        const auto& got = (*results)[q];
        ASSERT_THAT(got, SizeIs(kK));
        for (size_t i = 0; i < kK; ++i) {
          // Same score at each rank; the returned id really has that score.
          EXPECT_NEAR(got[i].distance, truth[i].first, 1e-4) << "prefix " << p << " rank " << i;
          const double own = testing::NaiveScore(
              metric, queries.data() + q * kDim, data.data() + (got[i].id - 1000) * kDim, p);
          EXPECT_NEAR(got[i].distance, own, 1e-4);
        }
        // Ids agree rank by rank except for near-ties. At prefix 1 the 5,000 values are so
        // dense that neighbour distances (~1e-7) sit below float resolution of the
        // expanded ||x||^2 - 2x.q + ||q||^2 form, so only the scores are compared there.
        if (p >= 5) {
          size_t same = 0;
          for (size_t i = 0; i < kK; ++i) same += got[i].id == truth[i].second;
          EXPECT_GE(same, kK - 2) << "query " << q << " prefix " << p;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, ExactIndexOracleTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine),
                         [](const auto& info) { return std::string(MetricName(info.param)); });

// One or two queries split the stored rows (blocks of kExactRowBlock) over the search
// threads and merge each part's top k: the lists must equal one thread's, bit for bit,
// and the oracle's; duplicates placed in different blocks keep the smaller-id-first rule.
TEST(ExactIndexTest, FewQueriesSplitRowsOverThreadsAndMergeToTheOnePassResult) {
  constexpr int kDim = 16;
  constexpr size_t kRows = 13000;  // four row blocks of up to 4096
  constexpr size_t kK = 10;
  std::vector<float> data = testing::RandomVectors(kRows, kDim, 21);
  const std::vector<DatapointId> ids = testing::SequentialIds(kRows, 500);
  // Rows 12,500 and 3 (blocks 4 and 1) copy row 7,000 (block 2); the queries are row 7,000
  // itself and a random vector.
  for (size_t row : {size_t{12500}, size_t{3}}) {
    std::copy_n(data.begin() + 7000 * kDim, kDim, data.begin() + row * kDim);
  }
  std::vector<float> queries(data.begin() + 7000 * kDim, data.begin() + 7001 * kDim);
  const std::vector<float> random_query = testing::RandomVectors(1, kDim, 22);
  queries.insert(queries.end(), random_query.begin(), random_query.end());
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto index = MakeExact(kDim, metric);
    ASSERT_THAT(index->Upsert(ids, data), IsOk());
    for (int prefix : {0, 5, kDim}) {
      const int p = prefix == 0 ? kDim : prefix;
      for (size_t num_queries : {size_t{1}, size_t{2}}) {
        const std::vector<float> batch(queries.begin(), queries.begin() + num_queries * kDim);
        SearchParams params;
        params.k = kK;
        params.prefix_dim = prefix;
        params.num_threads = 1;
        auto one_pass = index->Search(batch, params);
        ASSERT_THAT(one_pass, IsOk());
        for (int threads : {2, 3, 8}) {
          params.num_threads = threads;
          auto split = index->Search(batch, params);
          ASSERT_THAT(split, IsOk());
          EXPECT_EQ(*split, *one_pass)
              << "threads " << threads << " queries " << num_queries << " prefix " << p;
        }
        for (size_t q = 0; q < num_queries; ++q) {
          const float* query = batch.data() + q * kDim;
          const auto truth = testing::NaiveSearch(metric, query, data, ids, kDim, p, kK);
          const auto& got = (*one_pass)[q];
          ASSERT_THAT(got, SizeIs(kK));
          for (size_t i = 0; i < kK; ++i) {
            // Same score at each rank, and the returned id really has that score.
            EXPECT_NEAR(got[i].distance, truth[i].first, 1e-4)
                << "prefix " << p << " query " << q << " rank " << i;
            const double own = testing::NaiveScore(
                metric, query, data.data() + (got[i].id - 500) * kDim, p);
            EXPECT_NEAR(got[i].distance, own, 1e-4)
                << "prefix " << p << " query " << q << " rank " << i;
          }
        }
      }
    }
    // Query 0 is row 7,000: under L2 and cosine it and its two copies come first, ties by
    // the smaller id (3, 7,000, 12,500 -> ids 503, 7,500, 13,000), across three blocks.
    if (metric != Metric::kInnerProduct) {
      SearchParams params;
      params.k = 3;
      params.num_threads = 3;
      auto result = index->Search(std::vector<float>(queries.begin(), queries.begin() + kDim),
                                  params);
      ASSERT_THAT(result, IsOk());
      EXPECT_THAT(Ids((*result)[0]), ElementsAre(503, 7500, 13000));
    }
  }
}

TEST(ExactIndexTest, EmptyIndexReturnsEmptyLists) {
  auto index = MakeExact(3, Metric::kL2);
  SearchParams params;
  auto results = index->Search({1, 2, 3, 4, 5, 6}, params);
  ASSERT_THAT(results, IsOk());
  ASSERT_THAT(*results, SizeIs(2));
  EXPECT_THAT((*results)[0], IsEmpty());
  EXPECT_THAT((*results)[1], IsEmpty());
}

TEST(ExactIndexTest, KLargerThanSizeReturnsWhatExists) {
  auto index = MakeFour(Metric::kL2);
  EXPECT_THAT(SearchOne(*index, {0, 0}, 1000), SizeIs(4));
}

TEST(ExactIndexTest, UpsertReplacesInPlaceAndOldVectorIsNeverReturned) {
  auto index = MakeFour(Metric::kL2);
  // Move id 3 from (3,4) to (1,1): now the exact match of the query.
  ASSERT_THAT(index->Upsert({3}, {1, 1}), IsOk());
  EXPECT_EQ(index->size(), 4u);
  auto result = SearchOne(*index, {1, 1}, 10);
  EXPECT_THAT(Ids(result), ElementsAre(3, 1, 2, 4));
  EXPECT_THAT(result[0].distance, FloatNear(0, 1e-6));
  // Nothing is near (3,4) any more.
  auto far = SearchOne(*index, {3, 4}, 1);
  EXPECT_THAT(Ids(far), ElementsAre(2));  // (0,2): 9+4=13 < (1,1): 4+9=13 -> tie, id 2 < 3
  EXPECT_THAT(index->GetVector(3), IsOk());
  EXPECT_EQ(*index->GetVector(3), (std::vector<float>{1, 1}));
}

TEST(ExactIndexTest, RemoveSwapsLastRowAndRemovedIdsAreNeverReturned) {
  auto index = MakeFour(Metric::kL2);
  auto removed = index->Remove({1, 99});  // 99 unknown: ignored
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(index->size(), 3u);
  EXPECT_THAT(Ids(SearchOne(*index, {1, 1}, 10)), ElementsAre(2, 4, 3));
  EXPECT_THAT(index->GetVector(1), StatusIs(absl::StatusCode::kNotFound));
  // The moved last row (id 4) is still found under its own id.
  EXPECT_EQ(*index->GetVector(4), (std::vector<float>{-1, -1}));
  ASSERT_THAT(index->Remove({2, 3, 4}), IsOk());
  EXPECT_EQ(index->size(), 0u);
  EXPECT_THAT(SearchOne(*index, {1, 1}, 10), IsEmpty());
  // Re-inserting a removed id works.
  ASSERT_THAT(index->Upsert({1}, {5, 5}), IsOk());
  EXPECT_THAT(Ids(SearchOne(*index, {1, 1}, 10)), ElementsAre(1));
}

// partitions_to_search, reorder_k, shortlist_dim and shortlist_size are per-call settings
// of a partitioned index: the exact index validates them but is exact whatever they say
// (SearchParams), so one set of params can serve both kinds.
TEST(ExactIndexTest, PartitionedQueryKnobsAreValidatedButChangeNothing) {
  constexpr int kDim = 8;
  auto index = MakeExact(kDim, Metric::kL2);
  ASSERT_THAT(index->Upsert(testing::SequentialIds(300), testing::RandomVectors(300, kDim, 5)),
              IsOk());
  const std::vector<float> queries = testing::RandomVectors(7, kDim, 6);
  SearchParams plain;
  plain.k = 10;
  plain.prefix_dim = 6;
  auto expected = index->Search(queries, plain);
  ASSERT_THAT(expected, IsOk());
  SearchParams knobs = plain;
  knobs.partitions_to_search = 1;
  knobs.reorder_k = 10;
  knobs.shortlist_dim = 2;
  knobs.shortlist_size = 10;
  auto got = index->Search(queries, knobs);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(*got, *expected);  // ids and distances bit for bit
  knobs.shortlist_size = 5;
  EXPECT_THAT(index->Search(queries, knobs),
              StatusIs(absl::StatusCode::kInvalidArgument, "shortlist_size 5 must be >= k 10"));
  knobs.shortlist_size = 10;
  knobs.reorder_k = -1;
  EXPECT_THAT(index->Search(queries, knobs),
              StatusIs(absl::StatusCode::kInvalidArgument, "reorder_k must be in [0, 1000000]"));
}

TEST(ExactIndexTest, StatsReportSizeAndMemory) {
  auto index = MakeFour(Metric::kL2);
  const IndexStats stats = index->stats();
  EXPECT_EQ(stats.kind, "exact");
  EXPECT_EQ(stats.vector_count, 4u);
  EXPECT_TRUE(stats.built);
  EXPECT_EQ(stats.num_partitions, 0);
  EXPECT_GE(stats.memory_bytes, 4u * (2 * sizeof(float) + sizeof(DatapointId)));
  EXPECT_THAT(index->Build(), IsOk());  // no-op
}

}  // namespace
}  // namespace nestor

// The partition-major batch path of PartitionedIndex (index/partitioned_index.h): a batch
// returns exactly what its queries return one at a time, for every metric, both code
// types and several thread counts, and matches the exact oracle under full search.
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "index/tuning_trace.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::Ids;
using ::nestor::testing::IsOk;
using ::nestor::testing::MustSearch;
using ::nestor::testing::StatusIs;

constexpr int kDim = 40;  // not a multiple of the kernels' 32 lanes: padded code rows
constexpr size_t kRows = 4000;
constexpr size_t kQueries = 150;
constexpr int kPartitions = 32;

// Each query searched alone (the per-query path).
std::vector<std::vector<Neighbor>> OneByOne(const Index& index,
                                            const std::vector<float>& queries,
                                            SearchParams params) {
  params.num_threads = 1;
  std::vector<std::vector<Neighbor>> all;
  for (size_t q = 0; q < queries.size() / kDim; ++q) {
    const std::vector<float> one(queries.begin() + q * kDim, queries.begin() + (q + 1) * kDim);
    auto results = MustSearch(index, one, params);
    EXPECT_EQ(results.size(), 1u);
    all.push_back(results.empty() ? std::vector<Neighbor>{} : results[0]);
  }
  return all;
}

class BatchSearchTest : public ::testing::TestWithParam<std::tuple<Metric, CodeType>> {
 protected:
  void SetUp() override {
    const auto [metric, code_type] = GetParam();
    const std::vector<float> all =
        testing::ClusteredVectors(kRows + kQueries, kDim, 60, 0.2f, 2024);
    data_.assign(all.begin(), all.begin() + kRows * kDim);
    queries_.assign(all.begin() + kRows * kDim, all.end());
    IndexOptions options = testing::PartitionedOptions(kDim, metric, kPartitions, code_type);
    auto index = CreateIndex(options);
    ASSERT_THAT(index, IsOk());
    index_ = std::move(index).value();
    options.num_partitions = 0;
    auto exact = CreateIndex(options);
    ASSERT_THAT(exact, IsOk());
    exact_ = std::move(exact).value();
    for (Index* i : {index_.get(), exact_.get()}) {
      ASSERT_THAT(i->Upsert(testing::SequentialIds(kRows, 7), data_), IsOk());
      ASSERT_THAT(i->Build(), IsOk());
    }
  }

  std::vector<float> data_, queries_;
  std::unique_ptr<Index> index_, exact_;
};

TEST_P(BatchSearchTest, BatchEqualsOneByOneForAnyThreadCount) {
  for (int probes : {1, 3, 8}) {
    for (int reorder_k : {0, 12, 50}) {
      SearchParams params;
      params.k = 10;
      params.partitions_to_search = probes;
      params.reorder_k = reorder_k;
      const auto expected = OneByOne(*index_, queries_, params);
      for (int threads : {1, 2, 3, 8}) {
        params.num_threads = threads;
        EXPECT_EQ(MustSearch(*index_, queries_, params), expected)
            << "probes=" << probes << " reorder_k=" << reorder_k << " threads=" << threads;
      }
    }
  }
}

TEST_P(BatchSearchTest, PrefixBatchEqualsOneByOne) {
  SearchParams params;
  params.k = 7;
  params.prefix_dim = 24;
  params.partitions_to_search = 4;
  const auto expected = OneByOne(*index_, queries_, params);
  for (int threads : {1, 2, 3}) {
    params.num_threads = threads;
    EXPECT_EQ(MustSearch(*index_, queries_, params), expected) << "threads=" << threads;
  }
}

TEST_P(BatchSearchTest, FullSearchBatchMatchesExactOracle) {
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = kPartitions;
  params.reorder_k = static_cast<int>(kRows);
  params.num_threads = 2;
  const auto truth = MustSearch(*exact_, queries_, params);
  const auto got = MustSearch(*index_, queries_, params);
  ASSERT_EQ(got.size(), truth.size());
  for (size_t q = 0; q < truth.size(); ++q) {
    EXPECT_EQ(Ids(got[q]), Ids(truth[q])) << "query " << q;
    for (size_t i = 0; i < std::min(got[q].size(), truth[q].size()); ++i) {
      EXPECT_NEAR(got[q][i].distance, truth[q][i].distance, 1e-4);
    }
  }
}

// SearchParams::max_codes: each query opens its nearest partitions while those opened hold
// fewer than max_codes vectors (always the nearest, at most partitions_to_search). The
// oracle takes every query's centroid ranking and partition sizes from ScanForTuning
// (the search's own ranking), counts the partitions the rule opens, and searches that
// query alone with exactly that partitions_to_search and no budget.
TEST_P(BatchSearchTest, MaxCodesOpensPartitionsUntilTheBudgetIsMet) {
  TuningScanLayout layout;
  std::vector<std::vector<uint32_t>> orders;
  ASSERT_THAT(ScanForTuning(*index_, queries_, kPartitions, &layout,
                            [&](size_t, absl::Span<const uint32_t> order, absl::Span<float>) {
                              orders.emplace_back(order.begin(), order.end());
                              return absl::OkStatus();
                            }),
              IsOk());
  ASSERT_EQ(orders.size(), kQueries);
  std::vector<int64_t> sizes(kPartitions, 0);
  for (uint32_t p : layout.partition_of) ++sizes[p];
  const int64_t mean_size = static_cast<int64_t>(kRows / kPartitions);
  for (int cap : {3, 8}) {
    for (int64_t max_codes : std::vector<int64_t>{1, 2 * mean_size + 1, 5 * mean_size, int64_t{kRows}}) {
      SearchParams params;
      params.k = 10;
      params.reorder_k = 20;
      params.partitions_to_search = cap;
      params.max_codes = max_codes;
      std::vector<std::vector<Neighbor>> expected;
      int fewest = cap, most = 0;
      for (size_t q = 0; q < kQueries; ++q) {
        int opened = 1;
        int64_t codes = sizes[orders[q][0]];
        while (opened < cap && codes < max_codes) codes += sizes[orders[q][opened++]];
        fewest = std::min(fewest, opened);
        most = std::max(most, opened);
        SearchParams alone = params;
        alone.max_codes = 0;
        alone.partitions_to_search = opened;
        const std::vector<float> one(queries_.begin() + q * kDim,
                                     queries_.begin() + (q + 1) * kDim);
        expected.push_back(MustSearch(*index_, one, alone)[0]);
      }
      if (max_codes == 1) {
        EXPECT_EQ(most, 1);
      }
      if (max_codes == kRows) {
        EXPECT_EQ(fewest, cap);
      }
      if (max_codes == 2 * mean_size + 1 && cap == 8) {
        EXPECT_LT(fewest, most) << "the budget should open a different count per query";
      }
      EXPECT_EQ(OneByOne(*index_, queries_, params), expected)
          << "cap=" << cap << " max_codes=" << max_codes;
      for (int threads : {1, 2, 3}) {
        params.num_threads = threads;
        EXPECT_EQ(MustSearch(*index_, queries_, params), expected)
            << "cap=" << cap << " max_codes=" << max_codes << " threads=" << threads;
      }
    }
  }
}

TEST_P(BatchSearchTest, NegativeMaxCodesIsInvalidArgument) {
  SearchParams params;
  params.max_codes = -1;
  EXPECT_THAT(index_->Search(queries_, params).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "max_codes must be >= 0 (0 = no limit), got -1"));
}

TEST_P(BatchSearchTest, BatchHonoursDeadlineAndCancellation) {
  SearchParams params;
  params.num_threads = 2;
  params.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_THAT(index_->Search(queries_, params),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  params.deadline = absl::InfiniteFuture();
  params.cancelled = [] { return true; };
  EXPECT_THAT(index_->Search(queries_, params), StatusIs(absl::StatusCode::kCancelled));
  // Cancelled after a few checks: stops between partitions, mid-batch.
  int calls = 0;
  params.num_threads = 1;
  params.cancelled = [&calls] { return ++calls > 3; };
  EXPECT_THAT(index_->Search(queries_, params), StatusIs(absl::StatusCode::kCancelled));
}

INSTANTIATE_TEST_SUITE_P(
    MetricsAndCodes, BatchSearchTest,
    ::testing::Combine(::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine),
                       ::testing::Values(CodeType::kFloat, CodeType::kInt8)),
    [](const auto& info) {
      return std::string(MetricName(std::get<0>(info.param))) + "_" +
             CodeTypeName(std::get<1>(info.param));
    });

// The default code type's recall: int8 codes with the default reorder are no worse than
// float codes (within 0.005) on seeded clustered data, which is why kInt8 is the default.
TEST(DefaultCodeTypeTest, Int8WithDefaultReorderIsWithinHalfAPointOfFloat) {
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    const std::vector<float> all = testing::ClusteredVectors(5200, 32, 100, 0.15f, 99);
    const std::vector<float> data(all.begin(), all.begin() + 5000 * 32);
    const std::vector<float> queries(all.begin() + 5000 * 32, all.end());
    std::vector<std::unique_ptr<Index>> indexes;
    for (int partitions : {0, 64, 64}) {
      IndexOptions options;
      options.dimension = 32;
      options.metric = metric;
      options.num_partitions = partitions;
      if (partitions > 0 && indexes.size() == 1) options.code_type = CodeType::kFloat;
      auto index = CreateIndex(options);
      ASSERT_THAT(index, IsOk());
      ASSERT_THAT((*index)->Upsert(testing::SequentialIds(5000), data), IsOk());
      ASSERT_THAT((*index)->Build(), IsOk());
      indexes.push_back(std::move(index).value());
    }
    EXPECT_EQ(indexes[2]->stats().code_type, "int8");  // the default
    for (int probes : {2, 4, 8}) {
      SearchParams params;
      params.k = 10;
      params.partitions_to_search = probes;
      const auto truth = MustSearch(*indexes[0], queries, params);
      const double flat = testing::Recall(MustSearch(*indexes[1], queries, params), truth);
      const double int8 = testing::Recall(MustSearch(*indexes[2], queries, params), truth);
      EXPECT_GE(int8, flat - 0.005) << MetricName(metric) << " probes=" << probes;
    }
  }
}

}  // namespace
}  // namespace nestor

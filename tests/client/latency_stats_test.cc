#include "client/latency_stats.h"

#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace nestor::client {
namespace {

TEST(LatencyStatsTest, PercentileInterpolatesLinearlyBetweenRanks) {
  // rank = p/100 * (n - 1), as numpy.percentile.
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 50), 2.5);   // rank 1.5
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 100), 4.0);
  EXPECT_DOUBLE_EQ(Percentile({10, 20, 30, 40, 50}, 95), 48.0);  // rank 3.8
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7.0);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0.0);
}

TEST(LatencyStatsTest, PercentilesOfOneToHundred) {
  std::vector<double> values(100);
  std::iota(values.begin(), values.end(), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(values, 50), 50.5);  // rank 49.5
  EXPECT_NEAR(Percentile(values, 95), 95.05, 1e-9);  // rank 94.05
  EXPECT_NEAR(Percentile(values, 99), 99.01, 1e-9);  // rank 98.01
}

TEST(LatencyStatsTest, SummarizeComputesMeanMaxAndPercentiles) {
  const std::vector<double> values = {5, 1, 4, 2, 3};
  LatencySummary s = Summarize(values);
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.max, 5.0);
  EXPECT_DOUBLE_EQ(s.p50, 3.0);
  EXPECT_DOUBLE_EQ(s.p95, 4.8);   // rank 3.8
  EXPECT_DOUBLE_EQ(s.p99, 4.96);  // rank 3.96
}

TEST(LatencyStatsTest, RecallAtKCountsTheOverlapWithTheExactTopK) {
  // Query 0 finds 2 of 3, query 1 finds all 3 (order does not matter).
  const std::vector<std::vector<int64_t>> approximate = {{1, 2, 9}, {6, 5, 4}};
  const std::vector<int64_t> exact = {1, 2, 3, 99, 4, 5, 6, 98};  // 4 columns, k = 3 used
  EXPECT_DOUBLE_EQ(RecallAtK(approximate, exact, 4, 3), (2.0 / 3 + 1.0) / 2);
}

TEST(LatencyStatsTest, MissingResultsCountAsMisses) {
  const std::vector<std::vector<int64_t>> approximate = {{1}};
  const std::vector<int64_t> exact = {1, 2};
  EXPECT_DOUBLE_EQ(RecallAtK(approximate, exact, 2, 2), 0.5);
}

}  // namespace
}  // namespace nestor::client

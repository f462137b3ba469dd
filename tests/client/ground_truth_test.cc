#include "client/ground_truth.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace nestor::client {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

FloatMatrix RandomMatrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  FloatMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(static_cast<size_t>(rows * cols));
  for (float& v : m.data) v = normal(rng);
  return m;
}

// The oracle: a double-precision double loop, smaller key is nearer, ties by id.
std::vector<int64_t> NaiveNeighbors(const FloatMatrix& base, const FloatMatrix& queries,
                                    GroundTruthMetric metric, int k, int64_t dim) {
  std::vector<int64_t> out;
  for (int64_t q = 0; q < queries.rows; ++q) {
    std::vector<std::pair<double, int64_t>> scored;
    for (int64_t b = 0; b < base.rows; ++b) {
      double dot = 0, l2 = 0, qn = 0, bn = 0;
      for (int64_t j = 0; j < dim; ++j) {
        const double x = queries.row(q)[j], y = base.row(b)[j];
        dot += x * y;
        l2 += (x - y) * (x - y);
        qn += x * x;
        bn += y * y;
      }
      double key = 0;
      switch (metric) {
        case GroundTruthMetric::kL2: key = l2; break;
        case GroundTruthMetric::kInnerProduct: key = -dot; break;
        case GroundTruthMetric::kCosine: key = -dot / std::sqrt(qn * bn); break;
      }
      scored.emplace_back(key, b);
    }
    std::sort(scored.begin(), scored.end());
    for (int i = 0; i < k; ++i) out.push_back(scored[i].second);
  }
  return out;
}

struct Case {
  GroundTruthMetric metric;
  int64_t prefix_dim;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  static const char* const kNames[] = {"L2", "InnerProduct", "Cosine"};
  return std::string(kNames[static_cast<int>(info.param.metric)]) + "Prefix" +
         std::to_string(info.param.prefix_dim);
}

class GroundTruthMetricTest : public ::testing::TestWithParam<Case> {};

TEST_P(GroundTruthMetricTest, MatchesNaiveDoubleLoop) {
  const FloatMatrix base = RandomMatrix(700, 24, 1);
  const FloatMatrix queries = RandomMatrix(37, 24, 2);
  GroundTruthOptions options;
  options.metric = GetParam().metric;
  options.k = 10;
  options.prefix_dim = GetParam().prefix_dim;
  // Small blocks so that several query and base blocks are exercised.
  options.block_queries = 8;
  options.block_base = 100;
  absl::StatusOr<Neighbors> got = ExactNeighbors(base, queries, options);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->rows, 37);
  EXPECT_EQ(got->k, 10);
  const int64_t dim = options.prefix_dim > 0 ? options.prefix_dim : 24;
  EXPECT_EQ(got->ids, NaiveNeighbors(base, queries, options.metric, 10, dim));
  // Distances are reported in the metric's convention and ordered nearest first.
  for (int64_t q = 0; q < got->rows; ++q) {
    for (int i = 1; i < got->k; ++i) {
      const float prev = got->distances[q * 10 + i - 1], cur = got->distances[q * 10 + i];
      if (options.metric == GroundTruthMetric::kL2) {
        EXPECT_LE(prev, cur);
      } else {
        EXPECT_GE(prev, cur);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Metrics, GroundTruthMetricTest,
    ::testing::Values(Case{GroundTruthMetric::kL2, 0}, Case{GroundTruthMetric::kInnerProduct, 0},
                      Case{GroundTruthMetric::kCosine, 0}, Case{GroundTruthMetric::kL2, 8},
                      Case{GroundTruthMetric::kCosine, 5}),
    CaseName);

TEST(GroundTruthTest, L2DistancesAreSquaredEuclidean) {
  FloatMatrix base{3, 2, {0, 0, 3, 4, 1, 1}};
  FloatMatrix queries{1, 2, {0, 0}};
  GroundTruthOptions options;
  options.k = 3;
  absl::StatusOr<Neighbors> got = ExactNeighbors(base, queries, options);
  ASSERT_THAT(got, IsOk());
  EXPECT_THAT(got->ids, ::testing::ElementsAre(0, 2, 1));
  EXPECT_THAT(got->distances, ::testing::ElementsAre(0.0f, 2.0f, 25.0f));
}

TEST(GroundTruthTest, KLargerThanBaseReturnsAllRows) {
  FloatMatrix base{2, 1, {5, 1}};
  FloatMatrix queries{1, 1, {0}};
  GroundTruthOptions options;
  options.k = 10;
  absl::StatusOr<Neighbors> got = ExactNeighbors(base, queries, options);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->k, 2);
  EXPECT_THAT(got->ids, ::testing::ElementsAre(1, 0));
}

TEST(GroundTruthTest, DimensionMismatchIsInvalidArgument) {
  FloatMatrix base{2, 3, {1, 2, 3, 4, 5, 6}};
  FloatMatrix queries{1, 2, {1, 2}};
  EXPECT_THAT(ExactNeighbors(base, queries, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GroundTruthTest, PrefixLargerThanDimensionIsInvalidArgument) {
  FloatMatrix base{1, 2, {1, 2}};
  FloatMatrix queries{1, 2, {1, 2}};
  GroundTruthOptions options;
  options.prefix_dim = 3;
  EXPECT_THAT(ExactNeighbors(base, queries, options),
              StatusIs(absl::StatusCode::kInvalidArgument, "prefix_dim"));
}

TEST(GroundTruthTest, EmptyBaseIsInvalidArgument) {
  FloatMatrix base{0, 2, {}};
  FloatMatrix queries{1, 2, {1, 2}};
  EXPECT_THAT(ExactNeighbors(base, queries, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace nestor::client

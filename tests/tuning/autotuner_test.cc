// The index-side trace and the autotuner against the real partitioned index: recall
// predicted from one trace must equal recall measured by searching.
#include "tuning/autotuner.h"

#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"
#include "tuning/recall_model.h"

namespace nestor::tuning {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

struct Fixture {
  std::unique_ptr<Index> index;
  std::unique_ptr<Index> exact;
  std::vector<float> queries;
  std::vector<DatapointId> truth;
};

Fixture Make(Metric metric, CodeType code_type, int num_queries = 150, bool pca = false) {
  constexpr int kN = 3000, kD = 24, kPartitions = 48, kK = 10;
  Fixture f;
  const std::vector<float> data = testing::ClusteredVectors(kN, kD, 40, 0.35f, 7);
  f.queries = testing::ClusteredVectors(num_queries, kD, 40, 0.35f, 7 + 1000);
  std::vector<DatapointId> ids(kN);
  for (int i = 0; i < kN; ++i) ids[i] = 1000 + 3 * i;  // sparse ids, not row numbers
  IndexOptions options;
  options.dimension = kD;
  options.metric = metric;
  options.num_partitions = kPartitions;
  options.code_type = code_type;
  options.pca_rotation = pca;
  f.index = CreateIndex(options).value();
  options.pca_rotation = false;
  EXPECT_THAT(f.index->Upsert(ids, data), IsOk());
  EXPECT_THAT(f.index->Build(), IsOk());
  options.num_partitions = 0;
  f.exact = CreateIndex(options).value();
  EXPECT_THAT(f.exact->Upsert(ids, data), IsOk());
  f.truth = ExactNeighborIds(*f.exact, f.queries, kK).value();
  return f;
}

class IndexTraceTest : public ::testing::TestWithParam<std::tuple<Metric, CodeType>> {};

// The central check of the recall model: for a grid of (partitions_to_search, reorder_k)
// the recall predicted from one trace equals the recall of real searches. Ties of the
// exact scores could make the two differ by one neighbour (the oracle and the reorder
// may order equal distances differently); the seeded continuous data has none, so the
// prediction is required to be exact here.
TEST_P(IndexTraceTest, PredictedRecallEqualsMeasuredRecallOnGrid) {
  const auto [metric, code_type] = GetParam();
  Fixture f = Make(metric, code_type);
  constexpr int kK = 10;
  absl::StatusOr<Trace> trace = BuildIndexTrace(*f.index, f.queries, f.truth, kK, 0);
  ASSERT_THAT(trace.status(), IsOk());
  EXPECT_THAT(ValidateTrace(*trace), IsOk());
  EXPECT_EQ(trace->max_partitions, 48);
  const std::vector<int> p_axis = {1, 2, 3, 5, 8, 13, 48};
  const std::vector<int> r_axis = {10, 15, 25, 40, 100};
  absl::StatusOr<GridTable> table = PredictRecallTable(*trace, p_axis, r_axis);
  ASSERT_THAT(table.status(), IsOk());
  for (size_t i = 0; i < p_axis.size(); ++i) {
    for (size_t j = 0; j < r_axis.size(); ++j) {
      absl::StatusOr<OperatingPoint> m =
          MeasureOperatingPoint(*f.index, f.queries, f.truth, kK, p_axis[i], r_axis[j]);
      ASSERT_THAT(m.status(), IsOk());
      EXPECT_DOUBLE_EQ(table->value(i, j), *m->measured_recall)
          << "P=" << p_axis[i] << " R=" << r_axis[j];
    }
  }
  // The grid spans a real trade-off.
  EXPECT_LT(table->value(0, 0), 0.9);
  EXPECT_GT(table->value(p_axis.size() - 1, r_axis.size() - 1), 0.99);
}

// The budget knob (SearchParams::max_codes): the recall predicted from the same trace,
// each query opening QueryTrace::PartitionsOpened(P, max_codes) partitions, equals the
// recall of real searches with that budget, for budgets below, between and above
// partition boundaries (MaxCodesAxis) and the extremes 1 and "no effect".
TEST_P(IndexTraceTest, PredictedRecallWithMaxCodesEqualsMeasuredRecall) {
  const auto [metric, code_type] = GetParam();
  Fixture f = Make(metric, code_type);
  constexpr int kK = 10;
  absl::StatusOr<Trace> trace = BuildIndexTrace(*f.index, f.queries, f.truth, kK, 0);
  ASSERT_THAT(trace.status(), IsOk());
  const double mean_size = static_cast<double>(f.index->size()) / 48;
  int budget_changed_recall = 0;
  for (int p : {3, 8, 13}) {
    std::vector<int64_t> budgets = MaxCodesAxis(p, mean_size, DefaultMaxCodesSteps());
    ASSERT_EQ(budgets.size(), DefaultMaxCodesSteps().size());
    budgets.push_back(1);
    budgets.push_back(static_cast<int64_t>(f.index->size()));
    for (int64_t m : budgets) {
      for (int r : {10, 40}) {
        absl::StatusOr<double> predicted = PredictRecall(*trace, p, m, r);
        ASSERT_THAT(predicted.status(), IsOk());
        absl::StatusOr<OperatingPoint> measured =
            MeasureOperatingPoint(*f.index, f.queries, f.truth, kK, p, r, 0, {}, 0, 0, m);
        ASSERT_THAT(measured.status(), IsOk());
        EXPECT_DOUBLE_EQ(*predicted, *measured->measured_recall)
            << "P=" << p << " max_codes=" << m << " R=" << r;
        EXPECT_EQ(measured->max_codes, m);
        budget_changed_recall += *predicted != *PredictRecall(*trace, p, r);
      }
    }
  }
  // The budgets do change what is searched, so the equality above means something.
  EXPECT_GT(budget_changed_recall, 10);
  EXPECT_THAT(PredictRecall(*trace, 3, -1, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_codes must be >= 0"));
}

TEST(MaxCodesAxisTest, StepsAroundThePartitionCapInMeanPartitionSizes) {
  EXPECT_THAT(MaxCodesAxis(4, 10.0, {-1.0, -0.5, 0.0, 0.5}),
              ::testing::ElementsAre(30, 35, 40, 45));
  // Unsorted steps come out increasing; rounding duplicates and budgets below 1 go.
  EXPECT_THAT(MaxCodesAxis(2, 0.4, {0.5, -1.9, 0.0, 0.2}), ::testing::ElementsAre(1));
  EXPECT_THAT(MaxCodesAxis(3, 2.0, {0.5, -0.5}), ::testing::ElementsAre(5, 7));
  // Budgets beyond int64 (or not finite) are skipped rather than wrapped.
  EXPECT_THAT(MaxCodesAxis(3, 1e18, {0.0, 1e9}),
              ::testing::ElementsAre(int64_t{3000000000000000000}));
  EXPECT_THAT(MaxCodesAxis(3, 2.0, {0.0, std::nan("")}), ::testing::ElementsAre(6));
  // One partition is always opened: no budget can change P = 1.
  EXPECT_TRUE(MaxCodesAxis(1, 10.0, {0.0, 0.5}).empty());
  EXPECT_THAT(DefaultMaxCodesSteps(),
              ::testing::ElementsAre(-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5));
}

TEST(AutotunerTest, BudgetCandidatesOnlyWhenStepsAreGiven) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8);
  AutotuneOptions options;
  options.target_recall = 0.9;
  options.calibration_queries = 30;
  options.calibration_repeats = 1;
  options.measure_points = 0;
  options.partitions_to_search = {1, 2, 3, 4, 6, 8, 12};
  options.reorder_k = {10, 20, 40};
  options.max_codes_steps = {};
  absl::StatusOr<AutotuneResult> without = Autotune(*f.index, f.queries, f.truth, options);
  ASSERT_THAT(without.status(), IsOk());
  for (const OperatingPoint& p : without->solution.pareto) EXPECT_EQ(p.max_codes, 0);
  options.max_codes_steps = {-0.5, 0.0, 0.5};
  options.max_codes_partitions = {4, 6};
  options.max_codes_reorder_k = {10};
  absl::StatusOr<AutotuneResult> with = Autotune(*f.index, f.queries, f.truth, options);
  ASSERT_THAT(with.status(), IsOk());
  // Budget points are on the Pareto set only as (P in {4, 6}, R = 10) with the axis's
  // budgets, and the chosen one's measured recall is what the model predicted.
  const double mean_size = static_cast<double>(f.index->size()) / 48;
  int budget_points = 0;
  for (const OperatingPoint& p : with->solution.pareto) {
    if (p.max_codes == 0) continue;
    ++budget_points;
    EXPECT_THAT(p.partitions_to_search, ::testing::AnyOf(4, 6));
    EXPECT_EQ(p.reorder_k, 10);
    EXPECT_THAT(MaxCodesAxis(p.partitions_to_search, mean_size, {-0.5, 0.0, 0.5}),
                ::testing::Contains(p.max_codes));
  }
  // The axis has no P = 5: budgets with cap 6 fill the gap between 4 and 6 partitions.
  EXPECT_GE(budget_points, 1);
  ASSERT_TRUE(with->chosen.measured_recall.has_value());
  EXPECT_DOUBLE_EQ(*with->chosen.measured_recall, with->chosen.predicted_recall);
  options.max_codes_partitions = {49};
  EXPECT_THAT(Autotune(*f.index, f.queries, f.truth, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_codes_partitions"));
  options.max_codes_partitions = {};
  for (double bad : {std::nan(""), 49.0, -1e30}) {
    options.max_codes_steps = {0.0, bad};
    EXPECT_THAT(Autotune(*f.index, f.queries, f.truth, options).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "max_codes_steps must be finite and within -48..48"))
        << bad;
  }
}

INSTANTIATE_TEST_SUITE_P(
    MetricsAndCodes, IndexTraceTest,
    ::testing::Values(std::make_tuple(Metric::kL2, CodeType::kInt8),
                      std::make_tuple(Metric::kInnerProduct, CodeType::kInt8),
                      std::make_tuple(Metric::kCosine, CodeType::kInt8),
                      std::make_tuple(Metric::kL2, CodeType::kFloat)));

// The funnel (shortlist_dim / shortlist_size): one trace per shortlist_dim predicts the
// recall of the real funnel search exactly, for a grid of (shortlist_dim, P,
// shortlist_size), every metric, int8 and float codes, with and without PCA rotation.
class FunnelTraceTest
    : public ::testing::TestWithParam<std::tuple<Metric, CodeType, bool>> {};

TEST_P(FunnelTraceTest, PredictedRecallEqualsMeasuredFunnelRecallOnGrid) {
  const auto [metric, code_type, pca] = GetParam();
  Fixture f = Make(metric, code_type, 150, pca);
  constexpr int kK = 10;
  const std::vector<int> p_axis = {1, 3, 8, 48};
  const std::vector<int> s_axis = {10, 20, 40, 100};
  for (int dim : {8, 16, 24}) {
    absl::StatusOr<Trace> trace =
        BuildIndexTrace(*f.index, f.queries, f.truth, kK, 0, {}, dim);
    ASSERT_THAT(trace.status(), IsOk());
    EXPECT_THAT(ValidateTrace(*trace), IsOk());
    EXPECT_EQ(trace->shortlist_dim, dim);
    absl::StatusOr<GridTable> table = PredictRecallTable(*trace, p_axis, s_axis);
    ASSERT_THAT(table.status(), IsOk());
    for (size_t i = 0; i < p_axis.size(); ++i) {
      for (size_t j = 0; j < s_axis.size(); ++j) {
        absl::StatusOr<OperatingPoint> m = MeasureOperatingPoint(
            *f.index, f.queries, f.truth, kK, p_axis[i], 0, 0, {}, dim, s_axis[j]);
        ASSERT_THAT(m.status(), IsOk());
        EXPECT_DOUBLE_EQ(table->value(i, j), *m->measured_recall)
            << "shortlist_dim=" << dim << " P=" << p_axis[i] << " S=" << s_axis[j];
      }
    }
    if (dim == 8) {
      EXPECT_LT(table->value(p_axis.size() - 1, 0), 0.99);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    MetricsCodesRotation, FunnelTraceTest,
    ::testing::Values(std::make_tuple(Metric::kL2, CodeType::kInt8, false),
                      std::make_tuple(Metric::kInnerProduct, CodeType::kInt8, false),
                      std::make_tuple(Metric::kCosine, CodeType::kInt8, false),
                      std::make_tuple(Metric::kL2, CodeType::kFloat, false),
                      std::make_tuple(Metric::kL2, CodeType::kInt8, true)),
    [](const auto& info) {
      return absl::StrCat(MetricName(std::get<0>(info.param)),
                          std::get<1>(info.param) == CodeType::kInt8 ? "Int8" : "Float",
                          std::get<2>(info.param) ? "Pca" : "");
    });

TEST(FunnelTraceTest, DisallowedShortlistDimIsInvalidArgument) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8, 5);
  EXPECT_THAT(BuildIndexTrace(*f.index, f.queries, f.truth, 10, 0, {}, 25).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "shortlist_dim"));
}

// The tuner searches the funnel space too and its choice, measured on the tuning
// queries, has exactly the predicted recall.
TEST(AutotunerTest, FunnelSpaceChoiceMeetsTargetWhenMeasured) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8);
  AutotuneOptions options;
  options.target_recall = 0.9;
  options.shortlist_dims = {0, 8, 16};
  options.shortlist_sizes = {10, 20, 40, 80};
  options.calibration_queries = 50;
  options.measure_points = 4;
  absl::StatusOr<AutotuneResult> result = Autotune(*f.index, f.queries, f.truth, options);
  ASSERT_THAT(result.status(), IsOk());
  ASSERT_EQ(result->funnel_tables.size(), 2u);
  EXPECT_EQ(result->funnel_tables[0].shortlist_dim, 8);
  EXPECT_FALSE(result->recall_table.values.empty());
  EXPECT_GE(result->chosen.predicted_recall, 0.9);
  ASSERT_TRUE(result->chosen.measured_recall.has_value());
  EXPECT_DOUBLE_EQ(*result->chosen.measured_recall, result->chosen.predicted_recall);
  bool funnel_calibrated = false;
  for (const CalibrationPoint& c : result->calibration) funnel_calibrated |= c.shortlist_dim > 0;
  EXPECT_TRUE(funnel_calibrated);
  for (const OperatingPoint& p : result->frontier) {
    ASSERT_TRUE(p.measured_recall.has_value());
    EXPECT_DOUBLE_EQ(*p.measured_recall, p.predicted_recall) << DescribeSettings(p);
  }
}

// Queries copied from the indexed data, each leaving itself out: the prediction still
// equals what the index returns once the query's own vector is dropped.
TEST(IndexTraceTest, LeaveOneOutPredictionEqualsMeasuredRecall) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8, 1);
  constexpr int kK = 10, kD = 24, kQueries = 120;
  std::vector<float> queries;
  std::vector<DatapointId> self;
  for (int i = 0; i < kQueries; ++i) {
    const DatapointId id = 1000 + 3 * (i * 23 % 3000);
    absl::StatusOr<std::vector<float>> v = f.index->GetVector(id);
    ASSERT_THAT(v.status(), IsOk());
    queries.insert(queries.end(), v->begin(), v->end());
    self.push_back(id);
  }
  ASSERT_EQ(queries.size(), static_cast<size_t>(kQueries) * kD);
  std::vector<DatapointId> truth = ExactNeighborIds(*f.exact, queries, kK, self).value();
  for (int i = 0; i < kQueries; ++i) {
    for (int j = 0; j < kK; ++j) EXPECT_NE(truth[i * kK + j], self[i]);
  }
  absl::StatusOr<Trace> trace = BuildIndexTrace(*f.index, queries, truth, kK, 0, self);
  ASSERT_THAT(trace.status(), IsOk());
  for (int p : {1, 3, 8}) {
    for (int r : {10, 20, 60}) {
      absl::StatusOr<OperatingPoint> m =
          MeasureOperatingPoint(*f.index, queries, truth, kK, p, r, 0, self);
      ASSERT_THAT(m.status(), IsOk());
      EXPECT_DOUBLE_EQ(PredictRecall(*trace, p, r).value(), *m->measured_recall)
          << "P=" << p << " R=" << r;
    }
  }
}

TEST(IndexTraceTest, ExactIndexIsInvalidArgument) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8, 5);
  EXPECT_THAT(BuildIndexTrace(*f.exact, f.queries, f.truth, 10, 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(IndexTraceTest, UnbuiltIndexIsFailedPrecondition) {
  IndexOptions options;
  options.dimension = 4;
  options.num_partitions = 2;
  std::unique_ptr<Index> index = CreateIndex(options).value();
  std::vector<float> data(40);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 7);
  std::vector<DatapointId> ids(10);
  for (int i = 0; i < 10; ++i) ids[i] = i;
  ASSERT_THAT(index->Upsert(ids, data), IsOk());
  std::vector<DatapointId> truth = {0};
  EXPECT_THAT(BuildIndexTrace(*index, absl::MakeSpan(data).subspan(0, 4), truth, 1, 0).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(IndexTraceTest, UnknownTrueNeighbourIsInvalidArgument) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8, 3);
  f.truth[4] = 999999;
  EXPECT_THAT(BuildIndexTrace(*f.index, f.queries, f.truth, 10, 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "999999"));
}

TEST(AutotunerTest, ChosenSettingsMeetTargetWhenMeasured) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8);
  AutotuneOptions options;
  options.target_recall = 0.9;
  options.calibration_queries = 50;
  options.measure_points = 4;
  absl::StatusOr<AutotuneResult> result = Autotune(*f.index, f.queries, f.truth, options);
  ASSERT_THAT(result.status(), IsOk());
  EXPECT_GE(result->chosen.predicted_recall, 0.9);
  ASSERT_TRUE(result->chosen.measured_recall.has_value());
  // Measured on the tuning queries themselves, where the model is exact.
  EXPECT_DOUBLE_EQ(*result->chosen.measured_recall, result->chosen.predicted_recall);
  EXPECT_FALSE(result->calibration.empty());
  EXPECT_GE(result->frontier.size(), 2u);
  for (const OperatingPoint& p : result->frontier) {
    EXPECT_TRUE(p.measured_qps.has_value());
    EXPECT_GT(*p.measured_qps, 0.0);
  }
  EXPECT_GT(result->tuning_seconds, 0.0);
}

TEST(AutotunerTest, UnreachableTargetIsOutOfRangeWithBestRecall) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8);
  AutotuneOptions options;
  options.partitions_to_search = {1, 2};
  options.reorder_k = {10};
  options.target_recall = 0.9999;
  options.calibration_queries = 20;
  options.calibration_repeats = 1;
  EXPECT_THAT(Autotune(*f.index, f.queries, f.truth, options).status(),
              StatusIs(absl::StatusCode::kOutOfRange, "best"));
}

TEST(AutotunerTest, LatencyBudgetPicksBestRecallWithinIt) {
  Fixture f = Make(Metric::kL2, CodeType::kInt8);
  AutotuneOptions options;
  options.max_seconds_per_query = 1.0;  // everything fits: the best recall wins
  options.calibration_queries = 20;
  options.measure_points = 0;
  absl::StatusOr<AutotuneResult> result = Autotune(*f.index, f.queries, f.truth, options);
  ASSERT_THAT(result.status(), IsOk());
  double best = 0;
  for (double v : result->recall_table.values) best = std::max(best, v);
  EXPECT_DOUBLE_EQ(result->chosen.predicted_recall, best);
}

}  // namespace
}  // namespace nestor::tuning

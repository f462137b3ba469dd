// Per-stage cost model and its calibration (tuning/cost_model.h).
#include "tuning/cost_model.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/tuning/ivf_simulation.h"
#include "tests/tuning/test_util.h"
#include "tuning/trace.h"

namespace nestor::tuning {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::nestor::tuning::testing::IvfSimulation;
using ::nestor::tuning::testing::MakeIvfSimulation;
using ::nestor::tuning::testing::TraceOf;

// A trace of two queries over 3 partitions whose sizes in rank order are (5, 1, 2) and
// (2, 5, 1); only the sizes matter to the cost model.
Trace TwoQueryTrace() {
  const std::vector<uint32_t> partition_of = {0, 0, 0, 0, 0, 1, 2, 2};
  const std::vector<float> keys(16, 1.0f);
  absl::StatusOr<Trace> trace = BuildTrace({.k = 2, .num_partitions = 3, .dimension = 8},
                                           partition_of, {0, 1, 2, 2, 0, 1}, 3, keys,
                                           {0, 1, 6, 7});
  EXPECT_THAT(trace, IsOk());
  return trace.ok() ? *std::move(trace) : Trace();
}

TEST(CostModelTest, FeaturesComeFromTracePartitionSizes) {
  const Trace trace = TwoQueryTrace();
  absl::StatusOr<CostFeatures> f = ComputeCostFeatures(trace, 2, 3);
  ASSERT_THAT(f, IsOk());
  EXPECT_DOUBLE_EQ(f->centroid_coordinates, 3 * 8);
  // Codes at P = 2: 6 and 7, mean 6.5.
  EXPECT_DOUBLE_EQ(f->code_coordinates, 6.5 * 8);
  EXPECT_DOUBLE_EQ(f->reorder_coordinates, 3.0 * 8);
  // Reorder cannot exceed the codes seen (P = 1: 5 and 2), and is raised to k = 2.
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 1, 4)->reorder_coordinates, (4 + 2) / 2.0 * 8);
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 1, 1)->reorder_coordinates, 2.0 * 8);
  EXPECT_THAT(ComputeCostFeatures(trace, 0, 3), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ComputeCostFeatures(trace, 1, 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

// With a budget of max_codes codes each query opens partitions, nearest first, until those
// opened hold max_codes (sizes in rank order (5, 1, 2) and (2, 5, 1)).
TEST(CostModelTest, MaxCodesStopsEachQueryAtItsBudget) {
  const Trace trace = TwoQueryTrace();
  // Budget 3: query 1 stops after its first partition (5), query 2 after two (2 + 5).
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 3, 2, 3)->codes_scanned, (5 + 7) / 2.0);
  // Budget 6: query 1 opens two (5 + 1), query 2 two (7).
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 3, 2, 6)->codes_scanned, (6 + 7) / 2.0);
  // Budget 8: both open all three (8 codes each), as without a budget; P still caps.
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 3, 2, 8)->codes_scanned,
                   ComputeCostFeatures(trace, 3, 2)->codes_scanned);
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 2, 2, 100)->codes_scanned, (6 + 7) / 2.0);
  // The nearest partition is always opened.
  EXPECT_DOUBLE_EQ(ComputeCostFeatures(trace, 3, 2, 1)->codes_scanned, (5 + 2) / 2.0);
  EXPECT_EQ(trace.queries[0].PartitionsOpened(3, 6), 2);
  EXPECT_EQ(trace.queries[1].PartitionsOpened(3, 0), 3);
  EXPECT_THAT(ComputeCostFeatures(trace, 3, 2, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_codes must be >= 0"));
}

TEST(CostModelTest, ShortlistTraceScansCodesAtShortlistDimension) {
  const IvfSimulation sim = MakeIvfSimulation(4, 500, 16, 5, 8, 10);
  const CostFeatures full = *ComputeCostFeatures(TraceOf(sim), 3, 40);
  const CostFeatures shortlist = *ComputeCostFeatures(TraceOf(sim, {.shortlist_dim = 4}), 3, 40);
  EXPECT_DOUBLE_EQ(shortlist.code_coordinates * 4, full.code_coordinates);
  EXPECT_DOUBLE_EQ(shortlist.reorder_coordinates, full.reorder_coordinates);
}

TEST(CostModelTest, CostTableEqualsPointPredictions) {
  const Trace trace = TraceOf(MakeIvfSimulation(8));
  const CostCoefficients c{2e-6, 1e-10, 3e-10, 2e-9};
  const std::vector<int> ps = {1, 2, 4, 8};
  const std::vector<int> rs = {10, 40, 160};
  absl::StatusOr<GridTable> table = PredictCostTable(trace, c, ps, rs);
  ASSERT_THAT(table, IsOk());
  for (size_t i = 0; i < ps.size(); ++i) {
    for (size_t j = 0; j < rs.size(); ++j) {
      EXPECT_EQ(table->value(i, j), PredictSeconds(c, *ComputeCostFeatures(trace, ps[i], rs[j])));
      if (i > 0) {
        EXPECT_LT(table->value(i - 1, j), table->value(i, j));
      }
    }
  }
  EXPECT_THAT(PredictCostTable(trace, c, {2, 1}, rs), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Noise-free measurements of `truth` on the given traces over a small grid.
std::vector<CostMeasurement> Measure(const std::vector<Trace>& traces,
                                     const CostCoefficients& truth) {
  std::vector<CostMeasurement> out;
  for (const Trace& trace : traces) {
    for (const int p : {1, 3, 8}) {
      for (const int r : {10, 50, 200}) {
        const CostFeatures f = *ComputeCostFeatures(trace, p, r);
        out.push_back({f, PredictSeconds(truth, f)});
      }
    }
  }
  return out;
}

void ExpectNear(double actual, double expected) {
  EXPECT_NEAR(actual, expected, 1e-6 * std::fabs(expected) + 1e-18);
}

TEST(CostModelTest, FitRecoversKnownCoefficientsFromTwoIndexes) {
  // Two indexes of different num_partitions make the centroid term identifiable.
  const std::vector<Trace> traces = {TraceOf(MakeIvfSimulation(1, 2000, 16, 10, 16, 20)),
                                     TraceOf(MakeIvfSimulation(2, 2000, 16, 10, 40, 20))};
  const CostCoefficients truth{3e-6, 2e-10, 5e-10, 4e-9};
  absl::StatusOr<CostFit> fit = FitCostModel(Measure(traces, truth));
  ASSERT_THAT(fit, IsOk());
  EXPECT_TRUE(fit->centroid_term_identified);
  ExpectNear(fit->coefficients.fixed_seconds, truth.fixed_seconds);
  ExpectNear(fit->coefficients.centroid_seconds, truth.centroid_seconds);
  ExpectNear(fit->coefficients.code_seconds, truth.code_seconds);
  ExpectNear(fit->coefficients.reorder_seconds, truth.reorder_seconds);
  ASSERT_EQ(fit->relative_errors.size(), 18u);
  EXPECT_LT(fit->max_abs_relative_error, 1e-9);
}

TEST(CostModelTest, OneIndexFoldsCentroidTermIntoFixedAndStillPredicts) {
  const std::vector<Trace> traces = {TraceOf(MakeIvfSimulation(1, 2000, 16, 10, 16, 20))};
  const CostCoefficients truth{3e-6, 2e-10, 5e-10, 4e-9};
  absl::StatusOr<CostFit> fit = FitCostModel(Measure(traces, truth));
  ASSERT_THAT(fit, IsOk());
  EXPECT_FALSE(fit->centroid_term_identified);
  EXPECT_EQ(fit->coefficients.centroid_seconds, 0.0);
  ExpectNear(fit->coefficients.fixed_seconds,
             truth.fixed_seconds + truth.centroid_seconds * 16 * 16);
  ExpectNear(fit->coefficients.code_seconds, truth.code_seconds);
  ExpectNear(fit->coefficients.reorder_seconds, truth.reorder_seconds);
  EXPECT_LT(fit->max_abs_relative_error, 1e-9);
}

TEST(CostModelTest, FitKeepsCoefficientsNonNegative) {
  // Times that fall with reorder work would need a negative c_reorder; NNLS pins it at 0.
  std::vector<CostMeasurement> m;
  for (const double codes : {1e3, 4e3, 1.6e4}) {
    for (const double reorder : {1e2, 1e3, 1e4}) {
      CostFeatures f{256, codes, reorder};
      m.push_back({f, 1e-5 + 1e-9 * codes - 5e-10 * reorder});
    }
  }
  absl::StatusOr<CostFit> fit = FitCostModel(m);
  ASSERT_THAT(fit, IsOk());
  EXPECT_GE(fit->coefficients.fixed_seconds, 0.0);
  EXPECT_GT(fit->coefficients.code_seconds, 0.0);
  EXPECT_EQ(fit->coefficients.reorder_seconds, 0.0);
  EXPECT_EQ(fit->coefficients.centroid_seconds, 0.0);
  EXPECT_GT(fit->max_abs_relative_error, 0.0);
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_DOUBLE_EQ(fit->relative_errors[i],
                     (PredictSeconds(fit->coefficients, m[i].features) - m[i].seconds_per_query) /
                         m[i].seconds_per_query);
  }
}

TEST(CostModelTest, BadMeasurementsAreInvalidArgument) {
  EXPECT_THAT(FitCostModel({}), StatusIs(absl::StatusCode::kInvalidArgument));
  const CostFeatures f{100, 1000, 100};
  EXPECT_THAT(FitCostModel({{f, 0.0}}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FitCostModel({{f, std::nan("")}}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FitCostModel({{{100, -1, 100}, 1e-3}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace nestor::tuning

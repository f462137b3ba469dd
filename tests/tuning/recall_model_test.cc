// The recall model (tuning/recall_model.h) against a brute-force simulated IVF search.
#include "tuning/recall_model.h"

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

const std::vector<int> kPartitionGrid = {1, 2, 3, 4, 6, 8, 12, 16, 24, 30};
const std::vector<int> kReorderGrid = {1, 5, 10, 12, 16, 20, 30, 50, 80, 120, 200, 400, 1000};

TEST(RecallModelTest, PredictRecallEqualsSimulatedSearchExactlyOnEveryGridPoint) {
  for (const uint32_t seed : {7u, 2023u}) {
    const IvfSimulation sim = MakeIvfSimulation(seed);
    const Trace trace = TraceOf(sim);
    ASSERT_THAT(ValidateTrace(trace), IsOk());
    double lowest = 1.0;
    double highest = 0.0;
    for (const int p : kPartitionGrid) {
      for (const int r : kReorderGrid) {
        const double simulated = sim.SearchRecall(p, r);
        absl::StatusOr<double> predicted = PredictRecall(trace, p, r);
        ASSERT_THAT(predicted, IsOk());
        EXPECT_EQ(*predicted, simulated) << "seed " << seed << " P " << p << " R " << r;
        lowest = std::min(lowest, simulated);
        highest = std::max(highest, simulated);
      }
    }
    // The grid spans the interesting range, so the equality above means something.
    EXPECT_LT(lowest, 0.5);
    EXPECT_GT(highest, 0.95);
  }
}

TEST(RecallModelTest, TableEqualsPointPredictionsBitForBit) {
  const IvfSimulation sim = MakeIvfSimulation(11);
  const Trace trace = TraceOf(sim);
  absl::StatusOr<GridTable> table = PredictRecallTable(trace, kPartitionGrid, kReorderGrid);
  ASSERT_THAT(table, IsOk());
  EXPECT_EQ(table->partitions_to_search, kPartitionGrid);
  EXPECT_EQ(table->reorder_k, kReorderGrid);
  ASSERT_EQ(table->values.size(), kPartitionGrid.size() * kReorderGrid.size());
  for (size_t i = 0; i < kPartitionGrid.size(); ++i) {
    for (size_t j = 0; j < kReorderGrid.size(); ++j) {
      absl::StatusOr<double> point = PredictRecall(trace, kPartitionGrid[i], kReorderGrid[j]);
      ASSERT_THAT(point, IsOk());
      EXPECT_EQ(table->value(i, j), *point);
      EXPECT_EQ(table->value(i, j), sim.SearchRecall(kPartitionGrid[i], kReorderGrid[j]));
    }
  }
}

TEST(RecallModelTest, RecallIsMonotoneInBothSettings) {
  const Trace trace = TraceOf(MakeIvfSimulation(5));
  absl::StatusOr<GridTable> table = PredictRecallTable(trace, kPartitionGrid, kReorderGrid);
  ASSERT_THAT(table, IsOk());
  for (size_t i = 0; i < kPartitionGrid.size(); ++i) {
    for (size_t j = 0; j < kReorderGrid.size(); ++j) {
      if (j > 0) {
        EXPECT_LE(table->value(i, j - 1), table->value(i, j));
      }
    }
  }
  // More partitions cannot lose a neighbour when R is unbounded (R >= all vectors).
  for (size_t i = 1; i < kPartitionGrid.size(); ++i) {
    EXPECT_LE(table->value(i - 1, kReorderGrid.size() - 1),
              table->value(i, kReorderGrid.size() - 1));
  }
}

TEST(RecallModelTest, ShallowTraceAgreesWithFullTraceWhereItReaches) {
  const IvfSimulation sim = MakeIvfSimulation(3);
  const Trace full = TraceOf(sim);
  const Trace shallow = TraceOf(sim, {.max_partitions = 8});
  for (const int p : {1, 2, 4, 8}) {
    for (const int r : kReorderGrid) {
      EXPECT_EQ(*PredictRecall(shallow, p, r), *PredictRecall(full, p, r));
    }
  }
  EXPECT_THAT(PredictRecall(shallow, 9, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, "record a deeper trace"));
  EXPECT_THAT(PredictRecallTable(shallow, {4, 12}, {10}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RecallModelTest, IndexConventionsClampPartitionsAndRaiseReorderToK) {
  const IvfSimulation sim = MakeIvfSimulation(9);
  const Trace trace = TraceOf(sim);
  EXPECT_EQ(*PredictRecall(trace, 1000, 50), *PredictRecall(trace, sim.num_partitions, 50));
  EXPECT_EQ(*PredictRecall(trace, 3, 1), *PredictRecall(trace, 3, sim.k));
  EXPECT_EQ(*PredictRecall(trace, sim.num_partitions, sim.num_vectors), 1.0);
}

TEST(RecallModelTest, BadArgumentsAreInvalidArgument) {
  const Trace trace = TraceOf(MakeIvfSimulation(1, 300, 4, 3, 6, 5, 5));
  EXPECT_THAT(PredictRecall(trace, 0, 10), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PredictRecall(trace, 1, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PredictRecall(Trace(), 1, 10), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PredictRecallTable(trace, {}, {10}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PredictRecallTable(trace, {2, 1}, {10}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PredictRecallTable(trace, {1}, {10, 10}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Trace broken = trace;
  broken.queries[0].neighbors[0].better_before_rank.clear();
  broken.queries[0].neighbors[0].partition_rank = 0;
  EXPECT_THAT(PredictRecall(broken, 1, 10), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace nestor::tuning

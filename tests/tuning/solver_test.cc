// The Lagrangian solver (tuning/solver.h) against brute-force enumeration.
#include "tuning/solver.h"

#include <algorithm>
#include <random>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/tuning/ivf_simulation.h"
#include "tests/tuning/test_util.h"
#include "tuning/cost_model.h"
#include "tuning/recall_model.h"
#include "tuning/trace.h"

namespace nestor::tuning {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

OperatingPoint Point(double recall, double seconds, int p = 0, int r = 0) {
  OperatingPoint point;
  point.partitions_to_search = p;
  point.reorder_k = r;
  point.predicted_recall = recall;
  point.predicted_seconds_per_query = seconds;
  return point;
}

// Random tables over an 8 x 9 grid, recall and cost non-decreasing along both axes.
std::pair<GridTable, GridTable> RandomMonotoneTables(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  GridTable recall, cost;
  recall.partitions_to_search = cost.partitions_to_search = {1, 2, 4, 8, 16, 32, 64, 128};
  recall.reorder_k = cost.reorder_k = {10, 20, 40, 80, 160, 320, 640, 1280, 2560};
  const size_t np = 8, nr = 9;
  recall.values.assign(np * nr, 0.0);
  cost.values.assign(np * nr, 0.0);
  for (size_t i = 0; i < np; ++i) {
    for (size_t j = 0; j < nr; ++j) {
      const double up = i > 0 ? recall.value(i - 1, j) : 0.0;
      const double left = j > 0 ? recall.value(i, j - 1) : 0.0;
      // Quantized like real recall (multiples of 1/1000), with plateaus.
      const double step = u(rng) < 0.2 ? 0.0 : std::floor(u(rng) * 60.0) / 1000.0;
      recall.value(i, j) = std::min(1.0, std::max(up, left) + step);
      const double cup = i > 0 ? cost.value(i - 1, j) : 1e-5;
      const double cleft = j > 0 ? cost.value(i, j - 1) : 1e-5;
      cost.value(i, j) = std::max(cup, cleft) + 1e-6 * u(rng);
    }
  }
  return {recall, cost};
}

// Every grid cell as a candidate.
std::vector<OperatingPoint> Cells(const GridTable& recall, const GridTable& cost) {
  return *GridCandidates(recall, cost);
}

void CheckMinCostAgainstEnumeration(const std::vector<OperatingPoint>& cells, double target) {
  double best_cost = -1.0;
  double best_recall = -1.0;
  for (const OperatingPoint& c : cells) {
    if (c.predicted_recall < target) continue;
    if (best_cost < 0 || c.predicted_seconds_per_query < best_cost ||
        (c.predicted_seconds_per_query == best_cost && c.predicted_recall > best_recall)) {
      best_cost = c.predicted_seconds_per_query;
      best_recall = c.predicted_recall;
    }
  }
  absl::StatusOr<TuningSolution> s = SolveMinCost(cells, target);
  if (best_cost < 0) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kOutOfRange)) << "target " << target;
    return;
  }
  ASSERT_THAT(s, IsOk()) << "target " << target;
  EXPECT_GE(s->chosen.predicted_recall, target);
  EXPECT_EQ(s->chosen.predicted_seconds_per_query, best_cost) << "target " << target;
  EXPECT_EQ(s->chosen.predicted_recall, best_recall) << "target " << target;
}

void CheckMaxRecallAgainstEnumeration(const std::vector<OperatingPoint>& cells, double budget) {
  double best_recall = -1.0;
  double best_cost = 0.0;
  for (const OperatingPoint& c : cells) {
    if (c.predicted_seconds_per_query > budget) continue;
    if (c.predicted_recall > best_recall ||
        (c.predicted_recall == best_recall && c.predicted_seconds_per_query < best_cost)) {
      best_recall = c.predicted_recall;
      best_cost = c.predicted_seconds_per_query;
    }
  }
  absl::StatusOr<TuningSolution> s = SolveMaxRecall(cells, budget);
  if (best_recall < 0) {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kOutOfRange)) << "budget " << budget;
    return;
  }
  ASSERT_THAT(s, IsOk()) << "budget " << budget;
  EXPECT_LE(s->chosen.predicted_seconds_per_query, budget);
  EXPECT_EQ(s->chosen.predicted_recall, best_recall) << "budget " << budget;
  EXPECT_EQ(s->chosen.predicted_seconds_per_query, best_cost) << "budget " << budget;
}

// Every target equal to a cell's recall (the hardest cases), plus a few in between; every
// budget equal to a cell's cost, plus a few in between.
void CheckAllConstraints(const std::vector<OperatingPoint>& cells) {
  std::vector<double> targets = {0.0, 0.25, 0.5, 0.9, 0.99, 1.0};
  std::vector<double> budgets;
  for (const OperatingPoint& c : cells) {
    targets.push_back(c.predicted_recall);
    budgets.push_back(c.predicted_seconds_per_query);
    budgets.push_back(c.predicted_seconds_per_query * 1.0001);
  }
  for (const double t : targets) CheckMinCostAgainstEnumeration(cells, t);
  for (const double b : budgets) CheckMaxRecallAgainstEnumeration(cells, b);
}

TEST(SolverTest, RandomMonotoneTablesMatchEnumeration) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const auto [recall, cost] = RandomMonotoneTables(seed);
    CheckAllConstraints(Cells(recall, cost));
  }
}

TEST(SolverTest, RandomPointCloudsMatchEnumeration) {
  // Not monotone at all: many dominated points and points above the hull.
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<OperatingPoint> cells;
    for (int i = 0; i < 60; ++i) {
      cells.push_back(Point(std::floor(u(rng) * 200) / 200, 1e-4 * std::floor(u(rng) * 100)));
    }
    CheckAllConstraints(cells);
  }
}

TEST(SolverTest, TablesFromSimulatedIndexMatchEnumeration) {
  const testing::IvfSimulation sim = testing::MakeIvfSimulation(2023);
  absl::StatusOr<Trace> trace = testing::SimulatedTrace(sim);
  ASSERT_THAT(trace, IsOk());
  const std::vector<int> ps = {1, 2, 3, 4, 6, 8, 12, 16, 24};
  const std::vector<int> rs = {10, 20, 40, 80, 160, 320, 640};
  absl::StatusOr<GridTable> recall = PredictRecallTable(*trace, ps, rs);
  absl::StatusOr<GridTable> cost =
      PredictCostTable(*trace, {2e-6, 1e-10, 4e-10, 3e-9}, ps, rs);
  ASSERT_THAT(recall, IsOk());
  ASSERT_THAT(cost, IsOk());
  CheckAllConstraints(Cells(*recall, *cost));
  absl::StatusOr<TuningSolution> s = SolveMinCost(*recall, *cost, 0.9);
  ASSERT_THAT(s, IsOk());
  EXPECT_GE(s->chosen.predicted_recall, 0.9);
  EXPECT_GT(s->chosen.partitions_to_search, 0);
  EXPECT_GT(s->chosen.reorder_k, 0);
}

TEST(SolverTest, ParetoIsTheNonDominatedSetAndHullPointsAreLagrangianOptima) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<OperatingPoint> cells;
    for (int i = 0; i < 80; ++i) cells.push_back(Point(u(rng), u(rng)));
    absl::StatusOr<TuningSolution> s = SolveMinCost(cells, 0.0);
    ASSERT_THAT(s, IsOk());
    // Brute-force non-dominated set (points here are distinct).
    size_t non_dominated = 0;
    for (const OperatingPoint& a : cells) {
      bool dominated = false;
      for (const OperatingPoint& b : cells) {
        dominated |= b.predicted_seconds_per_query <= a.predicted_seconds_per_query &&
                     b.predicted_recall >= a.predicted_recall &&
                     (b.predicted_seconds_per_query < a.predicted_seconds_per_query ||
                      b.predicted_recall > a.predicted_recall);
      }
      if (dominated) continue;
      ++non_dominated;
      EXPECT_TRUE(std::any_of(s->pareto.begin(), s->pareto.end(), [&](const OperatingPoint& p) {
        return p.predicted_recall == a.predicted_recall &&
               p.predicted_seconds_per_query == a.predicted_seconds_per_query;
      }));
    }
    EXPECT_EQ(s->pareto.size(), non_dominated);
    ASSERT_FALSE(s->hull.empty());
    EXPECT_LE(s->hull.size(), s->pareto.size());
    // Hull vertex i is the unique minimizer of cost - lambda * recall for lambda between
    // the slopes of its two hull edges.
    for (size_t i = 0; i < s->hull.size(); ++i) {
      auto slope = [&](size_t a, size_t b) {
        return (s->hull[b].predicted_seconds_per_query - s->hull[a].predicted_seconds_per_query) /
               (s->hull[b].predicted_recall - s->hull[a].predicted_recall);
      };
      const double lo = i == 0 ? 0.0 : slope(i - 1, i);
      const double hi = i + 1 == s->hull.size() ? lo * 2 + 10 : slope(i, i + 1);
      ASSERT_LT(lo, hi);
      const double lambda = (lo + hi) / 2;
      const double value =
          s->hull[i].predicted_seconds_per_query - lambda * s->hull[i].predicted_recall;
      for (const OperatingPoint& c : cells) {
        if (c.predicted_recall == s->hull[i].predicted_recall) continue;
        EXPECT_GT(c.predicted_seconds_per_query - lambda * c.predicted_recall, value);
      }
    }
  }
}

TEST(SolverTest, ParetoPointAboveHullBeatsLagrangianAnswer) {
  // B lies above the segment A-C, so no multiplier selects it, yet it is the cheapest
  // point with recall >= 0.75.
  const std::vector<OperatingPoint> cells = {Point(0.5, 1.0, 1), Point(0.8, 2.9, 2),
                                             Point(0.9, 3.0, 3)};
  absl::StatusOr<TuningSolution> s = SolveMinCost(cells, 0.75);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->chosen.partitions_to_search, 2);
  EXPECT_FALSE(s->chosen_from_hull);
  EXPECT_EQ(s->hull.size(), 2u);
  EXPECT_EQ(s->pareto.size(), 3u);
  // Max recall within 2.95 s is B as well.
  absl::StatusOr<TuningSolution> m = SolveMaxRecall(cells, 2.95);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->chosen.partitions_to_search, 2);
  EXPECT_FALSE(m->chosen_from_hull);
  // On the hull the multiplier finds C, with lambda near the A-C slope 2 / 0.4 = 5.
  absl::StatusOr<TuningSolution> c = SolveMinCost(cells, 0.85);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->chosen.partitions_to_search, 3);
  EXPECT_TRUE(c->chosen_from_hull);
  EXPECT_NEAR(c->lambda, 5.0, 1e-9);
}

TEST(SolverTest, UnreachableTargetIsOutOfRangeWithBestAchievableRecall) {
  const std::vector<OperatingPoint> cells = {Point(0.5, 1e-4, 1, 10), Point(0.93, 3e-4, 8, 40),
                                             Point(0.93, 5e-4, 16, 40)};
  EXPECT_THAT(SolveMinCost(cells, 0.95),
              StatusIs(absl::StatusCode::kOutOfRange,
                       absl::StrFormat("best achievable is recall %.6f at %.4g us/query "
                                       "(partitions_to_search=8, reorder_k=40)",
                                       0.93, 300.0)));
}

TEST(SolverTest, BudgetBelowCheapestIsOutOfRangeWithCheapestCost) {
  const std::vector<OperatingPoint> cells = {Point(0.5, 1e-4, 1, 10), Point(0.9, 3e-4, 8, 40)};
  EXPECT_THAT(SolveMaxRecall(cells, 5e-5),
              StatusIs(absl::StatusCode::kOutOfRange,
                       "cost budget 50 us/query is below the cheapest candidate: recall "
                       "0.500000 at 100 us/query (partitions_to_search=1"));
}

TEST(SolverTest, BadInputIsInvalidArgument) {
  const std::vector<OperatingPoint> cells = {Point(0.5, 1e-4)};
  EXPECT_THAT(SolveMinCost(std::vector<OperatingPoint>{}, 0.5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SolveMinCost(cells, 1.5), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SolveMinCost(cells, std::nan("")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SolveMaxRecall(cells, -1.0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SolveMinCost({Point(1.5, 1e-4)}, 0.5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SolveMinCost({Point(0.5, -1.0)}, 0.5),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto [recall, cost] = RandomMonotoneTables(1);
  cost.reorder_k.pop_back();
  EXPECT_THAT(SolveMinCost(recall, cost, 0.5), StatusIs(absl::StatusCode::kInvalidArgument));
  auto [recall2, cost2] = RandomMonotoneTables(1);
  cost2.values.pop_back();
  EXPECT_THAT(SolveMaxRecall(recall2, cost2, 1.0), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace nestor::tuning

// Chooses an operating point from predicted recall and cost by Lagrangian relaxation
// (Sun, Guo & Kumar, "Automating Nearest Neighbor Search Configuration with Constrained
// Optimization", ICLR 2023, section 3.3): for a multiplier lambda >= 0 the candidate
// minimizing  cost - lambda * recall  is found by evaluating the models over the grid
// (no searching); lambda is bisected until the constraint holds. Sweeping lambda from 0
// to infinity visits the lower convex hull of the (recall, cost) points, the speed-recall
// frontier reachable by the multiplier.
//
// Lagrangian relaxation only finds hull points, and a non-dominated point above the hull
// can be cheaper for a given target. After bisecting lambda the solver therefore also
// takes the cheapest non-dominated (Pareto) candidate meeting the constraint and returns
// whichever is cheaper (preferring the hull point on equal cost); the result is the exact
// optimum over the candidates. TuningSolution says which one won.
//
// Errors, by Abseil's rules:
//   INVALID_ARGUMENT  no candidates; tables of different axes or sizes; a recall not in
//                     [0, 1] or a cost not finite and >= 0; target not in [0, 1]; budget
//                     not finite and >= 0.
//   OUT_OF_RANGE      the constraint lies past what the candidates reach (target recall
//                     above the best predicted recall; budget below the cheapest cost).
//                     The request is well formed and could succeed with another grid or
//                     index (a deeper trace, more partitions), so it is neither
//                     INVALID_ARGUMENT nor a state precondition. The message gives the
//                     best achievable recall and its cost, or the cheapest cost.
#ifndef NESTOR_TUNING_SOLVER_H_
#define NESTOR_TUNING_SOLVER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tuning/grid.h"
#include "tuning/operating_point.h"

namespace nestor::tuning {

// Thread safety: a plain value.
struct TuningSolution {
  // The candidate chosen; its predicted_* fields hold the models' values.
  OperatingPoint chosen;
  // The multiplier where bisection stopped (unit: seconds per unit of recall, the
  // marginal price of recall at the hull point); 0 when the cheapest point already
  // satisfies the constraint.
  double lambda = 0.0;
  // True when `chosen` is the hull point found by the multiplier; false when a cheaper
  // non-dominated point above the hull was taken instead.
  bool chosen_from_hull = true;
  // Points optimal for some lambda >= 0 (lower convex hull of cost against recall), by
  // increasing cost and recall.
  std::vector<OperatingPoint> hull;
  // All non-dominated candidates (no other is at most as costly and at least as accurate
  // and better in one), by increasing cost and strictly increasing recall; of equal
  // (cost, recall) candidates the first listed is kept. A superset of `hull`.
  std::vector<OperatingPoint> pareto;
};

// Minimizes predicted_seconds_per_query subject to predicted_recall >= target_recall
// over `candidates` (each with predicted_* set). Ties: higher recall, then first listed.
absl::StatusOr<TuningSolution> SolveMinCost(absl::Span<const OperatingPoint> candidates,
                                            double target_recall);
// Maximizes predicted_recall subject to predicted_seconds_per_query <=
// cost_budget_seconds. Ties: lower cost, then first listed.
absl::StatusOr<TuningSolution> SolveMaxRecall(absl::Span<const OperatingPoint> candidates,
                                              double cost_budget_seconds);

// The same over a grid: recall_table (PredictRecallTable) and cost_table
// (PredictCostTable, seconds per query) must have identical axes; every grid cell is a
// candidate, listed row by row.
absl::StatusOr<TuningSolution> SolveMinCost(const GridTable& recall_table,
                                            const GridTable& cost_table,
                                            double target_recall);
absl::StatusOr<TuningSolution> SolveMaxRecall(const GridTable& recall_table,
                                              const GridTable& cost_table,
                                              double cost_budget_seconds);

// Candidates of a grid, row by row, with partitions_to_search, reorder_k and predicted_*
// filled in. INVALID_ARGUMENT when the tables' axes or sizes differ.
absl::StatusOr<std::vector<OperatingPoint>> GridCandidates(const GridTable& recall_table,
                                                           const GridTable& cost_table);

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_SOLVER_H_

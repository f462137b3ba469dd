#include "tuning/solver.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace nestor::tuning {
namespace {

constexpr int kMaxBisections = 200;

std::string Describe(const OperatingPoint& p) {
  return absl::StrFormat("recall %.6f at %.4g us/query (partitions_to_search=%d, reorder_k=%d)",
                         p.predicted_recall, 1e6 * p.predicted_seconds_per_query,
                         p.partitions_to_search, p.reorder_k);
}

absl::Status CheckCandidates(absl::Span<const OperatingPoint> candidates) {
  if (candidates.empty()) return absl::InvalidArgumentError("no candidate operating points");
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double r = candidates[i].predicted_recall;
    const double c = candidates[i].predicted_seconds_per_query;
    if (!(r >= 0.0 && r <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate ", i, ": predicted_recall must be in [0, 1], got ", r));
    }
    if (!std::isfinite(c) || c < 0.0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "candidate ", i, ": predicted_seconds_per_query must be finite and >= 0, got ", c));
    }
  }
  return absl::OkStatus();
}

// Index of the candidate minimizing cost - lambda * recall; ties: higher recall, then
// first listed.
size_t ArgminLagrangian(absl::Span<const OperatingPoint> c, double lambda) {
  size_t best = 0;
  double best_value = c[0].predicted_seconds_per_query - lambda * c[0].predicted_recall;
  for (size_t i = 1; i < c.size(); ++i) {
    const double value = c[i].predicted_seconds_per_query - lambda * c[i].predicted_recall;
    if (value < best_value ||
        (value == best_value && c[i].predicted_recall > c[best].predicted_recall)) {
      best = i;
      best_value = value;
    }
  }
  return best;
}

// Indices of the non-dominated candidates by increasing cost and strictly increasing
// recall (see TuningSolution::pareto).
std::vector<size_t> ParetoIndices(absl::Span<const OperatingPoint> c) {
  std::vector<size_t> order(c.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (c[a].predicted_seconds_per_query != c[b].predicted_seconds_per_query) {
      return c[a].predicted_seconds_per_query < c[b].predicted_seconds_per_query;
    }
    return c[a].predicted_recall > c[b].predicted_recall;
  });
  std::vector<size_t> pareto;
  for (const size_t i : order) {
    if (pareto.empty() || c[i].predicted_recall > c[pareto.back()].predicted_recall) {
      pareto.push_back(i);
    }
  }
  return pareto;
}

// Vertices of the lower convex hull (cost against recall) of the Pareto points: exactly
// the points that are the unique minimizer of cost - lambda * recall for some lambda.
std::vector<size_t> HullIndices(absl::Span<const OperatingPoint> c,
                                const std::vector<size_t>& pareto) {
  std::vector<size_t> hull;
  for (const size_t i : pareto) {
    while (hull.size() >= 2) {
      const OperatingPoint& a = c[hull[hull.size() - 2]];
      const OperatingPoint& b = c[hull.back()];
      // Keep b only if it lies strictly below the segment a -> c[i].
      const double cross =
          (b.predicted_recall - a.predicted_recall) *
              (c[i].predicted_seconds_per_query - a.predicted_seconds_per_query) -
          (b.predicted_seconds_per_query - a.predicted_seconds_per_query) *
              (c[i].predicted_recall - a.predicted_recall);
      if (cross > 0.0) break;
      hull.pop_back();
    }
    hull.push_back(i);
  }
  return hull;
}

TuningSolution Frontiers(absl::Span<const OperatingPoint> c) {
  TuningSolution s;
  const std::vector<size_t> pareto = ParetoIndices(c);
  for (const size_t i : pareto) s.pareto.push_back(c[i]);
  for (const size_t i : HullIndices(c, pareto)) s.hull.push_back(c[i]);
  return s;
}

// A multiplier at which the Lagrangian minimizer has the highest recall of all
// candidates (doubling from the cost spread; terminates since recall dominates as
// lambda grows).
double LargeLambda(absl::Span<const OperatingPoint> c, double max_recall) {
  double spread = 0.0;
  for (const OperatingPoint& p : c) spread = std::max(spread, p.predicted_seconds_per_query);
  double lambda = std::max(spread, 1e-300);
  for (int i = 0; i < 4000; ++i) {
    if (c[ArgminLagrangian(c, lambda)].predicted_recall >= max_recall) break;
    lambda *= 2.0;
  }
  return lambda;
}

}  // namespace

absl::StatusOr<TuningSolution> SolveMinCost(absl::Span<const OperatingPoint> candidates,
                                            double target_recall) {
  RETURN_IF_ERROR(CheckCandidates(candidates));
  if (!(target_recall >= 0.0 && target_recall <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_recall must be in [0, 1], got ", target_recall));
  }
  TuningSolution solution = Frontiers(candidates);
  const OperatingPoint& best_recall = solution.pareto.back();
  if (best_recall.predicted_recall < target_recall) {
    return absl::OutOfRangeError(absl::StrFormat(
        "target recall %.6f is unreachable with these candidates: best achievable is %s",
        target_recall, Describe(best_recall)));
  }

  // Bisect lambda: the minimizer's recall is non-decreasing in lambda.
  double lo = 0.0;
  double hi = 0.0;
  size_t at_hi = ArgminLagrangian(candidates, 0.0);
  if (candidates[at_hi].predicted_recall < target_recall) {
    hi = LargeLambda(candidates, best_recall.predicted_recall);
    at_hi = ArgminLagrangian(candidates, hi);
    for (int it = 0; it < kMaxBisections; ++it) {
      const double mid = lo + (hi - lo) / 2.0;
      if (mid <= lo || mid >= hi) break;
      const size_t at_mid = ArgminLagrangian(candidates, mid);
      if (candidates[at_mid].predicted_recall >= target_recall) {
        hi = mid;
        at_hi = at_mid;
      } else {
        lo = mid;
      }
    }
  }
  solution.lambda = hi;
  solution.chosen = candidates[at_hi];
  solution.chosen_from_hull = true;

  // The cheapest non-dominated point meeting the target (may lie above the hull).
  for (const OperatingPoint& p : solution.pareto) {
    if (p.predicted_recall >= target_recall) {
      if (p.predicted_seconds_per_query < solution.chosen.predicted_seconds_per_query) {
        solution.chosen = p;
        solution.chosen_from_hull = false;
      }
      break;
    }
  }
  return solution;
}

absl::StatusOr<TuningSolution> SolveMaxRecall(absl::Span<const OperatingPoint> candidates,
                                              double cost_budget_seconds) {
  RETURN_IF_ERROR(CheckCandidates(candidates));
  if (!std::isfinite(cost_budget_seconds) || cost_budget_seconds < 0.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cost_budget_seconds must be finite and >= 0, got ", cost_budget_seconds));
  }
  TuningSolution solution = Frontiers(candidates);
  const OperatingPoint& cheapest = solution.pareto.front();
  if (cheapest.predicted_seconds_per_query > cost_budget_seconds) {
    return absl::OutOfRangeError(absl::StrFormat(
        "cost budget %.4g us/query is below the cheapest candidate: %s",
        1e6 * cost_budget_seconds,
        Describe(cheapest)));
  }

  // Bisect lambda: the minimizer's cost is non-decreasing in lambda; keep the largest
  // multiplier whose minimizer fits the budget.
  double lo = 0.0;
  size_t at_lo = ArgminLagrangian(candidates, 0.0);
  double hi = LargeLambda(candidates, solution.pareto.back().predicted_recall);
  const size_t at_top = ArgminLagrangian(candidates, hi);
  if (candidates[at_top].predicted_seconds_per_query <= cost_budget_seconds) {
    lo = hi;
    at_lo = at_top;
  } else {
    for (int it = 0; it < kMaxBisections; ++it) {
      const double mid = lo + (hi - lo) / 2.0;
      if (mid <= lo || mid >= hi) break;
      const size_t at_mid = ArgminLagrangian(candidates, mid);
      if (candidates[at_mid].predicted_seconds_per_query <= cost_budget_seconds) {
        lo = mid;
        at_lo = at_mid;
      } else {
        hi = mid;
      }
    }
  }
  solution.lambda = lo;
  solution.chosen = candidates[at_lo];
  solution.chosen_from_hull = true;

  // The most accurate non-dominated point within budget (may lie above the hull).
  for (auto it = solution.pareto.rbegin(); it != solution.pareto.rend(); ++it) {
    if (it->predicted_seconds_per_query <= cost_budget_seconds) {
      if (it->predicted_recall > solution.chosen.predicted_recall) {
        solution.chosen = *it;
        solution.chosen_from_hull = false;
      }
      break;
    }
  }
  return solution;
}

absl::StatusOr<std::vector<OperatingPoint>> GridCandidates(const GridTable& recall_table,
                                                           const GridTable& cost_table) {
  const size_t np = recall_table.partitions_to_search.size();
  const size_t nr = recall_table.reorder_k.size();
  if (recall_table.partitions_to_search != cost_table.partitions_to_search ||
      recall_table.reorder_k != cost_table.reorder_k) {
    return absl::InvalidArgumentError(
        "recall and cost tables must have the same partitions_to_search and reorder_k axes");
  }
  if (recall_table.values.size() != np * nr || cost_table.values.size() != np * nr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tables must hold ", np, " x ", nr, " = ", np * nr, " values, got ",
        recall_table.values.size(), " (recall) and ", cost_table.values.size(), " (cost)"));
  }
  std::vector<OperatingPoint> candidates(np * nr);
  for (size_t i = 0; i < np; ++i) {
    for (size_t j = 0; j < nr; ++j) {
      OperatingPoint& p = candidates[i * nr + j];
      p.partitions_to_search = recall_table.partitions_to_search[i];
      p.reorder_k = recall_table.reorder_k[j];
      p.predicted_recall = recall_table.value(i, j);
      p.predicted_seconds_per_query = cost_table.value(i, j);
    }
  }
  return candidates;
}

absl::StatusOr<TuningSolution> SolveMinCost(const GridTable& recall_table,
                                            const GridTable& cost_table,
                                            double target_recall) {
  ASSIGN_OR_RETURN(const std::vector<OperatingPoint> candidates,
                   GridCandidates(recall_table, cost_table));
  return SolveMinCost(candidates, target_recall);
}

absl::StatusOr<TuningSolution> SolveMaxRecall(const GridTable& recall_table,
                                              const GridTable& cost_table,
                                              double cost_budget_seconds) {
  ASSIGN_OR_RETURN(const std::vector<OperatingPoint> candidates,
                   GridCandidates(recall_table, cost_table));
  return SolveMaxRecall(candidates, cost_budget_seconds);
}

}  // namespace nestor::tuning

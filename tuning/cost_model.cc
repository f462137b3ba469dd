#include "tuning/cost_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tuning/model_util.h"

namespace nestor::tuning {
namespace {

constexpr int kTerms = 5;  // fixed, centroid, code, reorder, per-code

std::array<double, kTerms> Row(const CostFeatures& f) {
  return {1.0, f.centroid_coordinates, f.code_coordinates, f.reorder_coordinates,
          f.codes_scanned};
}

bool IsFiniteNonNegative(double x) { return std::isfinite(x) && x >= 0.0; }

// Solves the s x s system a x = b in place by Gaussian elimination with partial pivoting.
// False when a pivot is below `tiny` (singular for our unit-scaled columns).
bool Solve(std::array<std::array<double, kTerms>, kTerms>& a, std::array<double, kTerms>& b,
           int s, double tiny) {
  for (int c = 0; c < s; ++c) {
    int pivot = c;
    for (int r = c + 1; r < s; ++r) {
      if (std::fabs(a[r][c]) > std::fabs(a[pivot][c])) pivot = r;
    }
    if (std::fabs(a[pivot][c]) < tiny) return false;
    std::swap(a[c], a[pivot]);
    std::swap(b[c], b[pivot]);
    for (int r = c + 1; r < s; ++r) {
      const double f = a[r][c] / a[c][c];
      for (int cc = c; cc < s; ++cc) a[r][cc] -= f * a[c][cc];
      b[r] -= f * b[c];
    }
  }
  for (int c = s - 1; c >= 0; --c) {
    double v = b[c];
    for (int cc = c + 1; cc < s; ++cc) v -= a[c][cc] * b[cc];
    b[c] = v / a[c][c];
  }
  return true;
}

}  // namespace

absl::StatusOr<CostFeatures> ComputeCostFeatures(const Trace& trace, int partitions_to_search,
                                                 int reorder_k, int64_t max_codes) {
  RETURN_IF_ERROR(internal::CheckShape(trace));
  ASSIGN_OR_RETURN(const int p, internal::EffectivePartitions(trace, partitions_to_search));
  RETURN_IF_ERROR(internal::CheckReorder(reorder_k));
  RETURN_IF_ERROR(internal::CheckMaxCodes(max_codes));
  const uint64_t r = static_cast<uint64_t>(std::max(reorder_k, trace.k));
  uint64_t codes = 0;
  uint64_t reordered = 0;
  for (const QueryTrace& q : trace.queries) {
    if (q.codes_before_rank.size() != static_cast<size_t>(trace.max_partitions) + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed trace: expected ", trace.max_partitions + 1, " code prefix sums, got ",
          q.codes_before_rank.size()));
    }
    const uint64_t scanned = q.codes_before_rank[q.PartitionsOpened(p, max_codes)];
    codes += scanned;
    reordered += std::min(r, scanned);
  }
  const double nq = static_cast<double>(trace.queries.size());
  const int code_dim = trace.shortlist_dim > 0 ? trace.shortlist_dim : trace.dimension;
  CostFeatures f;
  f.centroid_coordinates =
      static_cast<double>(trace.num_partitions) * static_cast<double>(trace.dimension);
  f.code_coordinates = static_cast<double>(codes) / nq * code_dim;
  f.reorder_coordinates = static_cast<double>(reordered) / nq * trace.dimension;
  f.codes_scanned = static_cast<double>(codes) / nq;
  return f;
}

double PredictSeconds(const CostCoefficients& c, const CostFeatures& f) {
  return c.fixed_seconds + c.centroid_seconds * f.centroid_coordinates +
         c.code_seconds * f.code_coordinates + c.reorder_seconds * f.reorder_coordinates +
         c.per_code_seconds * f.codes_scanned;
}

absl::StatusOr<GridTable> PredictCostTable(const Trace& trace,
                                           const CostCoefficients& coefficients,
                                           absl::Span<const int> partitions_to_search,
                                           absl::Span<const int> reorder_k) {
  RETURN_IF_ERROR(internal::CheckAxes(partitions_to_search, reorder_k));
  GridTable table;
  table.partitions_to_search.assign(partitions_to_search.begin(), partitions_to_search.end());
  table.reorder_k.assign(reorder_k.begin(), reorder_k.end());
  table.values.resize(partitions_to_search.size() * reorder_k.size());
  for (size_t i = 0; i < partitions_to_search.size(); ++i) {
    for (size_t j = 0; j < reorder_k.size(); ++j) {
      ASSIGN_OR_RETURN(const CostFeatures f,
                       ComputeCostFeatures(trace, partitions_to_search[i], reorder_k[j]));
      table.value(i, j) = PredictSeconds(coefficients, f);
    }
  }
  return table;
}

absl::StatusOr<CostFit> FitCostModel(absl::Span<const CostMeasurement> measurements) {
  if (measurements.empty()) {
    return absl::InvalidArgumentError("FitCostModel needs at least one measurement, got 0");
  }
  const size_t n = measurements.size();
  for (size_t i = 0; i < n; ++i) {
    const CostMeasurement& m = measurements[i];
    if (!std::isfinite(m.seconds_per_query) || m.seconds_per_query <= 0.0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "measurement ", i, ": seconds_per_query must be finite and > 0, got ",
          m.seconds_per_query));
    }
    if (!IsFiniteNonNegative(m.features.centroid_coordinates) ||
        !IsFiniteNonNegative(m.features.code_coordinates) ||
        !IsFiniteNonNegative(m.features.reorder_coordinates) ||
        !IsFiniteNonNegative(m.features.codes_scanned)) {
      return absl::InvalidArgumentError(
          absl::StrCat("measurement ", i, ": features must be finite and >= 0"));
    }
  }

  // Weighted design matrix: row i is features / y_i, target 1 (relative errors). Columns
  // are scaled to unit norm so that the normal equations are well conditioned.
  std::array<double, kTerms> norm{};
  for (const CostMeasurement& m : measurements) {
    const auto row = Row(m.features);
    for (int t = 0; t < kTerms; ++t) {
      const double x = row[t] / m.seconds_per_query;
      norm[t] += x * x;
    }
  }
  for (double& v : norm) v = std::sqrt(v);
  // gram = X^T X and rhs = X^T 1 on the scaled columns.
  std::array<std::array<double, kTerms>, kTerms> gram{};
  std::array<double, kTerms> rhs{};
  for (const CostMeasurement& m : measurements) {
    const auto row = Row(m.features);
    std::array<double, kTerms> x{};
    for (int t = 0; t < kTerms; ++t) {
      x[t] = norm[t] > 0.0 ? row[t] / m.seconds_per_query / norm[t] : 0.0;
    }
    for (int a = 0; a < kTerms; ++a) {
      rhs[a] += x[a];
      for (int b = 0; b < kTerms; ++b) gram[a][b] += x[a] * x[b];
    }
  }

  const double c0 = measurements[0].features.centroid_coordinates;
  const bool centroid_identified =
      std::any_of(measurements.begin(), measurements.end(), [&](const CostMeasurement& m) {
        return m.features.centroid_coordinates != c0;
      });

  // Exact NNLS over the 2^5 active sets; residual ||1 - X x||^2 computed row by row.
  std::array<double, kTerms> best{};
  double best_residual = static_cast<double>(n);  // the empty set
  for (int mask = 1; mask < (1 << kTerms); ++mask) {
    if (!centroid_identified && (mask & 2)) continue;
    int idx[kTerms];
    int s = 0;
    for (int t = 0; t < kTerms; ++t) {
      if (mask & (1 << t)) idx[s++] = t;
    }
    std::array<std::array<double, kTerms>, kTerms> a{};
    std::array<double, kTerms> b{};
    for (int u = 0; u < s; ++u) {
      b[u] = rhs[idx[u]];
      for (int v = 0; v < s; ++v) a[u][v] = gram[idx[u]][idx[v]];
    }
    if (!Solve(a, b, s, 1e-12)) continue;
    bool feasible = true;
    std::array<double, kTerms> x{};
    for (int u = 0; u < s; ++u) {
      if (!(b[u] >= 0.0)) feasible = false;
      x[idx[u]] = b[u];
    }
    if (!feasible) continue;
    double residual = 0.0;
    for (const CostMeasurement& m : measurements) {
      const auto row = Row(m.features);
      double e = 1.0;
      for (int t = 0; t < kTerms; ++t) {
        if (norm[t] > 0.0) e -= row[t] / m.seconds_per_query / norm[t] * x[t];
      }
      residual += e * e;
    }
    if (residual < best_residual - (1e-14 * static_cast<double>(n) + 1e-9 * best_residual)) {
      best_residual = residual;
      best = x;
    }
  }

  CostFit fit;
  fit.centroid_term_identified = centroid_identified;
  std::array<double, kTerms> coef{};
  for (int t = 0; t < kTerms; ++t) coef[t] = norm[t] > 0.0 ? best[t] / norm[t] : 0.0;
  fit.coefficients.fixed_seconds = coef[0];
  fit.coefficients.centroid_seconds = coef[1];
  fit.coefficients.code_seconds = coef[2];
  fit.coefficients.reorder_seconds = coef[3];
  fit.coefficients.per_code_seconds = coef[4];
  fit.relative_errors.reserve(n);
  for (const CostMeasurement& m : measurements) {
    const double e = (PredictSeconds(fit.coefficients, m.features) - m.seconds_per_query) /
                     m.seconds_per_query;
    fit.relative_errors.push_back(e);
    fit.max_abs_relative_error = std::max(fit.max_abs_relative_error, std::fabs(e));
  }
  return fit;
}

}  // namespace nestor::tuning

// Seconds per query of an IVF search with compressed codes and exact reorder, modelled
// per stage (Sun, Guo & Kumar, "Automating Nearest Neighbor Search Configuration with
// Constrained Optimization", ICLR 2023, section 3.2: cost is linear in the work of each
// stage, with coefficients calibrated from a few short real measurements):
//
//   seconds(P, R) = c0
//                 + c_centroid * num_partitions * dimension                 (score centroids)
//                 + c_code     * E[codes scanned at P] * code_dim           (scan codes)
//                 + c_reorder  * E[min(R, codes scanned at P)] * dimension  (exact reorder)
//                 + c_per_code * E[codes scanned at P]                      (per-code keys)
//
// The last term is the work per scanned code that does not grow with code_dim (key
// computation, heap test); it is identified only when calibration spans several scan
// dimensions (the funnel's shortlist_dim), and otherwise stays 0 (collinear with the
// code term).
// where code_dim is the trace's shortlist_dim (0: dimension), R is raised to k as the
// index does, and the expectations are means over the trace's queries (the scan cannot
// keep more candidates than it saw).
#ifndef NESTOR_TUNING_COST_MODEL_H_
#define NESTOR_TUNING_COST_MODEL_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tuning/grid.h"
#include "tuning/trace.h"

namespace nestor::tuning {

// Coefficients of the model, all >= 0.
struct CostCoefficients {
  double fixed_seconds = 0.0;     // c0: seconds per query
  double centroid_seconds = 0.0;  // c_centroid: seconds per centroid coordinate scored
  double code_seconds = 0.0;      // c_code: seconds per code coordinate scanned
  double reorder_seconds = 0.0;   // c_reorder: seconds per float coordinate re-scored
  double per_code_seconds = 0.0;  // c_per_code: seconds per code scanned
};

// The work of one query per stage, in coordinates (multiply-adds) per query.
struct CostFeatures {
  double centroid_coordinates = 0.0;  // num_partitions * dimension
  double code_coordinates = 0.0;      // E[codes scanned at P] * code_dim
  double reorder_coordinates = 0.0;   // E[min(R, codes scanned at P)] * dimension
  double codes_scanned = 0.0;         // E[codes scanned at P]
};

// Features of (partitions_to_search, reorder_k) from the trace. O(num_queries).
// INVALID_ARGUMENT as PredictRecall (P or R < 1, P beyond max_partitions, no queries).
// With max_codes > 0 (SearchParams::max_codes) each query scans the codes of the
// QueryTrace::PartitionsOpened(P, max_codes) partitions it opens; INVALID_ARGUMENT when
// max_codes < 0.
absl::StatusOr<CostFeatures> ComputeCostFeatures(const Trace& trace, int partitions_to_search,
                                                 int reorder_k, int64_t max_codes = 0);

// c0 + sum of coefficient * feature. Unit: seconds per query.
double PredictSeconds(const CostCoefficients& coefficients, const CostFeatures& features);

// Predicted seconds per query over a grid; same axes rules and errors as
// PredictRecallTable (tuning/recall_model.h), so the two tables line up for the solver.
absl::StatusOr<GridTable> PredictCostTable(const Trace& trace,
                                           const CostCoefficients& coefficients,
                                           absl::Span<const int> partitions_to_search,
                                           absl::Span<const int> reorder_k);

// One short real measurement: the features of the setting measured (ComputeCostFeatures
// with that index's trace) and the mean wall time per query observed.
struct CostMeasurement {
  CostFeatures features;
  double seconds_per_query = 0.0;  // > 0
};

struct CostFit {
  CostCoefficients coefficients;
  // (predicted - measured) / measured per measurement, in input order.
  std::vector<double> relative_errors;
  double max_abs_relative_error = 0.0;
  // False when every measurement has the same centroid_coordinates (one index): the
  // fixed and centroid terms are then indistinguishable and the centroid term is folded
  // into fixed_seconds (centroid_seconds = 0), which predicts the same for that index.
  bool centroid_term_identified = false;
};

// Non-negative least-squares fit of the coefficients minimizing the sum of squared
// relative errors (rows weighted by 1 / measured seconds, so fast and slow settings count
// alike). Exact NNLS by enumerating the 2^5 active sets (each solved by normal equations
// on unit-scaled columns); ties between equally good active sets go to the one with the
// lowest bit mask (fixed term first). Measurements from several indexes (different
// num_partitions * dimension) identify the centroid term; see CostFit.
// INVALID_ARGUMENT when empty, or a time is not finite and > 0, or a feature is
// negative or not finite.
absl::StatusOr<CostFit> FitCostModel(absl::Span<const CostMeasurement> measurements);

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_COST_MODEL_H_

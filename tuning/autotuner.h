// The offline autotuner end to end over a built partitioned index (Sun, Guo & Kumar,
// "Automating Nearest Neighbor Search Configuration with Constrained Optimization",
// ICLR 2023): record one trace of per-stage neighbour ranks for a sample of tuning
// queries with exact ground truth, predict recall of every (partitions_to_search,
// reorder_k) of a grid from it, calibrate the per-stage cost model with a few short
// timed runs on this machine, solve the constrained problem with the Lagrangian solver,
// and measure a handful of frontier points (and the chosen one) for the report.
//
// Nothing here changes the index: the result is a set of operating points
// (tuning/operating_point.h) the caller may apply as search defaults.
#ifndef NESTOR_TUNING_AUTOTUNER_H_
#define NESTOR_TUNING_AUTOTUNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "index/index.h"
#include "tuning/cost_model.h"
#include "tuning/grid.h"
#include "tuning/operating_point.h"
#include "tuning/solver.h"
#include "tuning/trace.h"

namespace nestor::tuning {

// Queries sampled from the indexed data ("leave one out"). When there is no query log,
// tuning queries may be copies of indexed vectors; each would then find itself at
// distance 0, which held-out queries never do. Passing `self_ids` (num_queries ids, the
// indexed vector each query copies) makes every function below treat query i as if
// self_ids[i] were not indexed: the oracle skips it, the trace gives it no approximate
// key (it competes with no neighbour), and measurement searches k + 1 neighbours with
// reorder_k + 1 candidates and drops it, which returns exactly what the index without
// that vector would (its own partition is probed first and its code scores best, so it
// takes the one extra candidate slot). Empty: queries are not from the data.

// Exact top-k ids of each query (num_queries x k, nearest first) from an exact index
// over the same vectors (the oracle). INVALID_ARGUMENT when the index holds fewer than k
// (+1 with self_ids) vectors.
absl::StatusOr<std::vector<DatapointId>> ExactNeighborIds(
    const Index& exact, absl::Span<const float> queries, int k,
    absl::Span<const DatapointId> self_ids = {});

// The trace of a built partitioned index (index/tuning_trace.h feeding TraceBuilder) for
// `queries` (num_queries x dimension) whose exact top-k ids are `true_ids` (num_queries x
// k). max_partitions as TraceOptions (0 = num_partitions). INVALID_ARGUMENT when a true
// id is not in the index or sizes disagree; the scan's errors otherwise.
// `shortlist_dim` > 0 records the trace of the funnel's scan (SearchParams.shortlist_dim):
// code ranks on the first shortlist_dim coordinates, so that PredictRecall(trace, P, S)
// is the recall of a search with partitions_to_search P, shortlist_dim and
// shortlist_size S (reorder_k unset: the whole shortlist re-scored exactly).
absl::StatusOr<Trace> BuildIndexTrace(const Index& index, absl::Span<const float> queries,
                                      absl::Span<const DatapointId> true_ids, int k,
                                      int max_partitions,
                                      absl::Span<const DatapointId> self_ids = {},
                                      int shortlist_dim = 0);

// Runs `queries` one at a time on one thread with the given settings and measures recall@k
// against `true_ids`, QPS and latency percentiles (the ann-benchmarks protocol). Fills
// the measured_* and latency fields of the returned point. `max_queries` > 0 uses only
// the first max_queries queries. `shortlist_dim` > 0 measures the funnel instead:
// SearchParams.shortlist_dim / shortlist_size set, reorder_k ignored (left unset, so the
// whole shortlist is re-scored exactly, as BuildIndexTrace's funnel trace models).
// `max_codes` > 0 sets SearchParams::max_codes (partitions_to_search is then the cap).
absl::StatusOr<OperatingPoint> MeasureOperatingPoint(const Index& index,
                                                     absl::Span<const float> queries,
                                                     absl::Span<const DatapointId> true_ids,
                                                     int k, int partitions_to_search,
                                                     int reorder_k, int max_queries = 0,
                                                     absl::Span<const DatapointId> self_ids = {},
                                                     int shortlist_dim = 0,
                                                     int shortlist_size = 0,
                                                     int64_t max_codes = 0);

// True when a and b are the same search settings (P, reorder_k, shortlist_dim,
// shortlist_size, max_codes).
bool SameSettings(const OperatingPoint& a, const OperatingPoint& b);
// "P=8 R=40", "P=9 max_codes=2196 R=10" or "P=8 funnel 64d x 80" for reports.
std::string DescribeSettings(const OperatingPoint& point);

// Candidate axes used when AutotuneOptions leaves them empty. Partitions: every value up
// to 16, then steps growing by about 1/8, up to `max_partitions`. Reorder: multiples of k
// from k to 50k (int8 codes) or just {k} (float codes, where reorder_k does nothing).
std::vector<int> DefaultPartitionsAxis(int max_partitions);
std::vector<int> DefaultReorderAxis(int k, bool uses_codes);
// Budgets in units of the mean partition size, relative to P, tried with every P >= 2
// when AutotuneOptions leaves max_codes_steps at its default: {-1, -0.75, ..., +0.5}.
std::vector<double> DefaultMaxCodesSteps();
// The max_codes candidates combined with partitions_to_search P (the cap): for each step
// s, round((P + s) * mean_partition_size), keeping values >= 1 (and representable),
// strictly increasing and without duplicates. Empty for P < 2 (one partition is always
// opened).
std::vector<int64_t> MaxCodesAxis(int partitions_to_search, double mean_partition_size,
                                  absl::Span<const double> steps);
// Trace depth used when AutotuneOptions.max_partitions is 0: min(num_partitions,
// max(32, num_partitions / 4)).
int DefaultMaxPartitions(int num_partitions);

struct AutotuneOptions {
  // The k of recall@k, >= 1.
  int k = 10;
  // Candidate axes (strictly increasing); empty picks the defaults above. Every
  // partitions_to_search must be <= max_partitions.
  std::vector<int> partitions_to_search;
  std::vector<int> reorder_k;
  // The funnel (SearchParams.shortlist_dim / shortlist_size; MRL adaptive retrieval):
  // scan dimensions tried, 0 = funnel off (the full-dimension scan over the reorder_k
  // axis). Empty = {0}. Each shortlist_dim > 0 must be allowed by the index's
  // matryoshka_dims; one trace is recorded per shortlist_dim and its candidates are
  // (partitions_to_search, shortlist_size) with reorder_k unset.
  std::vector<int> shortlist_dims;
  // Shortlist sizes tried with every shortlist_dim > 0 (strictly increasing, >= 1);
  // empty = the reorder_k axis.
  std::vector<int> shortlist_sizes;
  // The budget knob (SearchParams::max_codes; FAISS's max_codes), a finer step than
  // partitions_to_search: a query stops opening partitions once those opened hold the
  // budget, so with cap P it opens P - 1 or P (or fewer) by the size of its nearest
  // partitions. Candidates (P, max_codes, R) for P in max_codes_partitions (empty = every
  // P >= 2 of the partitions axis), max_codes in MaxCodesAxis(P, num_vectors /
  // num_partitions, max_codes_steps), R in max_codes_reorder_k (empty = the reorder
  // axis), full-dimension scan only (never with a funnel). Empty max_codes_steps: no
  // budget candidates. Steps must be finite and within +-num_partitions
  // (INVALID_ARGUMENT otherwise).
  std::vector<double> max_codes_steps = DefaultMaxCodesSteps();
  std::vector<int> max_codes_partitions;
  std::vector<int> max_codes_reorder_k;
  // Partitions ranked in the trace; 0 = DefaultMaxPartitions (or the largest
  // partitions_to_search given, if larger).
  int max_partitions = 0;
  // Goal: with max_seconds_per_query > 0, the best recall whose predicted cost fits
  // (SolveMaxRecall); otherwise the cheapest settings with predicted recall >=
  // target_recall (SolveMinCost).
  double target_recall = 0.95;
  double max_seconds_per_query = 0.0;
  // Cost calibration: queries per timed run and runs per point (the fastest counts).
  int calibration_queries = 200;
  int calibration_repeats = 2;
  // Frontier points measured (evenly spread over the Pareto set, plus the chosen one);
  // 0 measures only the chosen point. Queries per measurement: 0 = all tuning queries.
  int measure_points = 8;
  int measure_queries = 0;
  // Called with a stage name and the fraction of the whole run done, in [0, 1].
  std::function<void(absl::string_view stage, double fraction)> progress;
};

// One timed calibration run.
struct CalibrationPoint {
  int partitions_to_search = 0;
  int reorder_k = 0;
  int shortlist_dim = 0;   // 0: funnel off
  int shortlist_size = 0;
  double predicted_seconds_per_query = 0.0;  // by the fitted model
  double measured_seconds_per_query = 0.0;
};

struct AutotuneResult {
  int k = 0;
  int num_partitions = 0;
  int dimension = 0;
  uint64_t num_vectors = 0;
  int num_queries = 0;
  int max_partitions = 0;
  std::string code_type;  // "int8" or "float"
  // Predicted tables of the full-dimension scan (shortlist_dim 0 in the space; empty
  // axes when it is not).
  GridTable recall_table;
  GridTable cost_table;
  // One pair per shortlist_dim > 0 tried: rows partitions_to_search, columns
  // shortlist_size (GridTable.reorder_k holds the shortlist sizes).
  struct FunnelTables {
    int shortlist_dim = 0;
    GridTable recall_table;
    GridTable cost_table;
  };
  std::vector<FunnelTables> funnel_tables;
  CostFit cost_fit;
  std::vector<CalibrationPoint> calibration;
  // Predicted hull and Pareto set and the predicted choice.
  TuningSolution solution;
  // The measured frontier points, by increasing predicted cost (includes the chosen).
  std::vector<OperatingPoint> frontier;
  // solution.chosen with its measured fields.
  OperatingPoint chosen;
  // Wall time: trace, calibration, the whole run (measurement of the frontier included).
  double trace_seconds = 0.0;
  double calibration_seconds = 0.0;
  double tuning_seconds = 0.0;
};

// Tunes `index` (built, partitioned) with `queries` (num_queries x dimension) and their
// exact top-k ids `true_ids` (num_queries x k, ExactNeighborIds). Errors: those of
// BuildIndexTrace and the models; INVALID_ARGUMENT for bad options; OUT_OF_RANGE from the
// solver when the goal is unreachable, its message stating the best achievable recall
// (and its cost) or the cheapest cost.
absl::StatusOr<AutotuneResult> Autotune(const Index& index, absl::Span<const float> queries,
                                        absl::Span<const DatapointId> true_ids,
                                        const AutotuneOptions& options,
                                        absl::Span<const DatapointId> self_ids = {});

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_AUTOTUNER_H_

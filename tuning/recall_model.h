// Recall@k of an IVF search with compressed codes and exact reorder, predicted from a
// Trace without searching (Sun, Guo & Kumar, "Automating Nearest Neighbor Search
// Configuration with Constrained Optimization", ICLR 2023: recall of every setting is a
// function of the per-stage ranks of the true neighbours).
//
// A true neighbour counts as found for (P, R) iff NeighborTrace::reachable_at(P) and
// CodeRank(P) < R (see tuning/trace.h). Predicted recall@k is
//   (neighbours found over all queries) / (num_queries * k),
// which is the mean over queries of |approximate top-k ∩ exact top-k| / k. The
// prediction is exact for a search that behaves as modelled, ties of approximate keys
// included when they are broken by the smaller vector index.
//
// Index conventions are applied as PartitionedIndex applies them: partitions_to_search
// above num_partitions is clamped to num_partitions, and reorder_k below k is raised to
// k.
#ifndef NESTOR_TUNING_RECALL_MODEL_H_
#define NESTOR_TUNING_RECALL_MODEL_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tuning/grid.h"
#include "tuning/trace.h"

namespace nestor::tuning {

// Predicted recall@k in [0, 1] for one setting. O(num_queries * k).
// INVALID_ARGUMENT when partitions_to_search < 1 or reorder_k < 1, when the trace has
// no queries or is malformed, or when partitions_to_search (after clamping to
// num_partitions) exceeds the trace's max_partitions (record a deeper trace).
absl::StatusOr<double> PredictRecall(const Trace& trace, int partitions_to_search,
                                     int reorder_k);

// The same with a budget of max_codes codes per query (SearchParams::max_codes; 0 = no
// budget, equal to the call above): query q opens P_q = QueryTrace::PartitionsOpened(P,
// max_codes) partitions, and its neighbour n counts as found iff reachable_at(P_q) and
// CodeRank(P_q) < R. O(num_queries * k). Errors as above; max_codes < 0 is
// INVALID_ARGUMENT.
absl::StatusOr<double> PredictRecall(const Trace& trace, int partitions_to_search,
                                     int64_t max_codes, int reorder_k);

// Predicted recall@k over a whole grid in one pass: the returned table has the given
// axes and value(i, j) == PredictRecall(trace, partitions_to_search[i], reorder_k[j])
// bit for bit. Cost O(num_queries * k * |P| * log |R| + |P| * |R|). Axes must be
// non-empty and strictly increasing; same errors as PredictRecall.
absl::StatusOr<GridTable> PredictRecallTable(const Trace& trace,
                                             absl::Span<const int> partitions_to_search,
                                             absl::Span<const int> reorder_k);

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_RECALL_MODEL_H_

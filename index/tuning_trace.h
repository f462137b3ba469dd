// What the offline autotuner (tuning/, Sun, Guo & Kumar, "Automating Nearest Neighbor
// Search Configuration with Constrained Optimization", ICLR 2023) needs to see of a built
// partitioned index: for each tuning query, the full centroid ranking and the approximate
// key of every vector in the best-ranked partitions, computed by the very code the search
// runs (so predicted recall equals measured recall). Plain arrays only: index/ does not
// depend on tuning/; tuning/index_trace.h turns them into a tuning::Trace.
#ifndef NESTOR_INDEX_TUNING_TRACE_H_
#define NESTOR_INDEX_TUNING_TRACE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "index/index.h"

namespace nestor {

// Dense numbering of the vectors of a built partitioned index: partition by partition,
// row by row, so that ordering vectors by dense index orders them exactly as the int8
// scan breaks ties of equal approximate keys (by partition, then row).
struct TuningScanLayout {
  int num_partitions = 0;
  int dimension = 0;
  // partition_of[v]: partition of dense vector v. Length n (live vectors).
  std::vector<uint32_t> partition_of;
  // ids[v]: datapoint id of dense vector v. Length n.
  std::vector<DatapointId> ids;
};

// Called once per query, in order, with the read lock of the index held (do not call the
// index from it):
//   query:          0-based query number;
//   centroid_order: partition ids nearest first, the first `max_partitions` of the
//                   query's centroid ranking as the search ranks them;
//   approx_keys:    n keys by dense index; smaller is nearer; the key the scan compares
//                   (int8 codes: the approximate key of the integer scan; float codes:
//                   the exact key). Only vectors of the partitions in centroid_order hold
//                   keys; the others hold +infinity. The visitor may overwrite keys
//                   (e.g. +infinity to leave a vector out); they are reset afterwards.
// A non-OK status stops the scan and is returned.
using TuningScanVisitor =
    std::function<absl::Status(size_t query, absl::Span<const uint32_t> centroid_order,
                               absl::Span<float> approx_keys)>;

// Scans `queries` (num_queries x dimension floats, full dimension, finite) against a
// built partitioned index, filling `layout` and calling `visit` per query.
// `max_partitions` in 1..num_partitions (0 = num_partitions). Cost per query: scoring
// all centroids plus scanning the codes of the first max_partitions partitions, about a
// search with partitions_to_search = max_partitions.
// Errors: INVALID_ARGUMENT (not a partitioned index, bad sizes, max_partitions out of
// range, non-finite query), FAILED_PRECONDITION (not built).
//
// Thread safety: takes the index's reader lock for the whole scan; concurrent searches
// continue, writes wait.
absl::Status ScanForTuning(const Index& index, absl::Span<const float> queries,
                           int max_partitions, TuningScanLayout* layout,
                           const TuningScanVisitor& visit);

// The same scan as the funnel search (SearchParams.shortlist_dim = scan_dim) computes
// it: approximate keys on the first `scan_dim` coordinates (int8 codes: the integer scan
// of the first scan_dim code bytes with the search's own query preparation and key
// computation at that prefix; float codes: the exact key of the float prefix). scan_dim
// 0 = dimension (the call above). INVALID_ARGUMENT when scan_dim is not allowed by
// IndexOptions.matryoshka_dims.
absl::Status ScanForTuning(const Index& index, absl::Span<const float> queries,
                           int max_partitions, int scan_dim, TuningScanLayout* layout,
                           const TuningScanVisitor& visit);

}  // namespace nestor

#endif  // NESTOR_INDEX_TUNING_TRACE_H_

// What the autotuner records once per tuning query, independent of how it was produced:
// where each true neighbour ranks at each stage of an IVF search with compressed codes
// and exact reorder. Recall of any (partitions_to_search, reorder_k) is then predicted
// from these ranks without searching again (Sun, Guo & Kumar, "Automating Nearest
// Neighbor Search Configuration with Constrained Optimization", ICLR 2023, section 3).
//
// The search being modelled (index/partitioned_index.h with int8 codes): a query scores
// all centroids, scans the codes of its best P = partitions_to_search partitions, keeps
// the R = reorder_k candidates with the best approximate (code) score and re-scores them
// exactly; the top k are the exact best among those R. A true top-k neighbour n is
// therefore returned iff
//   (a) partition_rank(n) < P                        (its partition is probed), and
//   (b) CodeRank(n, P) < R                           (fewer than R probed vectors beat
//                                                     it on the approximate score),
// because an exact top-k vector stays in the exact top k of any candidate set holding it.
//
// One Trace describes one "code scan configuration" (the stage whose ranks it records):
// today the full-dimension int8 scan; with Matryoshka shortlists (issue #4) one Trace is
// recorded per shortlist_dim, since the approximate scores, and so the code ranks, differ
// per shortlist dimension.
#ifndef NESTOR_TUNING_TRACE_H_
#define NESTOR_TUNING_TRACE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace nestor::tuning {

// partition_rank of a true neighbour whose partition is not among the query's first
// max_partitions ranked partitions.
inline constexpr int kNotRanked = -1;
// CodeRank of a neighbour that cannot be reached at the asked P.
inline constexpr uint32_t kUnreachableCodeRank = std::numeric_limits<uint32_t>::max();

// One true neighbour of one tuning query.
struct NeighborTrace {
  // Dense vector index of the neighbour (as given to TraceBuilder), for diagnostics.
  uint32_t vector_index = 0;
  // Rank of the neighbour's partition in the query's centroid ranking (0 = nearest
  // centroid), or kNotRanked when it is not among the first max_partitions.
  int partition_rank = kNotRanked;
  // Prefix sums of the per-rank competitor counts, length max_partitions + 1 (empty when
  // partition_rank == kNotRanked): better_before_rank[p] = number of vectors in the
  // partitions of rank < p whose approximate score beats the neighbour's (the neighbour
  // itself excluded; ties broken by the smaller vector index). Non-decreasing,
  // better_before_rank[0] == 0. Unit: vectors.
  std::vector<uint32_t> better_before_rank;

  bool reachable_at(int partitions_to_search) const {
    return partition_rank != kNotRanked && partition_rank < partitions_to_search;
  }
  // better_by_partition_rank[r]: vectors of the partition of rank r that beat the
  // neighbour on the approximate score. Requires a ranked neighbour, 0 <= r <
  // max_partitions.
  uint32_t better_by_partition_rank(int r) const {
    return better_before_rank[r + 1] - better_before_rank[r];
  }
  // The neighbour's 0-based position among the approximate scores of all vectors in the
  // query's first `partitions_to_search` partitions ("code rank at P"), O(1). It is
  // returned by a search with reorder_k = R iff reachable_at(P) and CodeRank(P) < R.
  // kUnreachableCodeRank when !reachable_at(P). Requires 1 <= P <= max_partitions.
  uint32_t CodeRank(int partitions_to_search) const {
    if (!reachable_at(partitions_to_search)) return kUnreachableCodeRank;
    return better_before_rank[partitions_to_search];
  }
};

// One tuning query.
struct QueryTrace {
  // Sizes (vectors) of the partitions in the order of this query's centroid ranking,
  // length max_partitions.
  std::vector<uint32_t> partition_sizes_in_rank_order;
  // Prefix sums of partition_sizes_in_rank_order, length max_partitions + 1:
  // codes_before_rank[p] = codes scanned when p partitions are searched.
  std::vector<uint64_t> codes_before_rank;
  // The exact top-k of the query, nearest first, exactly Trace::k entries.
  std::vector<NeighborTrace> neighbors;

  // Partitions the query opens with partitions_to_search P and a budget of max_codes
  // codes (SearchParams::max_codes, as FAISS's max_codes): the nearest always, then each
  // next one while those opened hold fewer than max_codes vectors; P when max_codes is 0.
  // Requires 1 <= P <= max_partitions.
  int PartitionsOpened(int partitions_to_search, int64_t max_codes) const {
    if (max_codes <= 0) return partitions_to_search;
    int opened = 1;
    while (opened < partitions_to_search &&
           codes_before_rank[opened] < static_cast<uint64_t>(max_codes)) {
      ++opened;
    }
    return opened;
  }
};

// The recorded data of one code scan configuration over a set of tuning queries.
//
// Thread safety: a plain value; const access from many threads is safe.
struct Trace {
  // Neighbours per query (the k of recall@k), >= 1.
  int k = 0;
  // Partitions of the index (its IndexOptions.num_partitions), >= 1.
  int num_partitions = 0;
  // Coordinates per vector of the index (its dimension), >= 1.
  int dimension = 0;
  // Ranked partitions recorded per query, 1..num_partitions: predictions are possible
  // for partitions_to_search <= max_partitions (or any P when it equals num_partitions).
  int max_partitions = 0;
  // Coordinates the code scan uses (Matryoshka shortlist, issue #4); 0 = dimension.
  int shortlist_dim = 0;
  std::vector<QueryTrace> queries;

  // Mean over queries of the codes scanned with P partitions searched, P clamped to
  // [0, max_partitions]. Unit: codes (vectors) per query. 0 without queries.
  double MeanCodesScanned(int partitions_to_search) const;
};

// Checks the invariants stated above (sizes, monotone prefix sums, ranks in range).
// INVALID_ARGUMENT naming the first violation.
absl::Status ValidateTrace(const Trace& trace);

// Options of TraceBuilder.
struct TraceOptions {
  int k = 10;               // neighbours per query, >= 1
  int num_partitions = 0;   // >= 1
  int dimension = 0;        // >= 1
  // Ranked partitions recorded per query; 0 = num_partitions. Fewer save memory
  // (k * (max_partitions + 1) * 4 bytes per query) and approximate scoring work, but
  // limit predictions to partitions_to_search <= max_partitions.
  int max_partitions = 0;
  int shortlist_dim = 0;    // see Trace::shortlist_dim
};

// Reference builder of a Trace from plain arrays (what the index-side adapter feeds from
// a PartitionedIndex's internals, and what tests feed from a simulation).
//
// Vectors are numbered densely 0..n-1 ("vector index"; an index adapter may number them
// partition by partition, row by row). Approximate scores are given as keys where
// smaller is nearer (L2: the approximate distance; inner product / cosine: the negated
// approximate similarity), exactly as the index's scan compares them; equal keys are
// broken by the smaller vector index.
//
// Cost per AddQuery: O(m log k + max_partitions * k) where m is the number of vectors in
// the query's first max_partitions partitions (only those keys are read).
//
// Thread safety: not thread-safe; one builder per thread (Finish() traces can be
// concatenated by the caller).
class TraceBuilder {
 public:
  // `partition_of[v]` is the partition (0..num_partitions-1) of vector v; its length is
  // the number of vectors n. INVALID_ARGUMENT on bad options or partition ids.
  static absl::StatusOr<TraceBuilder> Create(const TraceOptions& options,
                                             absl::Span<const uint32_t> partition_of);

  // Records one query.
  //   centroid_order: partition ids nearest first for this query (the index's centroid
  //     ranking), at least max_partitions distinct entries (only those are read).
  //   approx_keys: n keys, approx_keys[v] = approximate (code) key of vector v for this
  //     query; read only for vectors in the first max_partitions partitions, which must
  //     not be NaN (others may hold anything).
  //   true_neighbors: the exact top-k vector indices, nearest first, exactly k distinct.
  // INVALID_ARGUMENT (expected vs actual) on bad input; the builder is then unchanged.
  absl::Status AddQuery(absl::Span<const uint32_t> centroid_order,
                        absl::Span<const float> approx_keys,
                        absl::Span<const uint32_t> true_neighbors);

  // Number of vectors n.
  size_t num_vectors() const { return partition_of_.size(); }
  size_t num_queries() const { return trace_.queries.size(); }

  // Returns the trace and leaves the builder without queries.
  Trace Finish();

 private:
  TraceBuilder() = default;

  Trace trace_;
  std::vector<uint32_t> partition_of_;
  // members_[p]: vector indices of partition p, ascending.
  std::vector<std::vector<uint32_t>> members_;
  // Scratch: rank of each partition for the current query, kNotRanked if unranked.
  std::vector<int> rank_of_partition_;
};

// Convenience over TraceBuilder for whole arrays: `centroid_orders` is num_queries rows of
// `centroid_order_stride` partition ids (stride >= max_partitions), `approx_keys` is
// num_queries rows of n keys, `true_neighbors` num_queries rows of k vector indices.
absl::StatusOr<Trace> BuildTrace(const TraceOptions& options,
                                 absl::Span<const uint32_t> partition_of,
                                 absl::Span<const uint32_t> centroid_orders,
                                 size_t centroid_order_stride,
                                 absl::Span<const float> approx_keys,
                                 absl::Span<const uint32_t> true_neighbors);

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_TRACE_H_

// Exact scoring of a block of queries against a block of stored rows with BLAS: the
// brute-force kernel of the exact index and of SearchParams.exact on a partitioned index.
#ifndef NESTOR_INDEX_EXACT_SCAN_H_
#define NESTOR_INDEX_EXACT_SCAN_H_

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "index/index.h"
#include "index/top_k.h"
#include "index/vector_rows.h"

namespace nestor {

// Buffers of ExactScanRows, reused across calls (grown on demand).
struct ExactScanScratch {
  std::vector<float> scores;     // queries x rows of the block
  std::vector<float> row_norms;  // squared, over the prefix
};

// Scores rows [row_begin, row_end) of `rows` against the `nq` queries at `q` (rows
// `d` floats apart) on their first `p` coordinates and offers each row's key to
// heaps[i] (smaller is nearer):
//   L2:      ||x||^2 - 2 x.q + ||q||^2, clamped at 0 (squared distance);
//   IP:      -x.q;
//   cosine:  -x.q / (|x| |q|), both norms over the prefix (Matryoshka prefixes are
//            re-normalized, Kusupati et al. 2022); a row whose prefix is all zeros
//            scores 0.
// query_norms[i] is the squared norm of query i over the prefix. The dot products come
// from one BLAS sgemm, or below kMinExactGemmQueries queries (where sgemm's packing costs
// as much as the product) from Nestor's kernels::DotRows on the calling thread: OpenBLAS
// threads even a small sgemv, and concurrent single-query searches (one per RPC) then
// queue and spin on its worker threads. Over gRPC with one query per request and 4
// requests in flight on 2 cores, an exact index of 60,000 x 784 served 48 QPS with sgemv
// and 166 with DotRows and ExactSearch's row split (one in flight: 148 and 153); one of
// 20 rows 1,817 and 10,182.
// Full-dimension row norms are the stored ones, prefix norms are computed here.
// Requires 1 <= p <= d, heaps.size() == query_norms.size() == nq,
// row_begin <= row_end <= rows.size().
void ExactScanRows(const VectorRows& rows, size_t row_begin, size_t row_end, const float* q,
                   size_t nq, int d, int p, Metric metric, absl::Span<const float> query_norms,
                   absl::Span<TopK> heaps, ExactScanScratch* scratch);

// Queries per ExactScanRows call from which BLAS sgemm is used (below: kernels::DotRows).
inline constexpr size_t kMinExactGemmQueries = 3;
// Blocks of exact search: queries x stored rows per ExactScanRows call.
inline constexpr size_t kExactQueryBlock = 256;
inline constexpr size_t kExactRowBlock = 4096;

// Brute-force top params.k of each query (rows `d` floats apart in `queries`) over every
// row of every VectorRows in `row_sets` (the exact index has one, a partitioned index one
// per partition), on the first params.prefix_dim coordinates, keys as ExactScanRows, ties
// by the smaller id; results->size() must be the number of queries. Batches of
// kMinExactGemmQueries or more run on the calling thread and BLAS threads the sgemm (as
// FAISS IndexFlat does: several search threads each calling a threaded sgemm contend for
// BLAS's workers); smaller ones split the stored rows over params.num_threads (blocks of
// kExactRowBlock rows, scanned with kernels::DotRows; per-thread top k merged), so a
// single query uses the search threads without BLAS's. Deadline and cancellation are
// checked between blocks (DEADLINE_EXCEEDED / CANCELLED).
absl::Status ExactSearch(absl::Span<const VectorRows> row_sets, absl::Span<const float> queries,
                         int d, Metric metric, const SearchParams& params,
                         std::vector<std::vector<Neighbor>>* results);

}  // namespace nestor

#endif  // NESTOR_INDEX_EXACT_SCAN_H_

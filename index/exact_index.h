// Brute-force index: scores every stored vector. The oracle of every recall test.
#ifndef NESTOR_INDEX_EXACT_INDEX_H_
#define NESTOR_INDEX_EXACT_INDEX_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "index/index.h"
#include "index/persistence.h"
#include "index/vector_rows.h"

namespace nestor {

// Exact k-nearest-neighbour search by scanning all vectors.
//
// Vectors live in one 64-byte-aligned row-major buffer (row stride = dimension) with
// their ids, an id -> row map and cached full-dimension squared norms. Upsert replaces a
// present id in place; Remove moves the last row into the hole (O(1)).
//
// Search is ExactSearch (index/exact_scan.h) over the one row buffer (leading dimension =
// the row stride, so prefix_dim < dimension uses the same buffer): BLAS sgemm (Nestor's
// kernels::DotRows for one or two queries) in blocks of kExactQueryBlock queries x
// kExactRowBlock rows, then a bounded-heap top-k per query:
//   L2:      ||x||^2 - 2 x.q + ||q||^2, clamped at 0 (squared distance);
//   IP:      x.q;
//   cosine:  x.q / (|x| |q|), both norms over the prefix (Matryoshka prefixes are
//            re-normalized, Kusupati et al. 2022); a stored vector whose prefix is all
//            zeros scores 0.
// Prefix norms are computed on the fly; full-dimension norms are cached. Ties are broken
// by the smaller id. Batches of kMinExactGemmQueries or more run on the calling thread and
// BLAS threads the sgemm (as FAISS IndexFlat does); for smaller ones SearchParams.num_threads
// split the stored rows (per-thread top k, merged); partitions_to_search is ignored.
// Deadline and cancellation are checked between blocks.
//
// Thread safety: as Index (searches share a reader lock; writes are exclusive).
class ExactIndex : public Index {
 public:
  // `options` must already be validated (CreateIndex); options.num_partitions is 0.
  explicit ExactIndex(const IndexOptions& options);

  // Rebuilds an index from the body written by SerializeImpl. DATA_LOSS if malformed.
  static absl::StatusOr<std::unique_ptr<ExactIndex>> Deserialize(const IndexOptions& options,
                                                                  ByteReader& reader);

 protected:
  size_t SizeImpl() const override ABSL_SHARED_LOCKS_REQUIRED(mu_);
  IndexStats StatsImpl() const override ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status UpsertImpl(absl::Span<const DatapointId> ids, absl::Span<const float> vectors)
      override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RemoveImpl(absl::Span<const DatapointId> ids) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BuildImpl() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchImpl(
      absl::Span<const float> queries, const SearchParams& params) const override
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<float>> GetVectorImpl(DatapointId id) const override
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Body: u64 count, count u64 ids, count*dimension f32 vectors (row order preserved).
  absl::Status SerializeImpl(std::string* out) const override ABSL_SHARED_LOCKS_REQUIRED(mu_);

 private:
  VectorRows rows_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<DatapointId, size_t> row_of_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nestor

#endif  // NESTOR_INDEX_EXACT_INDEX_H_

// The engine's one interface: every index (exact or partitioned) implements it, and the
// exact index is the oracle of every recall test.
//
// Shape follows FAISS's faiss/Index.h (train/add/search, search const with per-call
// parameters) and ScaNN's single_machine_base.h (public methods validate once, protected
// *Impl methods do the work).
#ifndef NESTOR_INDEX_INDEX_H_
#define NESTOR_INDEX_INDEX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace nestor {

// How nearness is measured. Values match proto nestor.v1.Metric.
enum class Metric : int {
  kL2 = 1,            // squared Euclidean distance, smaller is nearer
  kInnerProduct = 2,  // dot product, larger is nearer
  kCosine = 3,        // cosine similarity, larger is nearer; zero vectors rejected
};

// "l2", "inner_product", "cosine".
const char* MetricName(Metric metric);
// True when a larger score is nearer (inner product, cosine).
inline bool HigherIsNearer(Metric metric) { return metric != Metric::kL2; }

using DatapointId = uint64_t;

// How a partitioned index stores the vectors it scans inside a partition. Values are
// stable (snapshots and, later, proto nestor.v1.CodeType use them).
enum class CodeType : int {
  // Uncompressed float rows (IVF-flat); the scan is exact on the prefix.
  kFloat = 1,
  // One unsigned byte per coordinate (per-dimension affine scalar quantization trained at
  // Build), scanned with integer SIMD kernels; the best reorder_k candidates are then
  // re-scored exactly with the stored float vectors. About 4x less memory traffic.
  kInt8 = 2,
};
// "float", "int8".
const char* CodeTypeName(CodeType code_type);

// One result: the id and its score under the index's metric (see Metric).
struct Neighbor {
  DatapointId id = 0;
  float distance = 0.0f;
  friend bool operator==(const Neighbor&, const Neighbor&) = default;
};

// Most k-means iterations a build may run (IndexOptions.training_iterations): FAISS
// defaults to 25 and rarely gains past 100; the cap keeps a typo from occupying a build
// (and the index it locks) for days.
inline constexpr int kMaxTrainingIterations = 1000;

// Options of a new index. Mirrors proto nestor.v1.IndexConfig (server/ converts).
struct IndexOptions {
  // Coordinates per vector, 1..65536.
  int dimension = 0;
  Metric metric = Metric::kL2;
  // 0: exact (brute-force) index. N > 0: partitioned index with N k-means partitions,
  // trained by Build() once at least N vectors are present.
  //
  // Options marked "Partitioned indexes only" below can have no effect on an exact index:
  // CreateIndex refuses an exact index any value of them but the no-op one
  // (INVALID_ARGUMENT naming the option, the value given and the one expected), rather
  // than silently ignore it. The k-means settings (training_iterations, seed,
  // max_training_points_per_partition) and code_type are accepted and ignored by the
  // exact index: their defaults are not no-op values, so an explicit one cannot be told
  // from them.
  int num_partitions = 0;
  // Partitions scanned when SearchParams.partitions_to_search is 0. 0 picks
  // max(1, num_partitions / 16); values above num_partitions are clamped to it. More
  // partitions: higher recall, slower queries. Partitioned indexes only (exact: 0).
  int default_partitions_to_search = 0;
  // k-means (Lloyd) iterations, 1..kMaxTrainingIterations; more cost build time, rarely
  // recall past 20.
  int training_iterations = 20;
  // Seed of k-means initialisation and of the training sample.
  uint64_t seed = 1234;
  // Training sample is capped at num_partitions * this many points.
  int max_training_points_per_partition = 256;
  // Codes scanned inside partitions (see CodeType). Ignored by the exact index, which
  // scans its float vectors (stats report "float"). int8 is the default: with the default
  // reorder its recall matches float codes (Fashion-MNIST and the tests' seeded data) at
  // about 4x less scan traffic.
  CodeType code_type = CodeType::kInt8;
  // Candidates re-scored exactly after a compressed (kInt8) scan when
  // SearchParams.reorder_k is 0; >= 0, 0 picks kDefaultReorderFactor * k. The value used
  // is never below k. More: higher recall, slightly slower. Ignored with kFloat codes.
  // Partitioned indexes only (exact: 0).
  int reorder_k = 0;

  // Matryoshka prefixes (MRL: Kusupati et al., "Matryoshka Representation Learning",
  // NeurIPS 2022; AdANNS: Rege et al., "Adaptive Approximate Nearest Neighbor Search",
  // NeurIPS 2023). An MRL-trained embedding's first d coordinates are themselves a good
  // embedding, for every d of a ladder.
  //
  // The ladder of prefix dimensions searches may use as SearchParams.prefix_dim and
  // shortlist_dim: strictly ascending, each in [1, dimension]. Empty: every d in
  // [1, dimension] is allowed. `dimension` itself is always allowed (added when missing).
  // Partitioned indexes only (exact: empty; the exact index computes prefix norms as it
  // scans, so it serves every prefix).
  // A partitioned index keeps each vector's squared prefix norm at every ladder dimension
  // below `dimension` (4 bytes per vector per entry; with an empty ladder at 16, 32, 64,
  // ... below dimension) so that the int8 scan at those prefixes needs no float row.
  std::vector<int> matryoshka_dims;
  // Prefix dimension the partitions are trained on, assigned by and routed with (AdANNS's
  // decoupled "search structure" dimension): k-means runs on the first routing_dim
  // coordinates and a query scores centroids on its first min(routing_dim, prefix_dim).
  // 0 = dimension. Must be an allowed prefix (see matryoshka_dims). Smaller: cheaper
  // routing and build, coarser partitions. Partitioned indexes only (exact: 0 or
  // dimension).
  int routing_dim = 0;
  // Learn a PCA rotation at Build() (FAISS PCAMatrix through index/faiss_kmeans.h) on the
  // training sample and store the vectors rotated, so that coordinates come in order of
  // decreasing variance and leading coordinates carry most of the distance: embeddings
  // that are not MRL-trained then behave like Matryoshka prefixes. The rotation is
  // orthonormal and not centred (y = R x), so L2 distances, inner products and cosines at
  // prefix_dim = dimension are those of the original vectors (up to float rounding).
  // With the rotation on, prefix_dim = d means the first d principal components (the
  // rotated coordinates), for data, queries, routing and codes alike; queries are rotated
  // at search time (prefix_dim x dimension multiply-adds each) and GetVector returns the
  // original vector (R^T y, equal up to float rounding). Build() again un-rotates and
  // learns a new rotation. Partitioned indexes only (exact: false).
  bool pca_rotation = false;
};

// reorder_k = this * k when neither SearchParams nor IndexOptions set it.
inline constexpr int kDefaultReorderFactor = 4;

// shortlist_size = this * k when the funnel is on and shortlist_size is 0.
inline constexpr int kDefaultShortlistFactor = 10;
// Largest reorder_k and shortlist_size a search accepts (INVALID_ARGUMENT above): each
// query holds that many candidates in memory.
inline constexpr int kMaxCandidates = 1000000;

// Per-call search settings. Never stored in the index: concurrent searches may each use
// their own.
//
// The exact index is exact at every setting: it validates all of them as below but uses
// only k, prefix_dim, num_threads, deadline and cancelled; partitions_to_search,
// reorder_k, shortlist_dim, shortlist_size and exact change nothing in its results (unlike the
// IndexOptions a partitioned index alone can use, which CreateIndex refuses for it, these
// are per call, and one set of params may serve both kinds, as in every recall test).
struct SearchParams {
  // Neighbours per query, >= 1. Fewer are returned when fewer live vectors exist.
  int k = 10;
  // Partitions scanned per query; 0 uses the index's default; values above the number of
  // partitions are clamped. Ignored by the exact index.
  int partitions_to_search = 0;
  // Matryoshka prefix dimension (Kusupati et al., 2022): final scores use the first
  // prefix_dim coordinates of query and data (cosine re-normalizes both prefixes).
  // 0 = dimension(). Must be allowed by IndexOptions.matryoshka_dims. With
  // IndexOptions.pca_rotation, the first prefix_dim principal components.
  int prefix_dim = 0;
  // The funnel (MRL's adaptive retrieval; AdANNS): when shortlist_dim > 0, the partition
  // scan scores candidates on the first shortlist_dim coordinates only (int8 codes: the
  // first shortlist_dim bytes of each code row, since the quantizer is per dimension;
  // float codes: the float prefix), keeps the best shortlist_size of them and re-scores
  // those exactly at prefix_dim with the float vectors. Cosine re-normalizes the
  // shortlist prefix too. shortlist_dim must be allowed by matryoshka_dims and
  // <= prefix_dim; 0 = funnel off (the scan is at prefix_dim, int8 codes reordered with
  // reorder_k). Ignored by the exact index.
  int shortlist_dim = 0;
  // Candidates the funnel's shortlist keeps (unit: vectors per query); >= k when
  // shortlist_dim > 0, 0 = kDefaultShortlistFactor * k. Must be 0 with the funnel off.
  // More: higher recall, a longer rerank. Replaces reorder_k when the funnel is on,
  // except that with int8 codes, shortlist_dim < prefix_dim and an explicit reorder_k
  // below shortlist_size, the shortlist is first re-scored on the int8 codes at
  // prefix_dim and only the best reorder_k are re-scored with the float vectors.
  // Validated, then ignored by the exact index.
  int shortlist_size = 0;
  // Candidates of a compressed scan re-scored exactly with the float vectors (>= 0;
  // 0 = IndexOptions.reorder_k; values below k are raised to k). Unit: vectors per query.
  // Ignored by the exact index and by float-coded partitioned indexes.
  int reorder_k = 0;
  // Exact search at query time (brute force, as Qdrant's `exact` search parameter): a
  // partitioned index scores every stored float vector on the first prefix_dim
  // coordinates (the principal components with pca_rotation), so the results are those
  // of an exact index over the same vectors, for ground truth and recall checks. Then
  // partitions_to_search, reorder_k, shortlist_dim and shortlist_size are validated as
  // usual and ignored. Cost: every vector, about size() * prefix_dim multiply-adds per
  // query. The exact index is exact anyway and ignores it.
  bool exact = false;
  // Early stop of the partition scan (FAISS's IVFSearchParameters::max_codes): partitions
  // are opened nearest first, and once those opened hold at least max_codes vectors no
  // further one is opened; the nearest partition is always scanned, and
  // partitions_to_search still caps how many are. A query whose nearest partitions are
  // large so opens fewer of them than one whose nearest are small: a finer trade-off
  // than partitions_to_search alone (what the autotuner uses it for). Unit: vectors
  // (codes) per query; 0 = no limit; < 0 is INVALID_ARGUMENT. Ignored by the exact index
  // and by exact search.
  int64_t max_codes = 0;
  // Threads this call may use for a batch of queries, >= 1.
  int num_threads = 1;
  // Searches stop with DEADLINE_EXCEEDED after this time ...
  absl::Time deadline = absl::InfiniteFuture();
  // ... and with CANCELLED once cancelled() returns true (may be empty). Both are
  // checked between queries and between partitions, not inside one partition scan.
  std::function<bool()> cancelled;
};

// Query settings an index's owner keeps in the index's snapshot: the server's tuned
// defaults (issue #5; server/tuned_defaults.h). Index::Save writes them and LoadIndex
// reads them back; nothing in the engine reads them otherwise (a search uses its
// SearchParams only). Each field names the SearchParams field it stands in for; 0 = unset,
// and snapshots of format version < 4 (index/persistence.h) load with all unset (< 5:
// max_codes unset).
struct SavedQueryDefaults {
  int partitions_to_search = 0;  // partitions
  int reorder_k = 0;             // vectors
  int shortlist_dim = 0;         // coordinates
  int shortlist_size = 0;        // vectors
  int64_t max_codes = 0;         // vectors
  friend bool operator==(const SavedQueryDefaults&, const SavedQueryDefaults&) = default;
};

// Statistics for GetIndex, ListIndexes and metrics.
struct IndexStats {
  std::string kind;             // "exact" or "partitioned"
  uint64_t vector_count = 0;    // live vectors
  bool built = false;           // partitions trained (always true for exact)
  uint64_t memory_bytes = 0;    // vectors + ids + centroids + id map
  double build_seconds = 0.0;   // wall time of the last Build()
  int num_partitions = 0;       // 0 for exact
  std::string code_type;        // "float" or "int8" ("float" for exact)
  std::string simd_path;        // kernels in use: "portable", "avx2" or "avx512"
};

// An INVALID_ARGUMENT about one row of a batch (a query of Search, a vector of Upsert)
// has a message that starts "<what> row R" (e.g. "query row 3 column 5 is not finite")
// and carries R, in decimal, as the payload under this type URL, so a caller that
// batched rows from elsewhere (the server groups a request's queries by their
// settings) can name the row in its own terms (see RowErrorOf).
inline constexpr absl::string_view kRowPayloadUrl = "type.nestor/row";
// `message` (which must start "<what> row R") as INVALID_ARGUMENT with R as the row payload.
absl::Status RowError(size_t row, std::string message);
// The row an error from RowError names, if it has one.
std::optional<size_t> RowErrorOf(const absl::Status& status);

// "{32, 64, 128}" for messages; "any of 1..D" style text for an empty ladder.
std::string DescribeAllowedDims(const IndexOptions& options);
// True when `d` may be used as prefix_dim / shortlist_dim / routing_dim (see
// IndexOptions.matryoshka_dims).
bool IsAllowedPrefixDim(const IndexOptions& options, int d);

// Base class of all indexes.
//
// Public methods validate their input once (dimension, finiteness, k, prefix_dim, ids)
// and then call the protected *Impl method under the index's lock; a rejected call
// changes nothing. Errors:
//   INVALID_ARGUMENT    malformed input (messages say expected vs actual);
//   FAILED_PRECONDITION state (search of an unbuilt, non-empty partitioned index; too few
//                       vectors to build);
//   DEADLINE_EXCEEDED / CANCELLED from SearchParams.
//
// Thread safety: every public method may be called concurrently. Search and the
// accessors take a reader lock; Upsert, Remove and Build take the writer lock.
class Index {
 public:
  virtual ~Index() = default;
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  int dimension() const { return options_.dimension; }
  Metric metric() const { return options_.metric; }
  // The options the index was created with (after defaults were filled in).
  const IndexOptions& options() const { return options_; }

  // Live vectors.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  IndexStats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // Inserts or replaces vectors. `ids` has n entries (distinct within the call);
  // `vectors` is n * dimension() floats, row-major; all finite; under kCosine none is
  // the zero vector. An id already present has its vector replaced.
  absl::Status Upsert(absl::Span<const DatapointId> ids, absl::Span<const float> vectors)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Removes the given ids; unknown ids are ignored. Returns how many were removed.
  absl::StatusOr<size_t> Remove(absl::Span<const DatapointId> ids) ABSL_LOCKS_EXCLUDED(mu_);

  // Trains what the index needs from the vectors present (k-means partitions) and
  // re-lays out the data. A no-op for the exact index.
  absl::Status Build() ABSL_LOCKS_EXCLUDED(mu_);

  // Searches a batch: `queries` is n * dimension() floats (all coordinates are checked
  // to be finite; only the first prefix_dim are used, except with pca_rotation where the
  // whole query is rotated). INVALID_ARGUMENT names the allowed values when prefix_dim,
  // shortlist_dim or shortlist_size are not (see SearchParams). Returns n lists, nearest first,
  // each of min(k, size()) neighbours, no padding.
  absl::StatusOr<std::vector<std::vector<Neighbor>>> Search(
      absl::Span<const float> queries, const SearchParams& params) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Copies the stored vector of `id` (dimension() floats) or NOT_FOUND.
  absl::StatusOr<std::vector<float>> GetVector(DatapointId id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Writes a snapshot into `directory` (created if missing) atomically: a temporary file
  // is written, flushed and renamed over the previous snapshot. Format is versioned and
  // checksummed; see index/persistence.h. `query_defaults` are stored in the same file
  // (LoadIndex returns them); INVALID_ARGUMENT if one of them is negative.
  absl::Status Save(const std::string& directory,
                    const SavedQueryDefaults& query_defaults = {}) const
      ABSL_LOCKS_EXCLUDED(mu_);

 protected:
  // `options` already validated by CreateIndex / LoadIndex.
  explicit Index(const IndexOptions& options) : options_(options) {}

  virtual size_t SizeImpl() const ABSL_SHARED_LOCKS_REQUIRED(mu_) = 0;
  virtual IndexStats StatsImpl() const ABSL_SHARED_LOCKS_REQUIRED(mu_) = 0;
  virtual absl::Status UpsertImpl(absl::Span<const DatapointId> ids,
                                  absl::Span<const float> vectors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  virtual size_t RemoveImpl(absl::Span<const DatapointId> ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  virtual absl::Status BuildImpl() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // `queries` validated; `params` normalized (k >= 1, 1 <= prefix_dim <= dimension,
  // prefix_dim and shortlist_dim allowed, 0 <= shortlist_dim <= prefix_dim,
  // shortlist_size >= k when shortlist_dim > 0).
  virtual absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchImpl(
      absl::Span<const float> queries, const SearchParams& params) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) = 0;
  virtual absl::StatusOr<std::vector<float>> GetVectorImpl(DatapointId id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) = 0;
  // Serializes the index body (after the common header) into `out`.
  virtual absl::Status SerializeImpl(std::string* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) = 0;

  mutable absl::Mutex mu_;

 private:
  const IndexOptions options_;
};

}  // namespace nestor

#endif  // NESTOR_INDEX_INDEX_H_

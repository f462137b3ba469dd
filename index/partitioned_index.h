// Partitioned (IVF-flat) index: k-means partitions scanned exhaustively at query time.
#ifndef NESTOR_INDEX_PARTITIONED_INDEX_H_
#define NESTOR_INDEX_PARTITIONED_INDEX_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "index/index.h"
#include "index/persistence.h"
#include "index/scalar_quantizer.h"
#include "index/vector_rows.h"

namespace nestor {

// (approximate key, partition << 32 | row) of an int8-scan candidate.
using ScanCandidate = std::pair<float, uint64_t>;

// The `keep` smallest (key, location) candidates of a scan, whatever the order of the
// offers (so the single-query and the partition-major batch scans keep the same set).
// Offers at or below `bound` are appended to `slots`; when Limit(keep) would be passed
// they are cut back to the `keep` smallest with std::nth_element and
// `bound` becomes the largest kept key. Amortised O(1) per offer, against O(log keep)
// for a bounded heap; the same selection as FAISS's reservoir result handlers.
struct CandidateSelection {
  // Candidates held before Compact() is due.
  static size_t Limit(size_t keep) { return 2 * keep + 64; }
  // Slots to provide: Limit(keep) plus 64 that a branch-free append of a block of up to 64
  // offers may write past the candidates it keeps.
  static size_t Capacity(size_t keep) { return Limit(keep) + 64; }
  // Cuts the slots back to the `keep` smallest (no-op when there are no more).
  void Compact();
  // Compact(), then the kept candidates in ascending (key, location) order.
  absl::Span<const ScanCandidate> Finish();

  ScanCandidate* slots = nullptr;
  size_t keep = 0;
  size_t size = 0;
  float bound = std::numeric_limits<float>::infinity();
};


// Inverted-file index with uncompressed vectors ("IVF-flat": Jégou, Douze & Schmid,
// "Product quantization for nearest neighbor search", TPAMI 2011; FAISS IndexIVFFlat).
//
// Lifecycle. Until Build() the vectors sit in one staging store: searching an empty
// index returns empty lists; searching a non-empty unbuilt one is FAILED_PRECONDITION.
// Build() trains options.num_partitions centroids with k-means (Lloyd's algorithm,
// through FAISS, see index/faiss_kmeans.h) on a seeded sample of at most
// num_partitions * max_training_points_per_partition vectors, assigns every vector to
// its nearest centroid (BLAS GEMM) and lays each partition out contiguously, rows
// 64-byte aligned, ids alongside, with an id -> (partition, row) map. Build() again
// retrains from all vectors present. After Build(), Upsert puts each vector straight into
// its nearest partition (a replaced id is removed from its old partition first) and
// Remove moves the partition's last row into the hole; centroids are not retrained.
//
// Metrics. L2: Lloyd k-means on the raw vectors, assignment and probing by smallest L2
// distance to the centroid. Inner product: the same L2 k-means and L2 assignment, probing
// by largest q.c (the centroid is its partition's mean, so q.c is the mean score there).
// Cosine: spherical k-means on L2-normalized vectors (unit centroids), assignment and
// probing by largest cosine to the centroid.
//
// Search, per query: score all centroids on the query's prefix (the first prefix_dim
// coordinates of the centroid, same metric; for cosine the centroid prefix is
// re-normalized), scan the best partitions_to_search partitions (0: the index default;
// clamped to num_partitions) with the kernels of index/distance.h on the same prefix
// (Matryoshka prefixes, Kusupati et al. 2022; cosine re-normalizes both prefixes), and
// keep the top k in a bounded heap, ties broken by the smaller id.
//
// int8 codes (IndexOptions.code_type = kInt8). Build() also trains a per-dimension
// scalar quantizer (index/scalar_quantizer.h) on the training sample (normalized under
// cosine) and stores, beside each partition's float rows, one 64-byte-aligned code row
// per vector (of the normalized vector under cosine; later upserts are clamped into the
// trained range). A full-dimension query then scores centroids, scans the probed
// partitions' codes with integer SIMD kernels (index/kernels/simd.h: the per-query weights
// scale_j * q_j are rounded to int16 with one per-query scale; u8 x i16 -> i32 dot
// products), approximates L2 as ||x||^2 - 2 x.q (exact float norms), inner product and
// cosine as x.q, keeps the best reorder_k candidates (SearchParams.reorder_k, else
// IndexOptions.reorder_k, else kDefaultReorderFactor * k; never below k) and re-scores
// them exactly with the float rows ("reorder"). Prefix queries (prefix_dim < dimension)
// scan only the first prefix_dim bytes of each code row (rounded up to 64, the rest of the
// query weights zero; the quantizer is per dimension, so prefix codes cost nothing extra)
// and reorder at prefix_dim. The float rows are kept for reorder, GetVector and Save.
//
// Dense shortlist blocks. A short-prefix scan over the full code rows reads one cache
// line every code_stride bytes, which defeats the hardware prefetcher. So for each
// distinct code length L <= 128 bytes of a ladder prefix (matryoshka_dims; e.g. 64 for
// 16, 32, 64 and 128 for 128) each partition also keeps the first L bytes of every code
// row contiguously, and a scan on a prefix of at most L bytes walks the narrowest such
// block instead (same bytes, so the same scores). Cost: L bytes per vector per block;
// none without a ladder.
//
// Matryoshka prefixes and the funnel (MRL, Kusupati et al. NeurIPS 2022; AdANNS, Rege et
// al. NeurIPS 2023). Allowed prefixes come from IndexOptions.matryoshka_dims. Partitions
// are trained, assigned and routed on the first routing_dim coordinates (centroids are
// stored zero-padded to dimension, so routing on min(routing_dim, prefix_dim) coordinates
// needs no special case). With SearchParams.shortlist_dim > 0 the scan scores on the
// first shortlist_dim coordinates (int8: that many code bytes; float codes: the float
// prefix), keeps the best shortlist_size and re-scores them exactly at prefix_dim (with
// int8 codes, shortlist_dim < prefix_dim and SearchParams.reorder_k below shortlist_size,
// first re-scored on the int8 codes at prefix_dim, the best reorder_k exactly). The
// approximate int8 keys at a prefix s are
//   L2:     |x_s|^2 - 2 x_s.q_s            (|x_s|^2 kept per row for each ladder dim),
//   IP:     -x_s.q_s,
//   cosine: -(u_s.q_s / |q_s|) / |u_s|,    u = x/|x| (the coded vector), |u_s| = |x_s|/|x|,
// i.e. cosine re-normalizes the shortlist prefix of both sides. Prefix norms at
// dimensions outside the stored ladder are computed from the float rows (slower).
// With the funnel off, all partitions searched and reorder_k >= size() (or float codes),
// results are exactly the brute-force top k at prefix_dim.
//
// PCA rotation (IndexOptions.pca_rotation): Build() learns R on the training sample
// (index/faiss_kmeans.h) and stores R x; Upsert rotates, Search rotates the query's first
// prefix_dim components, GetVector returns R^T y.
//
// Batches. One query is searched as above. A batch is split into SearchParams.num_threads
// contiguous chunks of queries (fewer for small batches: at least 8 queries a chunk on the
// partition-major path), run on the calling thread and a process-wide pool of persistent
// workers (ParallelForChunks, index/search_util.h); each chunk picks its queries' partitions
// (the same centroid scores as one query gets) and searches its chunk partition-major in
// blocks of up to 2048 queries: the (query, partition) pairs are
// inverted into per-partition query lists, and each probed partition is then scanned once
// for all of its queries (int8: a multi-query integer kernel scores a few code rows
// against a few queries per load, index/kernels/simd.h; float: the partition's rows stay
// in cache across its queries), feeding per-query bounded heaps; the int8 reorder follows
// per query. Heaps break ties by location (int8 candidates) or id (results), so a batch
// returns exactly what the same queries return one by one. (Splitting queries rather
// than partitions across threads needs no merge of per-thread heaps.)
//
// Deadline and cancellation are checked between queries and blocks, and between
// partitions.
//
// Thread safety: as Index (searches share a reader lock; Upsert, Remove and Build hold the
// writer lock, so Build blocks searches while it trains; swap a freshly built index in
// through a shared_ptr to avoid that).
class PartitionedIndex : public Index {
 public:
  // `options` must already be validated (CreateIndex); options.num_partitions >= 1.
  explicit PartitionedIndex(const IndexOptions& options);

  // Rebuilds an index from the body written by SerializeImpl. DATA_LOSS if malformed.
  static absl::StatusOr<std::unique_ptr<PartitionedIndex>> Deserialize(
      const IndexOptions& options, bool built, double build_seconds, ByteReader& reader);

  // Partitions scanned when SearchParams.partitions_to_search is 0:
  // options.default_partitions_to_search, or max(1, num_partitions / 16) when that is 0.
  int default_partitions_to_search() const;

 protected:
  size_t SizeImpl() const override ABSL_SHARED_LOCKS_REQUIRED(mu_);
  IndexStats StatsImpl() const override ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status UpsertImpl(absl::Span<const DatapointId> ids, absl::Span<const float> vectors)
      override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RemoveImpl(absl::Span<const DatapointId> ids) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FAILED_PRECONDITION with fewer than num_partitions vectors; INTERNAL if k-means
  // fails. On error the index is unchanged.
  absl::Status BuildImpl() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<std::vector<Neighbor>>> SearchImpl(
      absl::Span<const float> queries, const SearchParams& params) const override
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<float>> GetVectorImpl(DatapointId id) const override
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Body: u32 block count (1 staging store if unbuilt, num_partitions if built); if built,
  // num_partitions*dimension f32 centroids, and with int8 codes dimension f32 quantizer
  // offsets and dimension f32 scales (codes and prefix norms are recomputed on load), and
  // with pca_rotation dimension*dimension f32 rotation (row-major); then per
  // block u64 count, count u64 ids,
  // count*dimension f32 vectors (row order preserved).
  absl::Status SerializeImpl(std::string* out) const override ABSL_SHARED_LOCKS_REQUIRED(mu_);

 private:
  // index/partitioned_index_trace.cc: the autotuner's scan (index/tuning_trace.h).
  friend class PartitionedIndexTraceAccess;

  struct Location {
    uint32_t partition;
    uint32_t row;
  };

  // Nearest centroid of each of `n` rows of `x` (leading dimension `ldx`), by the
  // assignment rule of the metric (see class comment). Requires centroids.
  std::vector<uint32_t> Assign(const float* x, size_t n, int ldx) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Sets centroids_ (first normalized under cosine when `normalize`), their squared
  // norms and their transpose.
  void SetCentroids(std::vector<float> centroids, bool normalize)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends (id, vector) to `partition` and records its location.
  void Insert(uint32_t partition, DatapointId id, const float* vector)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the row at `location`, fixing the location of the row moved into it.
  void Erase(Location location) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Searches the one query `q` (dimension() floats, rotated) into *result (per-query
  // path).
  absl::Status SearchOne(const float* q, const SearchParams& params, int partitions_to_search,
                         absl::Span<const float> centroid_norms,
                         std::vector<Neighbor>* result) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The nearest `partitions_to_search` partitions of queries [begin, end) (prefix `p`),
  // nearest first, into rows [begin, end) of probes (num_queries x partitions_to_search).
  // Scores centroids with kernels::DotRows (several queries x centroids per load, bit for
  // bit the Dot the single-query path uses, so both pick the same partitions). Not
  // sgemm: OpenBLAS's worker threads spin after each threaded call and took the search
  // threads' cores. Checks interruption every
  // kQueryBlock queries.
  absl::Status ProbeBatch(absl::Span<const float> queries, int p, int partitions_to_search,
                          absl::Span<const float> centroid_norms, const SearchParams& params,
                          size_t begin, size_t end, uint32_t* probes) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The partition-major batch path (see class comment) for queries [begin, end), whose
  // partitions are rows [begin, end) of `probes`; same results as SearchOne query by
  // query.
  absl::Status SearchBatch(absl::Span<const float> queries, const SearchParams& params,
                           int partitions_to_search, absl::Span<const uint32_t> probes,
                           size_t begin, size_t end,
                           std::vector<std::vector<Neighbor>>* results) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Query-centroid dot products of `nq` rows of `q_block` (dimension() apart) over the
  // first `p` coordinates into dots (nq x num_partitions): sgemm from kMinGemmQueries up.
  void ScoreCentroids(const float* q_block, size_t nq, int p, float* dots) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Key (smaller is nearer) of row `r` of `rows` for query `q` on the first `p`
  // coordinates; `q_inv` = 1/|q prefix| under cosine.
  float FloatKey(const float* q, float q_inv, const VectorRows& rows, size_t r, int p) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Per-query terms of the int8 scan: x.q ~ dot * inv_weight_scale + bias (cosine: the
  // query prefix normalized).
  struct Int8Query {
    float bias = 0.0f;
    float inv_weight_scale = 0.0f;
  };
  // Coordinates the partition scan scores: shortlist_dim when the funnel is on, else
  // prefix_dim.
  static int ScanDim(const SearchParams& params) {
    return params.shortlist_dim > 0 ? params.shortlist_dim : params.prefix_dim;
  }
  // Code bytes the int8 kernels read for a scan on `scan_dim` coordinates (multiple of 64).
  int CodeLength(int scan_dim) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return std::min((scan_dim + 63) / 64 * 64, quantizer_.code_stride());
  }
  // Index into norm_dims_ of `dim`, or -1 if its prefix norms are not stored.
  int NormSlot(int dim) const;
  // 1/|q prefix| over the first `p` coordinates (cosine), else 0.
  float QueryInv(const float* q, int p) const;
  // Appends (row npos) or overwrites the prefix norms of `vector` in partition `p`.
  void SetPrefixNorms(uint32_t p, size_t row, const float* vector)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes R x (first `rows` of R: the first `rows` rotated coordinates) of `n` vectors
  // (`d` floats apart) into out (n x d, coordinates past `rows` zero).
  void Rotate(const float* x, size_t n, int rows, float* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  using Candidate = ScanCandidate;
  // Writes the int16 weights of the first `scan_dim` coordinates of `q` (CodeLength
  // entries, zero padded) and returns its terms; `unit_query` is scratch for cosine.
  Int8Query PrepareInt8Query(const float* q, int scan_dim, int16_t* weights,
                             std::vector<float>* unit_query) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Candidates kept by the scan before the exact re-scoring: shortlist_size with the
  // funnel, else reorder_k resolved (see SearchParams); >= k.
  size_t CandidatesToKeep(const SearchParams& params) const;
  // Turns partition `p`'s integer dots on the first `scan_dim` coordinates into
  // approximate keys and offers them to `selection`.
  void OfferInt8Scores(uint32_t p, int scan_dim, const int32_t* dots, const Int8Query& terms,
                       CandidateSelection* selection) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Exact re-scoring of `candidates` with the float rows on the first `p` coordinates
  // (`q_inv` = QueryInv(q, p)); the top k, nearest first.
  std::vector<Neighbor> Rerank(const float* q, int p, float q_inv,
                               absl::Span<const Candidate> candidates, size_t k) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The end of the int8 path for one query's scan `candidates`: the exact Rerank at
  // prefix_dim, preceded with the funnel (shortlist_dim < prefix_dim) and an explicit
  // SearchParams.reorder_k below the shortlist by a middle stage that re-scores the
  // shortlist on the int8 codes at prefix_dim and keeps the best reorder_k (two-stage
  // rerank: fewer scattered float rows read). The top k, nearest first.
  std::vector<Neighbor> FinishInt8(const float* q, const SearchParams& params,
                                   absl::Span<const Candidate> candidates) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The float-code funnel for one query: float keys on the first shortlist_dim
  // coordinates of the probed partitions, the best shortlist_size re-scored at prefix_dim.
  std::vector<Neighbor> SearchOneFloatFunnel(
      const float* q, const SearchParams& params,
      absl::Span<const std::pair<float, uint32_t>> probes) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The int8 scan of one query `q` (on ScanDim(params) coordinates) over the partitions
  // `probes`, then the exact reorder at prefix_dim; see class comment. Returns the top k,
  // nearest first.
  std::vector<Neighbor> SearchOneInt8(const float* q, const SearchParams& params,
                                      absl::Span<const std::pair<float, uint32_t>> probes) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // How many of the first `partitions_to_search` entries of `ranked` (nearest first) a
  // query opens under SearchParams::max_codes: the nearest always, then each next one
  // while those opened hold fewer than max_codes vectors (all of them when max_codes is 0).
  int PartitionsWithinBudget(const std::pair<float, uint32_t>* ranked,
                             int partitions_to_search, int64_t max_codes) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Ranks centroids by the query-centroid dot products `s` into `ranked`, nearest first
  // over its first `partitions_to_search` entries.
  void RankCentroids(const float* s, absl::Span<const float> centroid_norms,
                     int partitions_to_search,
                     std::vector<std::pair<float, uint32_t>>* ranked) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Appends the code of `vector` (normalized first under cosine) to partition `p`, or
  // overwrites row `row` when it is not npos; the same for its dense shortlist blocks.
  void EncodeInto(uint32_t p, size_t row, const float* vector)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The code rows a scan reading `length` bytes per row of partition `p` walks: the
  // narrowest dense shortlist block at least `length` wide, else the full code rows.
  const CodeRows& ScanCodes(uint32_t p, int length) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Moves every partition's float rows, codes and shortlist blocks into one huge-page
  // arena (index/row_memory.h), as Build allocates them; loading a snapshot calls it.
  void LayOutInArena() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One empty CodeRows per entry of block_lengths_.
  std::vector<CodeRows> NewShortlistBlocks() const {
    std::vector<CodeRows> blocks;
    for (int length : block_lengths_) blocks.emplace_back(length);
    return blocks;
  }
  bool uses_codes() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return built_ && options().code_type == CodeType::kInt8;
  }

  bool built_ ABSL_GUARDED_BY(mu_) = false;
  double build_seconds_ ABSL_GUARDED_BY(mu_) = 0.0;
  // Unbuilt: one staging store. Built: num_partitions stores.
  std::vector<VectorRows> partitions_ ABSL_GUARDED_BY(mu_);
  // Built: num_partitions x dimension, row-major (unit rows under cosine).
  std::vector<float> centroids_ ABSL_GUARDED_BY(mu_);
  std::vector<float> centroid_norms_ ABSL_GUARDED_BY(mu_);  // squared, full dimension
  // The centroids transposed for kernels::DotColumns: dimension x centroids_ld_, row j
  // holding coordinate j of every centroid (zero padded).
  std::vector<float> centroids_t_ ABSL_GUARDED_BY(mu_);
  size_t centroids_ld_ ABSL_GUARDED_BY(mu_) = 0;
  // Built with kInt8 codes: the quantizer and one CodeRows per partition, rows in step
  // with partitions_. Empty otherwise.
  ScalarQuantizer quantizer_ ABSL_GUARDED_BY(mu_);
  std::vector<CodeRows> codes_ ABSL_GUARDED_BY(mu_);
  // Row lengths (bytes, multiples of 64, ascending) of the dense shortlist blocks: the
  // code lengths of the ladder prefixes up to 128 bytes; fixed at construction.
  std::vector<int> block_lengths_;
  // With codes: [partition][slot of block_lengths_], a copy of the first
  // block_lengths_[slot] bytes of each code row, rows contiguous and in step with codes_.
  std::vector<std::vector<CodeRows>> shortlist_codes_ ABSL_GUARDED_BY(mu_);
  // Dimensions below dimension() whose per-row squared prefix norms are kept (ladder dims,
  // or 16, 32, 64, ... with an empty ladder); fixed at construction.
  std::vector<int> norm_dims_;
  // With codes: [partition][slot of norm_dims_][row], rows in step with partitions_.
  std::vector<std::vector<std::vector<float>>> prefix_norms_ ABSL_GUARDED_BY(mu_);
  // Built with pca_rotation: dimension x dimension, row-major, orthonormal rows.
  std::vector<float> rotation_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<DatapointId, Location> location_of_ ABSL_GUARDED_BY(mu_);
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace nestor

#endif  // NESTOR_INDEX_PARTITIONED_INDEX_H_

#include "index/partitioned_index.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "index/distance.h"
#include "index/exact_scan.h"
#include "index/faiss_kmeans.h"
#include "index/kernels/simd.h"
#include "index/search_util.h"
#include "index/top_k.h"

namespace nestor {
namespace {

// Rows per GEMM block when assigning vectors to centroids.
constexpr size_t kAssignBlock = 4096;
// Queries per GEMM block when scoring centroids; smaller batches use Dot loops.
constexpr size_t kQueryBlock = 256;
constexpr size_t kMinGemmQueries = 4;
// Queries of one thread's chunk handled together by the partition-major batch path: their
// probes are inverted into per-partition query lists, so each probed partition is read
// once per block. Bounds the per-block state (weights, candidate heaps) to a few MB.
constexpr size_t kBatchBlock = 2048;
// A probe slot left empty by a query's max_codes budget (ProbeBatch to SearchBatch).
constexpr uint32_t kNotProbed = std::numeric_limits<uint32_t>::max();
// Queries scored per multi-query kernel call (bounds the int32 score buffer).
constexpr size_t kKernelQueries = 64;
// Fewest queries the partition-major path gives a thread: smaller batches run on fewer
// threads (a batch under 2 * kMinBatchQueriesPerThread on the calling thread alone), since
// splitting them saves less than handing a chunk to a worker and splits the groups of
// queries that share a partition's scan.
constexpr size_t kMinBatchQueriesPerThread = 8;
// Widest dense shortlist block (bytes per row; see PartitionedIndex::ScanCodes).
constexpr int kMaxShortlistBlockBytes = 128;

// (approximate key, partition << 32 | row) of an int8-scan candidate.
using Candidate = std::pair<float, uint64_t>;

// Offers `c` to the bounded max-heap heap[0, *size) of at most `keep` candidates. The heap
// ends up holding the `keep` smallest (key, location) pairs whatever the order of the
// offers, so the single-query and the partition-major batch scans keep the same set.
inline void OfferCandidate(Candidate* heap, size_t* size, size_t keep, Candidate c) {
  if (*size < keep) {
    heap[(*size)++] = c;
    std::push_heap(heap, heap + *size);
    return;
  }
  if (!(c < heap[0])) return;
  std::pop_heap(heap, heap + keep);
  heap[keep - 1] = c;
  std::push_heap(heap, heap + keep);
}

// Per-thread buffers of the search path, reused across queries (no per-query heap
// allocation once they have grown).
struct SearchScratch {
  std::vector<float> dots;                         // query x centroid
  std::vector<std::pair<float, uint32_t>> ranked;  // (key, partition)
  std::vector<float> unit_query;                   // cosine: normalized query
  std::vector<int16_t> weights;                    // quantized scale_j * q_j
  std::vector<int32_t> code_dots;                  // one partition's integer dots
  std::vector<Candidate> candidates;               // selection slots / max-heap
  // Partition-major batch path.
  std::vector<uint32_t> members_begin;              // per partition, into members
  std::vector<uint32_t> members;                    // query indices, partition-major
  std::vector<const int16_t*> weight_rows;          // kernel operands
  std::vector<float> query_terms;                   // per query: bias, 1/scale, 1/|q|
  std::vector<CandidateSelection> selections;        // per query
  std::vector<float> computed_norms;                // prefix norms not stored
  std::vector<float> rotated;                       // rotated queries
  // Two-stage funnel rerank.
  std::vector<int16_t> rescore_weights;             // full-prefix weights of one query
  std::vector<Candidate> rescored;                  // max-heap of the int8 rescoring
};

SearchScratch& Scratch() {
  thread_local SearchScratch scratch;
  return scratch;
}

void Normalize(float* v, int d) {
  const float norm = std::sqrt(SquaredNorm(v, d));
  if (norm > 0.0f) {
    const float inv = 1.0f / norm;
    for (int j = 0; j < d; ++j) v[j] *= inv;
  }
}

}  // namespace

PartitionedIndex::PartitionedIndex(const IndexOptions& options) : Index(options) {
  const int d = options.dimension;
  if (options.matryoshka_dims.empty()) {
    for (int m = 16; m < d; m *= 2) norm_dims_.push_back(m);
  } else {
    for (int m : options.matryoshka_dims) {
      if (m < d) norm_dims_.push_back(m);
    }
    // Dense shortlist blocks: one per distinct code length of the short ladder prefixes.
    const int full_length = (d + 63) / 64 * 64;
    for (int m : options.matryoshka_dims) {
      const int length = (m + 63) / 64 * 64;
      if (length <= kMaxShortlistBlockBytes && length < full_length &&
          std::find(block_lengths_.begin(), block_lengths_.end(), length) ==
              block_lengths_.end()) {
        block_lengths_.push_back(length);
      }
    }
  }
  absl::MutexLock lock(&mu_);
  partitions_.emplace_back(options.dimension, VectorRows::PaddedStride(options.dimension));
}

int PartitionedIndex::default_partitions_to_search() const {
  const int p = options().num_partitions;
  const int d = options().default_partitions_to_search;
  return std::clamp(d > 0 ? d : p / 16, 1, p);
}

size_t PartitionedIndex::SizeImpl() const { return size_; }

IndexStats PartitionedIndex::StatsImpl() const {
  IndexStats stats;
  stats.kind = "partitioned";
  stats.vector_count = size_;
  stats.built = built_;
  stats.build_seconds = build_seconds_;
  stats.num_partitions = options().num_partitions;
  stats.code_type = CodeTypeName(options().code_type);
  stats.simd_path = kernels::ActivePathName();
  uint64_t bytes = 0;
  for (const VectorRows& rows : partitions_) bytes += rows.memory_bytes();
  for (const CodeRows& codes : codes_) bytes += codes.memory_bytes();
  for (const auto& blocks : shortlist_codes_) {
    for (const CodeRows& block : blocks) bytes += block.memory_bytes();
  }
  for (const auto& partition : prefix_norms_) {
    for (const auto& norms : partition) bytes += norms.capacity() * sizeof(float);
  }
  bytes += rotation_.capacity() * sizeof(float);
  bytes += quantizer_.dimension() * 2 * sizeof(float);
  bytes += (centroids_.capacity() + centroids_t_.capacity() + centroid_norms_.capacity()) *
           sizeof(float);
  bytes += location_of_.capacity() * (sizeof(std::pair<DatapointId, Location>) + 1);
  bytes += partitions_.capacity() * sizeof(VectorRows);
  stats.memory_bytes = bytes;
  return stats;
}

void PartitionedIndex::SetCentroids(std::vector<float> centroids, bool normalize) {
  const int d = dimension();
  const size_t p = centroids.size() / d;
  if (normalize && metric() == Metric::kCosine) {
    for (size_t c = 0; c < p; ++c) Normalize(centroids.data() + c * d, d);
  }
  centroid_norms_.resize(p);
  for (size_t c = 0; c < p; ++c) centroid_norms_[c] = SquaredNorm(centroids.data() + c * d, d);
  centroids_ld_ = (p + 15) / 16 * 16;
  centroids_t_.assign(static_cast<size_t>(d) * centroids_ld_, 0.0f);
  for (size_t c = 0; c < p; ++c) {
    for (int j = 0; j < d; ++j) centroids_t_[j * centroids_ld_ + c] = centroids[c * d + j];
  }
  centroids_ = std::move(centroids);
}

std::vector<uint32_t> PartitionedIndex::Assign(const float* x, size_t n, int ldx) const {
  const int d = dimension();
  const size_t p = centroid_norms_.size();
  std::vector<uint32_t> assignment(n);
  const size_t block = std::min(n, kAssignBlock);
  std::vector<float> dots(block * p);
  const bool by_l2 = metric() != Metric::kCosine;
  for (size_t b = 0; b < n; b += block) {
    const size_t nb = std::min(block, n - b);
    // Centroids are zero past routing_dim: the product over routing_dim is the whole one.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nb),
                static_cast<int>(p), options().routing_dim, 1.0f, x + b * ldx, ldx,
                centroids_.data(), d, 0.0f, dots.data(), static_cast<int>(p));
    for (size_t i = 0; i < nb; ++i) {
      const float* s = dots.data() + i * p;
      uint32_t best = 0;
      // L2: ||c||^2 - 2 x.c (||x||^2 is common to all centroids). Cosine: -x.c (unit c).
      float best_key = by_l2 ? centroid_norms_[0] - 2.0f * s[0] : -s[0];
      for (size_t c = 1; c < p; ++c) {
        const float key = by_l2 ? centroid_norms_[c] - 2.0f * s[c] : -s[c];
        if (key < best_key) {
          best_key = key;
          best = static_cast<uint32_t>(c);
        }
      }
      assignment[b + i] = best;
    }
  }
  return assignment;
}

void PartitionedIndex::EncodeInto(uint32_t p, size_t row, const float* vector) {
  CodeRows& codes = codes_[p];
  uint8_t* code = row == static_cast<size_t>(-1) ? codes.Append() : codes.mutable_row(row);
  if (metric() == Metric::kCosine) {
    std::vector<float> unit(vector, vector + dimension());
    Normalize(unit.data(), dimension());
    quantizer_.Encode(unit.data(), code);
  } else {
    quantizer_.Encode(vector, code);
  }
  std::vector<CodeRows>& blocks = shortlist_codes_[p];
  for (size_t b = 0; b < blocks.size(); ++b) {
    uint8_t* prefix =
        row == static_cast<size_t>(-1) ? blocks[b].Append() : blocks[b].mutable_row(row);
    std::memcpy(prefix, code, static_cast<size_t>(block_lengths_[b]));
  }
}

const CodeRows& PartitionedIndex::ScanCodes(uint32_t p, int length) const {
  for (size_t b = 0; b < block_lengths_.size(); ++b) {
    if (block_lengths_[b] >= length) return shortlist_codes_[p][b];
  }
  return codes_[p];
}

int PartitionedIndex::NormSlot(int dim) const {
  for (size_t i = 0; i < norm_dims_.size(); ++i) {
    if (norm_dims_[i] == dim) return static_cast<int>(i);
  }
  return -1;
}

float PartitionedIndex::QueryInv(const float* q, int p) const {
  if (metric() != Metric::kCosine) return 0.0f;
  const float n = SquaredNorm(q, p);
  return n > 0.0f ? 1.0f / std::sqrt(n) : 0.0f;
}

void PartitionedIndex::SetPrefixNorms(uint32_t p, size_t row, const float* vector) {
  auto& norms = prefix_norms_[p];
  for (size_t i = 0; i < norm_dims_.size(); ++i) {
    const float n = SquaredNorm(vector, norm_dims_[i]);
    if (row == static_cast<size_t>(-1)) {
      norms[i].push_back(n);
    } else {
      norms[i][row] = n;
    }
  }
}

void PartitionedIndex::Rotate(const float* x, size_t n, int rows, float* out) const {
  const int d = dimension();
  constexpr size_t kBlock = 8;
  std::vector<float> tmp(kBlock * static_cast<size_t>(rows));
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t nb = std::min(kBlock, n - b);
    kernels::DotRows(x + b * d, d, nb, rotation_.data(), d, static_cast<size_t>(rows), d,
                     tmp.data());
    for (size_t i = 0; i < nb; ++i) {
      float* dst = out + (b + i) * d;
      std::memcpy(dst, tmp.data() + i * rows, rows * sizeof(float));
      std::fill(dst + rows, dst + d, 0.0f);
    }
  }
}

void PartitionedIndex::Insert(uint32_t partition, DatapointId id, const float* vector) {
  if (!codes_.empty()) {
    EncodeInto(partition, static_cast<size_t>(-1), vector);
    SetPrefixNorms(partition, static_cast<size_t>(-1), vector);
  }
  const size_t row = partitions_[partition].Append(id, vector);
  location_of_[id] = Location{partition, static_cast<uint32_t>(row)};
  ++size_;
}

void PartitionedIndex::Erase(Location location) {
  VectorRows& rows = partitions_[location.partition];
  if (!codes_.empty()) {
    codes_[location.partition].SwapRemove(location.row);
    for (CodeRows& block : shortlist_codes_[location.partition]) block.SwapRemove(location.row);
    for (auto& norms : prefix_norms_[location.partition]) {
      norms[location.row] = norms.back();
      norms.pop_back();
    }
  }
  if (std::optional<DatapointId> moved = rows.SwapRemove(location.row)) {
    location_of_[*moved].row = location.row;
  }
  --size_;
}

absl::Status PartitionedIndex::UpsertImpl(absl::Span<const DatapointId> ids,
                                          absl::Span<const float> vectors) {
  const int d = dimension();
  std::vector<float> rotated;
  if (!rotation_.empty()) {
    rotated.resize(vectors.size());
    Rotate(vectors.data(), ids.size(), d, rotated.data());
    vectors = rotated;
  }
  std::vector<uint32_t> targets;
  if (built_) {
    targets = Assign(vectors.data(), ids.size(), d);
  } else {
    targets.assign(ids.size(), 0);
    partitions_[0].Reserve(partitions_[0].size() + ids.size());
  }
  location_of_.reserve(location_of_.size() + ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* v = vectors.data() + i * d;
    auto it = location_of_.find(ids[i]);
    if (it != location_of_.end()) {
      const Location old = it->second;
      if (old.partition == targets[i]) {
        partitions_[old.partition].Set(old.row, v);
        if (!codes_.empty()) {
          EncodeInto(old.partition, old.row, v);
          SetPrefixNorms(old.partition, old.row, v);
        }
        continue;
      }
      location_of_.erase(it);
      Erase(old);
    }
    Insert(targets[i], ids[i], v);
  }
  return absl::OkStatus();
}

size_t PartitionedIndex::RemoveImpl(absl::Span<const DatapointId> ids) {
  size_t removed = 0;
  for (DatapointId id : ids) {
    auto it = location_of_.find(id);
    if (it == location_of_.end()) continue;
    const Location location = it->second;
    location_of_.erase(it);
    Erase(location);
    ++removed;
  }
  return removed;
}

absl::Status PartitionedIndex::BuildImpl() {
  const int d = dimension();
  const int num_partitions = options().num_partitions;
  if (size_ < static_cast<size_t>(num_partitions)) {
    return absl::FailedPreconditionError(
        absl::StrCat("building ", num_partitions, " partitions needs at least ",
                     num_partitions, " vectors; the index holds ", size_));
  }
  const absl::Time start = absl::Now();

  // Every vector, in partition order (the staging store alone when unbuilt).
  VectorRows gathered(d, VectorRows::PaddedStride(d));
  const VectorRows* all = &partitions_[0];
  if (partitions_.size() > 1) {
    gathered.Reserve(size_);
    for (const VectorRows& rows : partitions_) {
      for (size_t r = 0; r < rows.size(); ++r) gathered.Append(rows.id(r), rows.row(r));
    }
    all = &gathered;
  }
  const size_t n = all->size();

  // Seeded training sample (partial Fisher-Yates), kept in storage order.
  const size_t cap = static_cast<size_t>(num_partitions) *
                     static_cast<size_t>(options().max_training_points_per_partition);
  std::vector<size_t> sample(n);
  std::iota(sample.begin(), sample.end(), size_t{0});
  if (n > cap) {
    std::mt19937_64 rng(options().seed);
    for (size_t i = 0; i < cap; ++i) std::swap(sample[i], sample[i + rng() % (n - i)]);
    sample.resize(cap);
    std::sort(sample.begin(), sample.end());
  }

  // PCA rotation: learned on the sample of the original vectors (rows stored rotated by an
  // earlier Build are un-rotated first: x = R^T y), then every vector is rotated.
  std::vector<float> rotation;
  VectorRows rotated_rows(d, VectorRows::PaddedStride(d));
  if (options().pca_rotation) {
    std::vector<float> original(n * d);
    if (!rotation_.empty()) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), d, d, 1.0f,
                  all->data(), static_cast<int>(all->stride()), rotation_.data(), d, 0.0f,
                  original.data(), d);
    } else {
      for (size_t r = 0; r < n; ++r) {
        std::memcpy(original.data() + r * d, all->row(r), d * sizeof(float));
      }
    }
    std::vector<float> pca_sample(sample.size() * d);
    for (size_t i = 0; i < sample.size(); ++i) {
      std::memcpy(pca_sample.data() + i * d, original.data() + sample[i] * d, d * sizeof(float));
    }
    ASSIGN_OR_RETURN(rotation, TrainPcaRotation(pca_sample.data(), sample.size(), d));
    pca_sample = {};
    std::vector<float> y(n * d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), d, d, 1.0f,
                original.data(), d, rotation.data(), d, 0.0f, y.data(), d);
    original = {};
    rotated_rows.Reserve(n);
    for (size_t r = 0; r < n; ++r) rotated_rows.Append(all->id(r), y.data() + r * d);
    all = &rotated_rows;
  }

  // k-means on the first routing_dim coordinates (re-normalized under cosine); the
  // quantizer on whole vectors (normalized under cosine).
  const int route = options().routing_dim;
  std::vector<float> training(sample.size() * route);
  for (size_t i = 0; i < sample.size(); ++i) {
    float* dst = training.data() + i * route;
    std::memcpy(dst, all->row(sample[i]), route * sizeof(float));
    if (metric() == Metric::kCosine) Normalize(dst, route);
  }
  KMeansOptions kmeans;
  kmeans.num_clusters = num_partitions;
  kmeans.iterations = options().training_iterations;
  kmeans.seed = options().seed;
  kmeans.spherical = metric() == Metric::kCosine;
  ASSIGN_OR_RETURN(std::vector<float> route_centroids,
                   TrainKMeans(training.data(), sample.size(), route, kmeans));
  training = {};
  // Stored zero-padded to dimension (see class comment).
  std::vector<float> centroids(static_cast<size_t>(num_partitions) * d, 0.0f);
  for (int c = 0; c < num_partitions; ++c) {
    std::memcpy(centroids.data() + static_cast<size_t>(c) * d,
                route_centroids.data() + static_cast<size_t>(c) * route, route * sizeof(float));
  }
  route_centroids = {};
  ScalarQuantizer quantizer;
  if (options().code_type == CodeType::kInt8) {
    std::vector<float> full(sample.size() * d);
    for (size_t i = 0; i < sample.size(); ++i) {
      float* dst = full.data() + i * d;
      std::memcpy(dst, all->row(sample[i]), d * sizeof(float));
      if (metric() == Metric::kCosine) Normalize(dst, d);
    }
    quantizer = ScalarQuantizer::Train(full.data(), sample.size(), d, d);
  }

  // From here on nothing fails: commit.
  SetCentroids(std::move(centroids), /*normalize=*/true);
  const std::vector<uint32_t> assignment = Assign(all->data(), n, all->stride());
  std::vector<size_t> counts(num_partitions, 0);
  for (uint32_t a : assignment) ++counts[a];
  std::vector<VectorRows> partitions;
  partitions.reserve(num_partitions);
  for (int c = 0; c < num_partitions; ++c) partitions.emplace_back(d, VectorRows::PaddedStride(d));
  // All partitions' float rows, then their codes and shortlist blocks, in one huge-page
  // arena (index/row_memory.h).
  const std::vector<CodeRows> blocks_of_a_partition = NewShortlistBlocks();
  size_t arena_bytes = 0;
  for (int c = 0; c < num_partitions; ++c) {
    arena_bytes += partitions[c].ReserveBytes(counts[c]);
    if (quantizer.trained()) {
      arena_bytes += RowArenaBytes(counts[c] * static_cast<size_t>(quantizer.code_stride()));
      for (const CodeRows& block : blocks_of_a_partition) {
        arena_bytes += block.ReserveBytes(counts[c]);
      }
    }
  }
  const std::shared_ptr<RowArena> arena = RowArena::Create(arena_bytes);
  for (int c = 0; c < num_partitions; ++c) partitions[c].Reserve(counts[c], arena);
  if (all == &partitions_[0]) {
    gathered = std::move(partitions_[0]);
    all = &gathered;
  }
  partitions_ = std::move(partitions);
  quantizer_ = std::move(quantizer);
  rotation_ = std::move(rotation);
  codes_.clear();
  shortlist_codes_.clear();
  prefix_norms_.clear();
  if (quantizer_.trained()) {
    for (int c = 0; c < num_partitions; ++c) {
      codes_.emplace_back(quantizer_.code_stride());
      codes_.back().Reserve(counts[c], arena);
      shortlist_codes_.push_back(NewShortlistBlocks());
      for (CodeRows& block : shortlist_codes_.back()) block.Reserve(counts[c], arena);
      prefix_norms_.emplace_back(norm_dims_.size());
      for (auto& norms : prefix_norms_.back()) norms.reserve(counts[c]);
    }
  }
  location_of_.clear();
  location_of_.reserve(n);
  size_ = 0;
  for (size_t r = 0; r < n; ++r) Insert(assignment[r], all->id(r), all->row(r));
  built_ = true;
  build_seconds_ = absl::ToDoubleSeconds(absl::Now() - start);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> PartitionedIndex::SearchImpl(
    absl::Span<const float> queries, const SearchParams& params) const {
  const int d = dimension();
  const size_t num_queries = queries.size() / d;
  std::vector<std::vector<Neighbor>> results(num_queries);
  if (size_ == 0) return results;
  if (!built_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "index holds ", size_, " vectors but is not built; call BuildIndex"));
  }
  const int p = params.prefix_dim;
  // PCA rotation: the first prefix_dim principal components of each query are all any
  // stage uses.
  std::vector<float> rotated;
  if (!rotation_.empty()) {
    rotated.resize(queries.size());
    Rotate(queries.data(), num_queries, p, rotated.data());
    queries = rotated;
    if (metric() == Metric::kCosine) {
      const int s = params.exact ? p : ScanDim(params);
      for (size_t i = 0; i < num_queries; ++i) {
        if (SquaredNorm(queries.data() + i * d, s) == 0.0f) {
          return RowError(i, absl::StrCat(
              "query row ", i, " has all-zero first ", s,
              " principal components; cosine needs a non-zero prefix"));
        }
      }
    }
  }
  if (params.exact) {
    // Brute force over every partition's float rows, as the exact index searches.
    RETURN_IF_ERROR(ExactSearch(partitions_, queries, d, metric(), params, &results));
    return results;
  }
  const int num_partitions = static_cast<int>(partitions_.size());
  const int to_search = params.partitions_to_search > 0
                            ? std::min(params.partitions_to_search, num_partitions)
                            : default_partitions_to_search();
  // Centroids are scored on min(routing_dim, prefix_dim) coordinates; squared centroid
  // norms over that prefix.
  const int route = std::min(options().routing_dim, p);
  std::vector<float> prefix_norms;
  absl::Span<const float> centroid_norms = centroid_norms_;
  if (route < options().routing_dim) {
    prefix_norms.resize(num_partitions);
    for (int c = 0; c < num_partitions; ++c) {
      prefix_norms[c] = SquaredNorm(centroids_.data() + static_cast<size_t>(c) * d, route);
    }
    centroid_norms = prefix_norms;
  }
  // Float codes with the funnel take the per-query path (the float shortlist keeps
  // (key, location) candidates, which the batch float scan does not).
  const bool per_query = num_queries == 1 || (!uses_codes() && params.shortlist_dim > 0);
  if (per_query) {
    RETURN_IF_ERROR(ParallelForChunks(
        num_queries, params.num_threads,
        [&](size_t begin, size_t end) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          for (size_t i = begin; i < end; ++i) {
            RETURN_IF_ERROR(SearchOne(queries.data() + i * d, params, to_search,
                                      centroid_norms, &results[i]));
          }
          return absl::OkStatus();
        }));
    return results;
  }
  // Each thread picks its chunk's partitions, then scans them partition-major.
  std::vector<uint32_t> probes(num_queries * static_cast<size_t>(to_search));
  RETURN_IF_ERROR(ParallelForChunks(
      num_queries, params.num_threads,
      [&](size_t begin, size_t end) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        RETURN_IF_ERROR(ProbeBatch(queries, route, to_search, centroid_norms, params, begin,
                                   end, probes.data()));
        return SearchBatch(queries, params, to_search, probes, begin, end, &results);
      },
      kMinBatchQueriesPerThread));
  return results;
}

int PartitionedIndex::PartitionsWithinBudget(const std::pair<float, uint32_t>* ranked,
                                             int partitions_to_search,
                                             int64_t max_codes) const {
  if (max_codes <= 0) return partitions_to_search;
  int64_t opened = 0;
  for (int j = 0; j < partitions_to_search; ++j) {
    if (j > 0 && opened >= max_codes) return j;
    opened += static_cast<int64_t>(partitions_[ranked[j].second].size());
  }
  return partitions_to_search;
}

void PartitionedIndex::RankCentroids(const float* s, absl::Span<const float> centroid_norms,
                                     int partitions_to_search,
                                     std::vector<std::pair<float, uint32_t>>* ranked) const {
  const size_t num_partitions = partitions_.size();
  ranked->resize(num_partitions);
  std::pair<float, uint32_t>* out = ranked->data();
  // Smaller key is nearer.
  switch (metric()) {
    case Metric::kL2:
      for (size_t c = 0; c < num_partitions; ++c) {
        out[c] = {centroid_norms[c] - 2.0f * s[c], static_cast<uint32_t>(c)};
      }
      break;
    case Metric::kInnerProduct:
      for (size_t c = 0; c < num_partitions; ++c) out[c] = {-s[c], static_cast<uint32_t>(c)};
      break;
    case Metric::kCosine:
      for (size_t c = 0; c < num_partitions; ++c) {
        const float key =
            centroid_norms[c] > 0.0f ? -s[c] / std::sqrt(centroid_norms[c]) : 0.0f;
        out[c] = {key, static_cast<uint32_t>(c)};
      }
      break;
  }
  std::partial_sort(ranked->begin(), ranked->begin() + partitions_to_search, ranked->end());
}

PartitionedIndex::Int8Query PartitionedIndex::PrepareInt8Query(
    const float* q, int scan_dim, int16_t* weights, std::vector<float>* unit_query) const {
  const int s = scan_dim;
  const int length = CodeLength(s);
  Int8Query terms;
  // Query in the coded space: its scan prefix at unit length under cosine (the coded
  // vectors are unit; OfferInt8Scores re-normalizes their prefix).
  const float* qv = q;
  if (metric() == Metric::kCosine) {
    const float inv = QueryInv(q, s);
    unit_query->resize(s);
    for (int j = 0; j < s; ++j) (*unit_query)[j] = q[j] * inv;
    qv = unit_query->data();
  }
  // x.q ~ sum_j c_j (scale_j q_j) + sum_j offset_j q_j; the weights scale_j q_j are
  // rounded to int16 with one scale chosen so the int32 dot product cannot overflow.
  const float* offsets = quantizer_.offsets().data();
  const float* scales = quantizer_.scales().data();
  float max_weight = 0.0f;
  float bias = 0.0f;
  for (int j = 0; j < s; ++j) {
    max_weight = std::max(max_weight, std::fabs(scales[j] * qv[j]));
    bias += offsets[j] * qv[j];
  }
  const float weight_scale =
      max_weight > 0.0f ? static_cast<float>(kernels::MaxQueryWeight(length)) / max_weight
                        : 0.0f;
  terms.bias = bias;
  terms.inv_weight_scale = weight_scale > 0.0f ? 1.0f / weight_scale : 0.0f;
  for (int j = 0; j < s; ++j) {
    weights[j] = static_cast<int16_t>(std::lrint(scales[j] * qv[j] * weight_scale));
  }
  for (int j = s; j < length; ++j) weights[j] = 0;
  return terms;
}

size_t PartitionedIndex::CandidatesToKeep(const SearchParams& params) const {
  if (params.shortlist_dim > 0) {
    return std::max(static_cast<size_t>(params.shortlist_size), static_cast<size_t>(params.k));
  }
  int reorder = params.reorder_k > 0 ? params.reorder_k : options().reorder_k;
  if (reorder <= 0) reorder = kDefaultReorderFactor * params.k;
  return std::max(static_cast<size_t>(reorder), static_cast<size_t>(params.k));
}

void CandidateSelection::Compact() {
  if (size <= keep) return;
  std::nth_element(slots, slots + keep - 1, slots + size);
  size = keep;
  bound = slots[keep - 1].first;
}

absl::Span<const ScanCandidate> CandidateSelection::Finish() {
  Compact();
  std::sort(slots, slots + size);
  return absl::MakeConstSpan(slots, size);
}

void PartitionedIndex::OfferInt8Scores(uint32_t p, int scan_dim, const int32_t* dots,
                                       const Int8Query& terms,
                                       CandidateSelection* selection) const {
  const size_t n = codes_[p].size();
  const VectorRows& rows = partitions_[p];
  const float* full = rows.squared_norms().data();
  // Squared norms of the scan prefix: stored, full, or computed from the float rows.
  const float* norms = full;
  const Metric m = metric();
  const bool prefix = scan_dim < dimension();
  if (prefix && m != Metric::kInnerProduct) {
    const int slot = NormSlot(scan_dim);
    if (slot >= 0) {
      norms = prefix_norms_[p][slot].data();
    } else {
      std::vector<float>& computed = Scratch().computed_norms;
      computed.resize(n);
      for (size_t r = 0; r < n; ++r) computed[r] = SquaredNorm(rows.row(r), scan_dim);
      norms = computed.data();
    }
  }
  const uint64_t base = static_cast<uint64_t>(p) << 32;
  const float scale = terms.inv_weight_scale;
  const float bias = terms.bias;
  // Keys in blocks (a loop the compiler vectorizes), then only the few that beat the
  // heap's worst go through the heap.
  constexpr size_t kBlock = 64;
  float keys[kBlock];
  for (size_t r0 = 0; r0 < n; r0 += kBlock) {
    const size_t nb = std::min(kBlock, n - r0);
    if (m == Metric::kL2) {
      for (size_t r = 0; r < nb; ++r) {
        keys[r] = norms[r0 + r] - 2.0f * (static_cast<float>(dots[r0 + r]) * scale + bias);
      }
    } else if (m == Metric::kCosine && prefix) {
      // u_s.q_s / |u_s| with |u_s| = |x_s| / |x|.
      for (size_t r = 0; r < nb; ++r) {
        const float xs = norms[r0 + r];
        const float approx = static_cast<float>(dots[r0 + r]) * scale + bias;
        keys[r] = xs > 0.0f ? -approx * std::sqrt(full[r0 + r] / xs) : -0.0f;
      }
    } else {
      for (size_t r = 0; r < nb; ++r) {
        keys[r] = -(static_cast<float>(dots[r0 + r]) * scale + bias);
      }
    }
    // Once a bound is set, most blocks hold no key that can enter: count the keys at or
    // below it (a vectorized compare) and skip the block when there are none.
    size_t below = nb;
    if (selection->bound < std::numeric_limits<float>::infinity()) {
      below = 0;
      for (size_t r = 0; r < nb; ++r) below += keys[r] <= selection->bound ? 1 : 0;
      if (below == 0) continue;
    }
    if (selection->size + below > CandidateSelection::Limit(selection->keep)) {
      selection->Compact();  // tightens the bound
    }
    // Branch-free append: every key is written (the slots have room for a whole block
    // past Limit), only those at or below the bound kept.
    const float bound = selection->bound;
    Candidate* out = selection->slots + selection->size;
    size_t kept = 0;
    for (size_t r = 0; r < nb; ++r) {
      out[kept] = Candidate(keys[r], base | (r0 + r));
      kept += keys[r] <= bound ? 1 : 0;
    }
    selection->size += kept;
  }
}

std::vector<Neighbor> PartitionedIndex::Rerank(const float* q, int p, float q_inv,
                                               absl::Span<const Candidate> candidates,
                                               size_t k) const {
  const Metric m = metric();
  TopK top(k, std::min(k, candidates.size()));
  // The candidates' float rows are scattered over the index (DRAM misses dominate):
  // prefetch the prefixes of the candidates kAhead places on while scoring this one.
  constexpr size_t kAhead = 6;
  const size_t bytes = static_cast<size_t>(p) * sizeof(float);
  auto prefetch = [&](size_t i) {
    if (i >= candidates.size()) return;
    const uint64_t where = candidates[i].second;
    const char* x = reinterpret_cast<const char*>(
        partitions_[where >> 32].row(static_cast<uint32_t>(where)));
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(x + b);
  };
  for (size_t i = 0; i < kAhead; ++i) prefetch(i);
  size_t i = 0;
  if (m == Metric::kL2) {
    // Eight (then four) rows per kernel call: their loads overlap (the same keys as
    // FloatKey, bit for bit).
    for (const size_t group : {size_t{8}, size_t{4}}) {
      for (; i + group <= candidates.size(); i += group) {
        const float* group_rows[8];
        DatapointId group_ids[8];
        for (size_t j = 0; j < group; ++j) {
          prefetch(i + j + kAhead);
          const uint64_t where = candidates[i + j].second;
          const VectorRows& rows = partitions_[where >> 32];
          group_rows[j] = rows.row(static_cast<uint32_t>(where));
          group_ids[j] = rows.id(static_cast<uint32_t>(where));
        }
        float keys[8];
        if (group == 8) {
          kernels::L2SqrRows8(q, group_rows, p, keys);
        } else {
          kernels::L2SqrRows4(q, group_rows, p, keys);
        }
        for (size_t j = 0; j < group; ++j) {
          if (keys[j] <= top.threshold()) top.Push(keys[j], group_ids[j]);
        }
      }
    }
  }
  for (; i < candidates.size(); ++i) {
    prefetch(i + kAhead);
    const uint64_t where = candidates[i].second;
    const VectorRows& rows = partitions_[where >> 32];
    const size_t r = static_cast<uint32_t>(where);
    const float key = FloatKey(q, q_inv, rows, r, p);
    if (key <= top.threshold()) top.Push(key, rows.id(r));
  }
  return top.Finish(/*negate=*/HigherIsNearer(m));
}

std::vector<Neighbor> PartitionedIndex::SearchOneInt8(
    const float* q, const SearchParams& params,
    absl::Span<const std::pair<float, uint32_t>> probes) const {
  const int scan_dim = ScanDim(params);
  const int length = CodeLength(scan_dim);
  SearchScratch& scratch = Scratch();
  scratch.weights.resize(length);
  const Int8Query terms =
      PrepareInt8Query(q, scan_dim, scratch.weights.data(), &scratch.unit_query);

  // Approximate scan: keep the best `keep` (key, location).
  CandidateSelection selection;
  selection.keep = CandidatesToKeep(params);
  scratch.candidates.resize(CandidateSelection::Capacity(selection.keep));
  selection.slots = scratch.candidates.data();
  for (const auto& probe : probes) {
    const uint32_t p = probe.second;
    const CodeRows& codes = ScanCodes(p, length);
    const size_t n = codes.size();
    if (n == 0) continue;
    if (scratch.code_dots.size() < n) scratch.code_dots.resize(n);
    kernels::DotU8I16Batch(codes.data(), static_cast<size_t>(codes.stride()), n,
                           scratch.weights.data(), length, scratch.code_dots.data());
    OfferInt8Scores(p, scan_dim, scratch.code_dots.data(), terms, &selection);
  }
  return FinishInt8(q, params, selection.Finish());
}

std::vector<Neighbor> PartitionedIndex::FinishInt8(const float* q, const SearchParams& params,
                                                   absl::Span<const Candidate> candidates) const {
  const int pd = params.prefix_dim;
  const size_t k = static_cast<size_t>(params.k);
  const size_t reorder = std::max(static_cast<size_t>(std::max(params.reorder_k, 0)), k);
  if (params.shortlist_dim <= 0 || params.shortlist_dim >= pd || params.reorder_k <= 0 ||
      reorder >= candidates.size()) {
    return Rerank(q, pd, QueryInv(q, pd), candidates, k);
  }
  // Middle stage: the shortlist re-scored on the int8 codes at prefix_dim (rows of
  // CodeLength(pd) bytes, read far faster than float rows), the best `reorder` kept.
  SearchScratch& scratch = Scratch();
  const int length = CodeLength(pd);
  scratch.rescore_weights.resize(length);
  const Int8Query terms =
      PrepareInt8Query(q, pd, scratch.rescore_weights.data(), &scratch.unit_query);
  const Metric m = metric();
  const bool prefix = pd < dimension();
  const int slot = prefix ? NormSlot(pd) : -1;
  auto& heap = scratch.rescored;
  heap.resize(reorder);
  size_t size = 0;
  constexpr size_t kAhead = 4;
  auto prefetch = [&](size_t i) {
    if (i >= candidates.size()) return;
    const uint64_t where = candidates[i].second;
    const char* code = reinterpret_cast<const char*>(
        codes_[where >> 32].row(static_cast<uint32_t>(where)));
    for (int b = 0; b < length; b += 64) __builtin_prefetch(code + b);
  };
  for (size_t i = 0; i < kAhead; ++i) prefetch(i);
  for (size_t i = 0; i < candidates.size(); ++i) {
    prefetch(i + kAhead);
    const uint64_t where = candidates[i].second;
    const uint32_t part = static_cast<uint32_t>(where >> 32);
    const uint32_t r = static_cast<uint32_t>(where);
    const float approx =
        static_cast<float>(kernels::DotU8I16(codes_[part].row(r), scratch.rescore_weights.data(),
                                             length)) *
            terms.inv_weight_scale +
        terms.bias;
    float key;
    if (m == Metric::kInnerProduct || (m == Metric::kCosine && !prefix)) {
      key = -approx;
    } else {
      const VectorRows& rows = partitions_[part];
      const float full = rows.squared_norm(r);
      const float norm = !prefix        ? full
                         : slot >= 0    ? prefix_norms_[part][slot][r]
                                        : SquaredNorm(rows.row(r), pd);
      if (m == Metric::kL2) {
        key = norm - 2.0f * approx;
      } else {
        key = norm > 0.0f ? -approx * std::sqrt(full / norm) : -0.0f;
      }
    }
    if (size == reorder && key > heap[0].first) continue;
    OfferCandidate(heap.data(), &size, reorder, Candidate(key, where));
  }
  return Rerank(q, pd, QueryInv(q, pd), absl::MakeConstSpan(heap.data(), size), k);
}

std::vector<Neighbor> PartitionedIndex::SearchOneFloatFunnel(
    const float* q, const SearchParams& params,
    absl::Span<const std::pair<float, uint32_t>> probes) const {
  const int s = params.shortlist_dim;
  const float q_inv = QueryInv(q, s);
  const size_t keep = CandidatesToKeep(params);
  SearchScratch& scratch = Scratch();
  auto& heap = scratch.candidates;
  heap.resize(keep);
  size_t size = 0;
  for (const auto& probe : probes) {
    const uint32_t p = probe.second;
    const VectorRows& rows = partitions_[p];
    const uint64_t base = static_cast<uint64_t>(p) << 32;
    for (size_t r = 0; r < rows.size(); ++r) {
      const float key = FloatKey(q, q_inv, rows, r, s);
      if (size == keep && key > heap[0].first) continue;
      OfferCandidate(heap.data(), &size, keep, Candidate(key, base | r));
    }
  }
  const int pd = params.prefix_dim;
  return Rerank(q, pd, QueryInv(q, pd), absl::MakeConstSpan(heap.data(), size),
                static_cast<size_t>(params.k));
}

float PartitionedIndex::FloatKey(const float* q, float q_inv, const VectorRows& rows,
                                 size_t r, int p) const {
  switch (metric()) {
    case Metric::kL2:
      return L2Sqr(q, rows.row(r), p);
    case Metric::kInnerProduct:
      return -Dot(q, rows.row(r), p);
    case Metric::kCosine:
    default: {
      const float* x = rows.row(r);
      const float xn = p == dimension() ? rows.squared_norm(r) : SquaredNorm(x, p);
      return xn > 0.0f ? -(Dot(q, x, p) * q_inv / std::sqrt(xn)) : -0.0f;
    }
  }
}

void PartitionedIndex::ScoreCentroids(const float* q_block, size_t nq, int p,
                                      float* dots) const {
  const int d = dimension();
  const size_t num_partitions = partitions_.size();
  if (nq >= kMinGemmQueries) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                static_cast<int>(num_partitions), p, 1.0f, q_block, d, centroids_.data(), d,
                0.0f, dots, static_cast<int>(num_partitions));
    return;
  }
  // The same bits as ProbeBatch gives each query (kernels::DotColumns).
  kernels::DotColumns(q_block, static_cast<size_t>(d), nq, p, centroids_t_.data(),
                      centroids_ld_, num_partitions, dots);
}

absl::Status PartitionedIndex::SearchOne(const float* q, const SearchParams& params,
                                         int partitions_to_search,
                                         absl::Span<const float> centroid_norms,
                                         std::vector<Neighbor>* result) const {
  const int p = params.prefix_dim;
  const Metric m = metric();
  const size_t num_partitions = partitions_.size();
  const size_t k = static_cast<size_t>(params.k);
  SearchScratch& scratch = Scratch();
  if (scratch.dots.size() < num_partitions) scratch.dots.resize(num_partitions);
  RETURN_IF_ERROR(CheckInterrupted(params));
  ScoreCentroids(q, 1, std::min(options().routing_dim, p), scratch.dots.data());
  RankCentroids(scratch.dots.data(), centroid_norms, partitions_to_search, &scratch.ranked);
  const auto& ranked = scratch.ranked;
  partitions_to_search = PartitionsWithinBudget(ranked.data(), partitions_to_search,
                                                params.max_codes);
  // The scan of a few partitions is short: interruptions are checked once per query.
  if (uses_codes()) {
    *result = SearchOneInt8(q, params, absl::MakeConstSpan(ranked.data(), partitions_to_search));
    return absl::OkStatus();
  }
  if (params.shortlist_dim > 0) {
    *result = SearchOneFloatFunnel(q, params,
                                   absl::MakeConstSpan(ranked.data(), partitions_to_search));
    return absl::OkStatus();
  }
  const float q_inv = QueryInv(q, p);
  TopK heap(k, size_);
  for (int j = 0; j < partitions_to_search; ++j) {
    if (j > 0) RETURN_IF_ERROR(CheckInterrupted(params));
    const VectorRows& rows = partitions_[ranked[j].second];
    const size_t n = rows.size();
    const DatapointId* ids = rows.ids().data();
    for (size_t r = 0; r < n; ++r) {
      const float key = FloatKey(q, q_inv, rows, r, p);
      if (key <= heap.threshold()) heap.Push(key, ids[r]);
    }
  }
  *result = heap.Finish(/*negate=*/HigherIsNearer(m));
  return absl::OkStatus();
}

absl::Status PartitionedIndex::ProbeBatch(absl::Span<const float> queries, int p,
                                          int partitions_to_search,
                                          absl::Span<const float> centroid_norms,
                                          const SearchParams& params, size_t begin, size_t end,
                                          uint32_t* probes) const {
  const int d = dimension();
  const size_t num_partitions = partitions_.size();
  const size_t to_search = static_cast<size_t>(partitions_to_search);
  SearchScratch& scratch = Scratch();
  if (scratch.dots.size() < num_partitions) scratch.dots.resize(num_partitions);
  // Queries per DotColumns call: their rows stay in L1 while the centroids stream by.
  constexpr size_t kProbeBlock = 8;
  if (scratch.dots.size() < kProbeBlock * num_partitions) {
    scratch.dots.resize(kProbeBlock * num_partitions);
  }
  for (size_t g = begin; g < end; g += kProbeBlock) {
    if ((g - begin) % kQueryBlock == 0) RETURN_IF_ERROR(CheckInterrupted(params));
    const size_t ng = std::min(kProbeBlock, end - g);
    kernels::DotColumns(queries.data() + g * d, d, ng, p, centroids_t_.data(), centroids_ld_,
                        num_partitions, scratch.dots.data());
    for (size_t i = 0; i < ng; ++i) {
      RankCentroids(scratch.dots.data() + i * num_partitions, centroid_norms,
                    partitions_to_search, &scratch.ranked);
      const size_t opened = static_cast<size_t>(PartitionsWithinBudget(
          scratch.ranked.data(), partitions_to_search, params.max_codes));
      uint32_t* row = probes + (g + i) * to_search;
      for (size_t j = 0; j < opened; ++j) row[j] = scratch.ranked[j].second;
      std::fill(row + opened, row + to_search, kNotProbed);
    }
  }
  return absl::OkStatus();
}

absl::Status PartitionedIndex::SearchBatch(absl::Span<const float> queries,
                                           const SearchParams& params, int partitions_to_search,
                                           absl::Span<const uint32_t> all_probes, size_t begin,
                                           size_t end,
                                           std::vector<std::vector<Neighbor>>* results) const {
  const int d = dimension();
  const int p = params.prefix_dim;
  const Metric m = metric();
  const size_t num_partitions = partitions_.size();
  const size_t k = static_cast<size_t>(params.k);
  const size_t to_search = static_cast<size_t>(partitions_to_search);
  const bool int8_scan = uses_codes();
  const bool interruptible = params.deadline != absl::InfiniteFuture() || params.cancelled;
  SearchScratch& scratch = Scratch();
  const size_t max_block = std::min(kBatchBlock, end - begin);

  for (size_t b0 = begin; b0 < end; b0 += max_block) {
    RETURN_IF_ERROR(CheckInterrupted(params));
    const size_t nq = std::min(max_block, end - b0);
    const float* q_base = queries.data() + b0 * d;
    const uint32_t* block_probes = all_probes.data() + b0 * to_search;

    // 2. Invert into partition-major order (counting sort; queries ascending within a
    // partition).
    auto& starts = scratch.members_begin;
    starts.assign(num_partitions + 1, 0);
    // Probes past a query's max_codes budget are kNotProbed (ProbeBatch) and skipped.
    for (size_t e = 0; e < nq * to_search; ++e) {
      if (block_probes[e] != kNotProbed) ++starts[block_probes[e] + 1];
    }
    for (size_t c = 0; c < num_partitions; ++c) starts[c + 1] += starts[c];
    scratch.members.resize(starts[num_partitions]);
    {
      std::vector<uint32_t> cursor(starts.begin(), starts.end() - 1);
      for (size_t i = 0; i < nq; ++i) {
        for (size_t j = 0; j < to_search; ++j) {
          const uint32_t c = block_probes[i * to_search + j];
          if (c != kNotProbed) scratch.members[cursor[c]++] = static_cast<uint32_t>(i);
        }
      }
    }

    // 3. Scan each probed partition once for all its queries.
    if (int8_scan) {
      const int scan_dim = ScanDim(params);
      const int length = CodeLength(scan_dim);
      const size_t keep = CandidatesToKeep(params);
      scratch.weights.resize(nq * length);
      std::vector<Int8Query> terms(nq);
      for (size_t i = 0; i < nq; ++i) {
        terms[i] = PrepareInt8Query(q_base + i * d, scan_dim,
                                    scratch.weights.data() + i * length, &scratch.unit_query);
      }
      const size_t capacity = CandidateSelection::Capacity(keep);
      scratch.candidates.resize(nq * capacity);
      scratch.selections.assign(nq, CandidateSelection{});
      for (size_t i = 0; i < nq; ++i) {
        scratch.selections[i].slots = scratch.candidates.data() + i * capacity;
        scratch.selections[i].keep = keep;
      }
      for (size_t c = 0; c < num_partitions; ++c) {
        const uint32_t first = starts[c], last = starts[c + 1];
        const CodeRows& codes = ScanCodes(static_cast<uint32_t>(c), length);
        const size_t n = codes.size();
        if (first == last || n == 0) continue;
        if (interruptible) RETURN_IF_ERROR(CheckInterrupted(params));
        for (uint32_t g = first; g < last; g += kKernelQueries) {
          const size_t ng = std::min<size_t>(kKernelQueries, last - g);
          scratch.weight_rows.resize(ng);
          for (size_t i = 0; i < ng; ++i) {
            scratch.weight_rows[i] =
                scratch.weights.data() + static_cast<size_t>(scratch.members[g + i]) * length;
          }
          if (scratch.code_dots.size() < ng * n) scratch.code_dots.resize(ng * n);
          kernels::DotU8I16Multi(codes.data(), static_cast<size_t>(codes.stride()), n,
                                 scratch.weight_rows.data(), ng, length,
                                 scratch.code_dots.data());
          for (size_t i = 0; i < ng; ++i) {
            const uint32_t qi = scratch.members[g + i];
            OfferInt8Scores(static_cast<uint32_t>(c), scan_dim,
                            scratch.code_dots.data() + i * n, terms[qi],
                            &scratch.selections[qi]);
          }
        }
      }
      // 4. Exact reorder, query by query.
      for (size_t i = 0; i < nq; ++i) {
        const float* q = q_base + i * d;
        (*results)[b0 + i] = FinishInt8(q, params, scratch.selections[i].Finish());
      }
      continue;
    }

    // Float rows: exact keys, one bounded heap per query.
    std::vector<TopK> heaps(nq, TopK(k, size_));
    std::vector<float> q_inv(nq, 0.0f);
    if (m == Metric::kCosine) {
      for (size_t i = 0; i < nq; ++i) q_inv[i] = QueryInv(q_base + i * d, p);
    }
    for (size_t c = 0; c < num_partitions; ++c) {
      const uint32_t first = starts[c], last = starts[c + 1];
      const VectorRows& rows = partitions_[c];
      const size_t n = rows.size();
      if (first == last || n == 0) continue;
      if (interruptible) RETURN_IF_ERROR(CheckInterrupted(params));
      const DatapointId* ids = rows.ids().data();
      for (uint32_t g = first; g < last; ++g) {
        const uint32_t qi = scratch.members[g];
        const float* q = q_base + static_cast<size_t>(qi) * d;
        TopK& heap = heaps[qi];
        for (size_t r = 0; r < n; ++r) {
          const float key = FloatKey(q, q_inv[qi], rows, r, p);
          if (key <= heap.threshold()) heap.Push(key, ids[r]);
        }
      }
    }
    for (size_t i = 0; i < nq; ++i) (*results)[b0 + i] = heaps[i].Finish(HigherIsNearer(m));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> PartitionedIndex::GetVectorImpl(DatapointId id) const {
  auto it = location_of_.find(id);
  if (it == location_of_.end()) return absl::NotFoundError(absl::StrCat("no vector with id ", id));
  const float* row = partitions_[it->second.partition].row(it->second.row);
  const int d = dimension();
  if (rotation_.empty()) return std::vector<float>(row, row + d);
  // x = R^T y (up to float rounding).
  std::vector<double> x(d, 0.0);
  for (int i = 0; i < d; ++i) {
    const float* axis = rotation_.data() + static_cast<size_t>(i) * d;
    for (int j = 0; j < d; ++j) x[j] += double{axis[j]} * row[i];
  }
  return std::vector<float>(x.begin(), x.end());
}

absl::Status PartitionedIndex::SerializeImpl(std::string* out) const {
  ByteWriter writer(out);
  writer.Put<uint32_t>(static_cast<uint32_t>(partitions_.size()));
  if (built_) writer.PutArray(centroids_.data(), centroids_.size());
  if (built_ && options().code_type == CodeType::kInt8) {
    writer.PutArray(quantizer_.offsets().data(), quantizer_.offsets().size());
    writer.PutArray(quantizer_.scales().data(), quantizer_.scales().size());
  }
  if (built_ && options().pca_rotation) writer.PutArray(rotation_.data(), rotation_.size());
  for (const VectorRows& rows : partitions_) {
    writer.Put<uint64_t>(rows.size());
    writer.PutArray(rows.ids().data(), rows.size());
    for (size_t r = 0; r < rows.size(); ++r) writer.PutArray(rows.row(r), dimension());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PartitionedIndex>> PartitionedIndex::Deserialize(
    const IndexOptions& options, bool built, double build_seconds, ByteReader& reader) {
  auto index = std::make_unique<PartitionedIndex>(options);
  const int d = options.dimension;
  uint32_t blocks = 0;
  RETURN_IF_ERROR(reader.Get(&blocks));
  const uint32_t expected_blocks = built ? static_cast<uint32_t>(options.num_partitions) : 1;
  if (blocks != expected_blocks) {
    return absl::DataLossError(absl::StrCat("snapshot is corrupt: ", blocks,
                                            " partitions stored, expected ", expected_blocks));
  }
  absl::MutexLock lock(&index->mu_);
  if (built) {
    const size_t floats = static_cast<size_t>(options.num_partitions) * d;
    RETURN_IF_ERROR(reader.CheckAvailable(floats, sizeof(float)));
    std::vector<float> centroids(floats);
    RETURN_IF_ERROR(reader.GetArray(centroids.data(), floats));
    index->SetCentroids(std::move(centroids), /*normalize=*/false);  // as saved
    index->partitions_.clear();
    index->partitions_.shrink_to_fit();
    index->partitions_.reserve(blocks);
    for (uint32_t b = 0; b < blocks; ++b) {
      index->partitions_.emplace_back(d, VectorRows::PaddedStride(d));
    }
    if (options.code_type == CodeType::kInt8) {
      RETURN_IF_ERROR(reader.CheckAvailable(2 * static_cast<uint64_t>(d), sizeof(float)));
      std::vector<float> offsets(d), scales(d);
      RETURN_IF_ERROR(reader.GetArray(offsets.data(), d));
      RETURN_IF_ERROR(reader.GetArray(scales.data(), d));
      for (int j = 0; j < d; ++j) {
        if (!std::isfinite(offsets[j]) || !std::isfinite(scales[j]) || !(scales[j] > 0.0f)) {
          return absl::DataLossError(absl::StrCat(
              "snapshot is corrupt: quantizer dimension ", j, " has offset ", offsets[j],
              " and scale ", scales[j], "; expected finite values and a positive scale"));
        }
      }
      index->quantizer_ = ScalarQuantizer(std::move(offsets), std::move(scales));
      for (uint32_t b = 0; b < blocks; ++b) {
        index->codes_.emplace_back(index->quantizer_.code_stride());
        index->shortlist_codes_.push_back(index->NewShortlistBlocks());
        index->prefix_norms_.emplace_back(index->norm_dims_.size());
      }
    }
    if (options.pca_rotation) {
      const size_t floats = static_cast<size_t>(d) * d;
      RETURN_IF_ERROR(reader.CheckAvailable(floats, sizeof(float)));
      std::vector<float> rotation(floats);
      RETURN_IF_ERROR(reader.GetArray(rotation.data(), floats));
      for (size_t i = 0; i < floats; ++i) {
        if (!std::isfinite(rotation[i])) {
          return absl::DataLossError(absl::StrCat(
              "snapshot is corrupt: rotation coefficient ", i, " is ", rotation[i]));
        }
      }
      index->rotation_ = std::move(rotation);
    }
    index->built_ = true;
    index->build_seconds_ = build_seconds;
  }
  std::vector<float> vector(d);
  for (uint32_t b = 0; b < blocks; ++b) {
    uint64_t count = 0;
    RETURN_IF_ERROR(reader.Get(&count));
    RETURN_IF_ERROR(reader.CheckAvailable(count, sizeof(DatapointId) + d * sizeof(float)));
    std::vector<DatapointId> ids(count);
    RETURN_IF_ERROR(reader.GetArray(ids.data(), count));
    // Everything a partition holds is sized for its count up front, as Build sizes it,
    // so a loaded index holds (and reports) the memory of the one that was saved.
    index->partitions_[b].Reserve(count);
    if (!index->codes_.empty()) {
      index->codes_[b].Reserve(count);
      for (CodeRows& block : index->shortlist_codes_[b]) block.Reserve(count);
    }
    if (b < index->prefix_norms_.size()) {
      for (auto& norms : index->prefix_norms_[b]) norms.reserve(count);
    }
    for (uint64_t r = 0; r < count; ++r) {
      RETURN_IF_ERROR(reader.GetArray(vector.data(), d));
      if (index->location_of_.contains(ids[r])) {
        return absl::DataLossError(absl::StrCat("snapshot is corrupt: id ", ids[r], " repeats"));
      }
      index->Insert(b, ids[r], vector.data());
    }
  }
  if (built) index->LayOutInArena();
  return index;
}

void PartitionedIndex::LayOutInArena() {
  size_t bytes = 0;
  for (size_t p = 0; p < partitions_.size(); ++p) {
    bytes += partitions_[p].RelocateBytes();
    if (p < codes_.size()) bytes += codes_[p].RelocateBytes();
    if (p < shortlist_codes_.size()) {
      for (const CodeRows& block : shortlist_codes_[p]) bytes += block.RelocateBytes();
    }
  }
  if (bytes == 0) return;
  const std::shared_ptr<RowArena> arena = RowArena::Create(bytes);
  for (size_t p = 0; p < partitions_.size(); ++p) {
    partitions_[p].Relocate(arena);
    if (p < codes_.size()) codes_[p].Relocate(arena);
    if (p < shortlist_codes_.size()) {
      for (CodeRows& block : shortlist_codes_[p]) block.Relocate(arena);
    }
  }
}

}  // namespace nestor

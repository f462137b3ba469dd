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
// Queries scored per multi-query kernel call (bounds the int32 score buffer).
constexpr size_t kKernelQueries = 64;

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
  std::vector<Candidate> candidates;               // max-heap (key, partition<<32|row)
  // Partition-major batch path.
  std::vector<uint32_t> members_begin;              // per partition, into members
  std::vector<uint32_t> members;                    // query indices, partition-major
  std::vector<const int16_t*> weight_rows;          // kernel operands
  std::vector<float> query_terms;                   // per query: bias, 1/scale, 1/|q|
  std::vector<size_t> heap_sizes;
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
  bytes += quantizer_.dimension() * 2 * sizeof(float);
  bytes += (centroids_.capacity() + centroid_norms_.capacity()) * sizeof(float);
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nb),
                static_cast<int>(p), d, 1.0f, x + b * ldx, ldx, centroids_.data(), d, 0.0f,
                dots.data(), static_cast<int>(p));
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
}

void PartitionedIndex::Insert(uint32_t partition, DatapointId id, const float* vector) {
  if (!codes_.empty()) EncodeInto(partition, static_cast<size_t>(-1), vector);
  const size_t row = partitions_[partition].Append(id, vector);
  location_of_[id] = Location{partition, static_cast<uint32_t>(row)};
  ++size_;
}

void PartitionedIndex::Erase(Location location) {
  VectorRows& rows = partitions_[location.partition];
  if (!codes_.empty()) codes_[location.partition].SwapRemove(location.row);
  if (std::optional<DatapointId> moved = rows.SwapRemove(location.row)) {
    location_of_[*moved].row = location.row;
  }
  --size_;
}

absl::Status PartitionedIndex::UpsertImpl(absl::Span<const DatapointId> ids,
                                          absl::Span<const float> vectors) {
  const int d = dimension();
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
        if (!codes_.empty()) EncodeInto(old.partition, old.row, v);
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
  std::vector<float> training(sample.size() * d);
  for (size_t i = 0; i < sample.size(); ++i) {
    float* dst = training.data() + i * d;
    std::memcpy(dst, all->row(sample[i]), d * sizeof(float));
    if (metric() == Metric::kCosine) Normalize(dst, d);
  }
  KMeansOptions kmeans;
  kmeans.num_clusters = num_partitions;
  kmeans.iterations = options().training_iterations;
  kmeans.seed = options().seed;
  kmeans.spherical = metric() == Metric::kCosine;
  ASSIGN_OR_RETURN(std::vector<float> centroids,
                   TrainKMeans(training.data(), sample.size(), d, kmeans));
  ScalarQuantizer quantizer;
  if (options().code_type == CodeType::kInt8) {
    quantizer = ScalarQuantizer::Train(training.data(), sample.size(), d, d);
  }
  training = {};

  // From here on nothing fails: commit.
  SetCentroids(std::move(centroids), /*normalize=*/true);
  const std::vector<uint32_t> assignment = Assign(all->data(), n, all->stride());
  std::vector<size_t> counts(num_partitions, 0);
  for (uint32_t a : assignment) ++counts[a];
  std::vector<VectorRows> partitions;
  partitions.reserve(num_partitions);
  for (int c = 0; c < num_partitions; ++c) {
    partitions.emplace_back(d, VectorRows::PaddedStride(d));
    partitions.back().Reserve(counts[c]);
  }
  if (all == &partitions_[0]) {
    gathered = std::move(partitions_[0]);
    all = &gathered;
  }
  partitions_ = std::move(partitions);
  quantizer_ = std::move(quantizer);
  codes_.clear();
  if (quantizer_.trained()) {
    for (int c = 0; c < num_partitions; ++c) {
      codes_.emplace_back(quantizer_.code_stride());
      codes_.back().Reserve(counts[c]);
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
  const int num_partitions = static_cast<int>(partitions_.size());
  const int to_search = params.partitions_to_search > 0
                            ? std::min(params.partitions_to_search, num_partitions)
                            : default_partitions_to_search();
  // Squared centroid norms over the prefix.
  std::vector<float> prefix_norms;
  absl::Span<const float> centroid_norms = centroid_norms_;
  if (params.prefix_dim < d) {
    prefix_norms.resize(num_partitions);
    for (int c = 0; c < num_partitions; ++c) {
      prefix_norms[c] = SquaredNorm(centroids_.data() + static_cast<size_t>(c) * d,
                                    params.prefix_dim);
    }
    centroid_norms = prefix_norms;
  }
  if (num_queries == 1) {
    RETURN_IF_ERROR(SearchOne(queries, params, to_search, centroid_norms, &results));
    return results;
  }
  // Each thread picks its chunk's partitions, then scans them partition-major.
  std::vector<uint32_t> probes(num_queries * static_cast<size_t>(to_search));
  RETURN_IF_ERROR(ParallelForChunks(
      num_queries, params.num_threads,
      [&](size_t begin, size_t end) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        RETURN_IF_ERROR(ProbeBatch(queries, params.prefix_dim, to_search, centroid_norms,
                                   params, begin, end, probes.data()));
        return SearchBatch(queries, params, to_search, probes, begin, end, &results);
      }));
  return results;
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
    const float* q, int16_t* weights, std::vector<float>* unit_query) const {
  const int d = dimension();
  Int8Query terms;
  // Query in the coded space: unit length under cosine.
  const float* qv = q;
  if (metric() == Metric::kCosine) {
    terms.q_inv = 1.0f / std::sqrt(SquaredNorm(q, d));
    unit_query->resize(d);
    for (int j = 0; j < d; ++j) (*unit_query)[j] = q[j] * terms.q_inv;
    qv = unit_query->data();
  }
  // x.q ~ sum_j c_j (scale_j q_j) + sum_j offset_j q_j; the weights scale_j q_j are
  // rounded to int16 with one scale chosen so the int32 dot product cannot overflow.
  const int stride = quantizer_.code_stride();
  const float* offsets = quantizer_.offsets().data();
  const float* scales = quantizer_.scales().data();
  float max_weight = 0.0f;
  float bias = 0.0f;
  for (int j = 0; j < d; ++j) {
    max_weight = std::max(max_weight, std::fabs(scales[j] * qv[j]));
    bias += offsets[j] * qv[j];
  }
  const float weight_scale =
      max_weight > 0.0f ? static_cast<float>(kernels::MaxQueryWeight(stride)) / max_weight : 0.0f;
  terms.bias = bias;
  terms.inv_weight_scale = weight_scale > 0.0f ? 1.0f / weight_scale : 0.0f;
  for (int j = 0; j < d; ++j) {
    weights[j] = static_cast<int16_t>(std::lrint(scales[j] * qv[j] * weight_scale));
  }
  for (int j = d; j < stride; ++j) weights[j] = 0;
  return terms;
}

size_t PartitionedIndex::CandidatesToKeep(const SearchParams& params) const {
  int reorder = params.reorder_k > 0 ? params.reorder_k : options().reorder_k;
  if (reorder <= 0) reorder = kDefaultReorderFactor * params.k;
  return std::max(static_cast<size_t>(reorder), static_cast<size_t>(params.k));
}

void PartitionedIndex::OfferInt8Scores(uint32_t p, const int32_t* dots, const Int8Query& terms,
                                       size_t keep, Candidate* heap, size_t* size) const {
  const size_t n = codes_[p].size();
  const float* norms = partitions_[p].squared_norms().data();
  const uint64_t base = static_cast<uint64_t>(p) << 32;
  const float scale = terms.inv_weight_scale;
  const float bias = terms.bias;
  // Keys in blocks (a loop the compiler vectorizes), then only the few that beat the
  // heap's worst go through the heap.
  constexpr size_t kBlock = 64;
  float keys[kBlock];
  for (size_t r0 = 0; r0 < n; r0 += kBlock) {
    const size_t nb = std::min(kBlock, n - r0);
    if (metric() == Metric::kL2) {
      for (size_t r = 0; r < nb; ++r) {
        keys[r] = norms[r0 + r] - 2.0f * (static_cast<float>(dots[r0 + r]) * scale + bias);
      }
    } else {
      for (size_t r = 0; r < nb; ++r) {
        keys[r] = -(static_cast<float>(dots[r0 + r]) * scale + bias);
      }
    }
    for (size_t r = 0; r < nb; ++r) {
      if (*size == keep && keys[r] > heap[0].first) continue;
      OfferCandidate(heap, size, keep, Candidate(keys[r], base | (r0 + r)));
    }
  }
}

std::vector<Neighbor> PartitionedIndex::ReorderInt8(const float* q, float q_inv,
                                                    absl::Span<const Candidate> candidates,
                                                    size_t k) const {
  const int d = dimension();
  const Metric m = metric();
  TopK top(k, std::min(k, candidates.size()));
  // The candidates' float rows are scattered over the index (DRAM misses dominate):
  // prefetch the next candidate's row while scoring this one.
  auto prefetch = [&](size_t i) {
    if (i >= candidates.size()) return;
    const uint64_t where = candidates[i].second;
    const char* x = reinterpret_cast<const char*>(
        partitions_[where >> 32].row(static_cast<uint32_t>(where)));
    for (size_t b = 0; b < d * sizeof(float); b += 64) __builtin_prefetch(x + b);
  };
  prefetch(0);
  for (size_t i = 0; i < candidates.size(); ++i) {
    prefetch(i + 1);
    const uint64_t where = candidates[i].second;
    const VectorRows& rows = partitions_[where >> 32];
    const size_t r = static_cast<uint32_t>(where);
    const float* x = rows.row(r);
    float key;
    switch (m) {
      case Metric::kL2:
        key = L2Sqr(q, x, d);
        break;
      case Metric::kInnerProduct:
        key = -Dot(q, x, d);
        break;
      case Metric::kCosine:
      default: {
        const float xn = rows.squared_norm(r);
        key = xn > 0.0f ? -(Dot(q, x, d) * q_inv / std::sqrt(xn)) : -0.0f;
        break;
      }
    }
    if (key <= top.threshold()) top.Push(key, rows.id(r));
  }
  return top.Finish(/*negate=*/HigherIsNearer(m));
}

std::vector<Neighbor> PartitionedIndex::SearchOneInt8(
    const float* q, const SearchParams& params,
    absl::Span<const std::pair<float, uint32_t>> probes) const {
  const int stride = quantizer_.code_stride();
  SearchScratch& scratch = Scratch();
  scratch.weights.resize(stride);
  const Int8Query terms = PrepareInt8Query(q, scratch.weights.data(), &scratch.unit_query);

  // Approximate scan: keep the best `keep` (key, location) in a bounded max-heap.
  const size_t keep = CandidatesToKeep(params);
  auto& heap = scratch.candidates;
  heap.resize(keep);
  size_t size = 0;
  for (const auto& probe : probes) {
    const uint32_t p = probe.second;
    const CodeRows& codes = codes_[p];
    const size_t n = codes.size();
    if (n == 0) continue;
    if (scratch.code_dots.size() < n) scratch.code_dots.resize(n);
    kernels::DotU8I16Batch(codes.data(), static_cast<size_t>(stride), n,
                           scratch.weights.data(), stride, scratch.code_dots.data());
    OfferInt8Scores(p, scratch.code_dots.data(), terms, keep, heap.data(), &size);
  }
  return ReorderInt8(q, terms.q_inv, absl::MakeConstSpan(heap.data(), size),
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
  for (size_t i = 0; i < nq; ++i) {
    for (size_t c = 0; c < num_partitions; ++c) {
      dots[i * num_partitions + c] = Dot(q_block + i * d, centroids_.data() + c * d, p);
    }
  }
}

absl::Status PartitionedIndex::SearchOne(absl::Span<const float> queries,
                                         const SearchParams& params, int partitions_to_search,
                                         absl::Span<const float> centroid_norms,
                                         std::vector<std::vector<Neighbor>>* results) const {
  const size_t begin = 0;
  const int d = dimension();
  const int p = params.prefix_dim;
  const Metric m = metric();
  const size_t num_partitions = partitions_.size();
  const size_t k = static_cast<size_t>(params.k);
  SearchScratch& scratch = Scratch();
  if (scratch.dots.size() < num_partitions) scratch.dots.resize(num_partitions);
  RETURN_IF_ERROR(CheckInterrupted(params));
  const float* q = queries.data() + begin * d;
  ScoreCentroids(q, 1, p, scratch.dots.data());
  RankCentroids(scratch.dots.data(), centroid_norms, partitions_to_search, &scratch.ranked);
  const auto& ranked = scratch.ranked;
  if (uses_codes() && p == d) {
    // The scan of a few partitions is short: interruptions are checked once per query.
    (*results)[begin] =
        SearchOneInt8(q, params, absl::MakeConstSpan(ranked.data(), partitions_to_search));
    return absl::OkStatus();
  }
  const float q_inv = m == Metric::kCosine ? 1.0f / std::sqrt(SquaredNorm(q, p)) : 0.0f;
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
  (*results)[begin] = heap.Finish(/*negate=*/HigherIsNearer(m));
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
  // Queries per DotRows call: their rows stay in L1 while the centroids stream by.
  constexpr size_t kProbeBlock = 8;
  if (scratch.dots.size() < kProbeBlock * num_partitions) {
    scratch.dots.resize(kProbeBlock * num_partitions);
  }
  for (size_t g = begin; g < end; g += kProbeBlock) {
    if ((g - begin) % kQueryBlock == 0) RETURN_IF_ERROR(CheckInterrupted(params));
    const size_t ng = std::min(kProbeBlock, end - g);
    kernels::DotRows(queries.data() + g * d, d, ng, centroids_.data(), d, num_partitions, p,
                     scratch.dots.data());
    for (size_t i = 0; i < ng; ++i) {
      RankCentroids(scratch.dots.data() + i * num_partitions, centroid_norms,
                    partitions_to_search, &scratch.ranked);
      for (size_t j = 0; j < to_search; ++j) {
        probes[(g + i) * to_search + j] = scratch.ranked[j].second;
      }
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
  const bool int8_scan = uses_codes() && p == d;
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
    for (size_t e = 0; e < nq * to_search; ++e) ++starts[block_probes[e] + 1];
    for (size_t c = 0; c < num_partitions; ++c) starts[c + 1] += starts[c];
    scratch.members.resize(nq * to_search);
    {
      std::vector<uint32_t> cursor(starts.begin(), starts.end() - 1);
      for (size_t i = 0; i < nq; ++i) {
        for (size_t j = 0; j < to_search; ++j) {
          scratch.members[cursor[block_probes[i * to_search + j]]++] =
              static_cast<uint32_t>(i);
        }
      }
    }

    // 3. Scan each probed partition once for all its queries.
    if (int8_scan) {
      const int stride = quantizer_.code_stride();
      const size_t keep = CandidatesToKeep(params);
      scratch.weights.resize(nq * stride);
      std::vector<Int8Query> terms(nq);
      for (size_t i = 0; i < nq; ++i) {
        terms[i] = PrepareInt8Query(q_base + i * d, scratch.weights.data() + i * stride,
                                    &scratch.unit_query);
      }
      scratch.candidates.resize(nq * keep);
      scratch.heap_sizes.assign(nq, 0);
      for (size_t c = 0; c < num_partitions; ++c) {
        const uint32_t first = starts[c], last = starts[c + 1];
        const CodeRows& codes = codes_[c];
        const size_t n = codes.size();
        if (first == last || n == 0) continue;
        if (interruptible) RETURN_IF_ERROR(CheckInterrupted(params));
        for (uint32_t g = first; g < last; g += kKernelQueries) {
          const size_t ng = std::min<size_t>(kKernelQueries, last - g);
          scratch.weight_rows.resize(ng);
          for (size_t i = 0; i < ng; ++i) {
            scratch.weight_rows[i] =
                scratch.weights.data() + static_cast<size_t>(scratch.members[g + i]) * stride;
          }
          if (scratch.code_dots.size() < ng * n) scratch.code_dots.resize(ng * n);
          kernels::DotU8I16Multi(codes.data(), static_cast<size_t>(stride), n,
                                 scratch.weight_rows.data(), ng, stride,
                                 scratch.code_dots.data());
          for (size_t i = 0; i < ng; ++i) {
            const uint32_t qi = scratch.members[g + i];
            OfferInt8Scores(static_cast<uint32_t>(c), scratch.code_dots.data() + i * n,
                            terms[qi], keep, scratch.candidates.data() + qi * keep,
                            &scratch.heap_sizes[qi]);
          }
        }
      }
      // 4. Exact reorder, query by query.
      for (size_t i = 0; i < nq; ++i) {
        (*results)[b0 + i] = ReorderInt8(
            q_base + i * d, terms[i].q_inv,
            absl::MakeConstSpan(scratch.candidates.data() + i * keep, scratch.heap_sizes[i]),
            k);
      }
      continue;
    }

    // Float rows: exact keys, one bounded heap per query.
    std::vector<TopK> heaps(nq, TopK(k, size_));
    std::vector<float> q_inv(nq, 0.0f);
    if (m == Metric::kCosine) {
      for (size_t i = 0; i < nq; ++i) q_inv[i] = 1.0f / std::sqrt(SquaredNorm(q_base + i * d, p));
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
  return std::vector<float>(row, row + dimension());
}

absl::Status PartitionedIndex::SerializeImpl(std::string* out) const {
  ByteWriter writer(out);
  writer.Put<uint32_t>(static_cast<uint32_t>(partitions_.size()));
  if (built_) writer.PutArray(centroids_.data(), centroids_.size());
  if (built_ && options().code_type == CodeType::kInt8) {
    writer.PutArray(quantizer_.offsets().data(), quantizer_.offsets().size());
    writer.PutArray(quantizer_.scales().data(), quantizer_.scales().size());
  }
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
      }
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
    index->partitions_[b].Reserve(count);
    if (!index->codes_.empty()) index->codes_[b].Reserve(count);
    for (uint64_t r = 0; r < count; ++r) {
      RETURN_IF_ERROR(reader.GetArray(vector.data(), d));
      if (index->location_of_.contains(ids[r])) {
        return absl::DataLossError(absl::StrCat("snapshot is corrupt: id ", ids[r], " repeats"));
      }
      index->Insert(b, ids[r], vector.data());
    }
  }
  return index;
}

}  // namespace nestor

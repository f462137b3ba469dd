// The autotuner's scan of a PartitionedIndex (index/tuning_trace.h). It reuses the
// search's own private steps (centroid scoring and ranking, int8 query preparation, the
// integer kernel and the key computation of OfferInt8Scores), so the keys it reports are
// bit for bit the keys a search compares.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/distance.h"
#include "index/kernels/simd.h"
#include "index/partitioned_index.h"
#include "index/tuning_trace.h"

namespace nestor {

class PartitionedIndexTraceAccess {
 public:
  static absl::Status Scan(const PartitionedIndex& index, absl::Span<const float> queries,
                           int max_partitions, int scan_dim, TuningScanLayout* layout,
                           const TuningScanVisitor& visit) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    absl::ReaderMutexLock lock(&index.mu_);
    if (!index.built_) {
      return absl::FailedPreconditionError(
          "the autotuner needs a built index; call BuildIndex first");
    }
    const int d = index.dimension();
    // Coordinates the scan scores: the funnel's shortlist_dim, or the full dimension.
    const int s = scan_dim > 0 ? scan_dim : d;
    const int num_partitions = static_cast<int>(index.partitions_.size());
    if (max_partitions == 0) max_partitions = num_partitions;
    if (max_partitions < 1 || max_partitions > num_partitions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_partitions must be in 1..", num_partitions, ", got ", max_partitions));
    }
    // Dense numbering, partition by partition, row by row.
    std::vector<size_t> begin(num_partitions + 1, 0);
    for (int p = 0; p < num_partitions; ++p) {
      begin[p + 1] = begin[p] + index.partitions_[p].size();
    }
    const size_t n = begin[num_partitions];
    layout->num_partitions = num_partitions;
    layout->dimension = d;
    layout->partition_of.assign(n, 0);
    layout->ids.assign(n, 0);
    for (int p = 0; p < num_partitions; ++p) {
      const VectorRows& rows = index.partitions_[p];
      for (size_t r = 0; r < rows.size(); ++r) {
        layout->partition_of[begin[p] + r] = static_cast<uint32_t>(p);
        layout->ids[begin[p] + r] = rows.id(r);
      }
    }

    const bool codes = index.uses_codes();
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> keys(n, inf);
    std::vector<float> dots(num_partitions);
    std::vector<std::pair<float, uint32_t>> ranked;
    std::vector<uint32_t> order(max_partitions);
    std::vector<int16_t> weights;
    std::vector<float> unit_query;
    std::vector<int32_t> code_dots;
    std::vector<PartitionedIndex::Candidate> heap;
    const size_t num_queries = queries.size() / d;
    std::vector<float> rotated;
    const int route = std::min(index.options().routing_dim, d);
    for (size_t i = 0; i < num_queries; ++i) {
      const float* q = queries.data() + i * d;
      // The search's query (PCA-rotated when the index rotates), full prefix.
      if (!index.rotation_.empty()) {
        rotated.resize(d);
        index.Rotate(q, 1, d, rotated.data());
        q = rotated.data();
      }
      // Centroid ranking exactly as SearchOne: Dot per centroid on the routing prefix,
      // RankCentroids.
      index.ScoreCentroids(q, 1, route, dots.data());
      index.RankCentroids(dots.data(), index.centroid_norms_, max_partitions, &ranked);
      for (int j = 0; j < max_partitions; ++j) order[j] = ranked[j].second;
      if (codes) {
        const int stride = index.quantizer_.code_stride();
        const int length = index.CodeLength(s);
        weights.resize(length);
        const PartitionedIndex::Int8Query terms =
            index.PrepareInt8Query(q, s, weights.data(), &unit_query);
        for (int j = 0; j < max_partitions; ++j) {
          const uint32_t p = order[j];
          const CodeRows& rows = index.codes_[p];
          const size_t m = rows.size();
          if (m == 0) continue;
          code_dots.resize(m);
          kernels::DotU8I16Batch(rows.data(), static_cast<size_t>(stride), m, weights.data(),
                                 length, code_dots.data());
          // The search's own key computation: offer every row to a selection that keeps
          // all.
          heap.resize(CandidateSelection::Capacity(m));
          CandidateSelection selection;
          selection.slots = heap.data();
          selection.keep = m;
          index.OfferInt8Scores(p, s, code_dots.data(), terms, &selection);
          const size_t size = selection.size;
          for (size_t h = 0; h < size; ++h) {
            const uint32_t r = static_cast<uint32_t>(heap[h].second);
            keys[begin[p] + r] = heap[h].first;
          }
        }
      } else {
        const float q_inv = index.QueryInv(q, s);
        for (int j = 0; j < max_partitions; ++j) {
          const uint32_t p = order[j];
          const VectorRows& rows = index.partitions_[p];
          for (size_t r = 0; r < rows.size(); ++r) {
            keys[begin[p] + r] = index.FloatKey(q, q_inv, rows, r, s);
          }
        }
      }
      absl::Status status = visit(i, order, absl::MakeSpan(keys));
      // Reset the keys of this query (the visitor may have written anywhere).
      if (max_partitions == num_partitions) {
        std::fill(keys.begin(), keys.end(), inf);
      } else {
        for (int j = 0; j < max_partitions; ++j) {
          const uint32_t p = order[j];
          std::fill(keys.begin() + begin[p], keys.begin() + begin[p + 1], inf);
        }
      }
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }
};

absl::Status ScanForTuning(const Index& index, absl::Span<const float> queries,
                           int max_partitions, TuningScanLayout* layout,
                           const TuningScanVisitor& visit) {
  return ScanForTuning(index, queries, max_partitions, /*scan_dim=*/0, layout, visit);
}

absl::Status ScanForTuning(const Index& index, absl::Span<const float> queries,
                           int max_partitions, int scan_dim, TuningScanLayout* layout,
                           const TuningScanVisitor& visit) {
  const auto* partitioned = dynamic_cast<const PartitionedIndex*>(&index);
  if (partitioned == nullptr) {
    return absl::InvalidArgumentError(
        "the autotuner needs a partitioned index (num_partitions > 0), got an exact index");
  }
  const int d = index.dimension();
  if (queries.empty() || queries.size() % static_cast<size_t>(d) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries must be a non-empty multiple of the dimension ", d, " floats, got ",
        queries.size()));
  }
  for (float x : queries) {
    if (!std::isfinite(x)) return absl::InvalidArgumentError("queries must be finite");
  }
  if (layout == nullptr || !visit) return absl::InvalidArgumentError("no layout or visitor");
  if (scan_dim < 0 || scan_dim > d ||
      (scan_dim > 0 && !IsAllowedPrefixDim(index.options(), scan_dim))) {
    return absl::InvalidArgumentError(absl::StrCat("shortlist_dim ", scan_dim,
                                                   " is not allowed; allowed: ",
                                                   DescribeAllowedDims(index.options())));
  }
  return PartitionedIndexTraceAccess::Scan(*partitioned, queries, max_partitions, scan_dim,
                                           layout, visit);
}

}  // namespace nestor

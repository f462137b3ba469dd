#include "tuning/recall_model.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tuning/model_util.h"

namespace nestor::tuning {
namespace {

double Ratio(uint64_t found, const Trace& trace) {
  return static_cast<double>(found) /
         (static_cast<double>(trace.queries.size()) * static_cast<double>(trace.k));
}

}  // namespace

absl::StatusOr<double> PredictRecall(const Trace& trace, int partitions_to_search,
                                     int reorder_k) {
  return PredictRecall(trace, partitions_to_search, /*max_codes=*/0, reorder_k);
}

absl::StatusOr<double> PredictRecall(const Trace& trace, int partitions_to_search,
                                     int64_t max_codes, int reorder_k) {
  RETURN_IF_ERROR(internal::CheckShape(trace));
  ASSIGN_OR_RETURN(const int p, internal::EffectivePartitions(trace, partitions_to_search));
  RETURN_IF_ERROR(internal::CheckReorder(reorder_k));
  RETURN_IF_ERROR(internal::CheckMaxCodes(max_codes));
  const uint32_t r = static_cast<uint32_t>(std::max(reorder_k, trace.k));
  uint64_t found = 0;
  for (const QueryTrace& q : trace.queries) {
    const int opened = q.PartitionsOpened(p, max_codes);
    for (const NeighborTrace& n : q.neighbors) {
      found += n.reachable_at(opened) && n.CodeRank(opened) < r;
    }
  }
  return Ratio(found, trace);
}

absl::StatusOr<GridTable> PredictRecallTable(const Trace& trace,
                                             absl::Span<const int> partitions_to_search,
                                             absl::Span<const int> reorder_k) {
  RETURN_IF_ERROR(internal::CheckShape(trace));
  RETURN_IF_ERROR(internal::CheckAxes(partitions_to_search, reorder_k));
  std::vector<int> ps(partitions_to_search.size());
  for (size_t i = 0; i < partitions_to_search.size(); ++i) {
    ASSIGN_OR_RETURN(ps[i], internal::EffectivePartitions(trace, partitions_to_search[i]));
  }
  // Effective reorder sizes max(R, k): non-decreasing because the axis increases.
  std::vector<uint32_t> rs(reorder_k.size());
  for (size_t j = 0; j < reorder_k.size(); ++j) {
    RETURN_IF_ERROR(internal::CheckReorder(reorder_k[j]));
    rs[j] = static_cast<uint32_t>(std::max(reorder_k[j], trace.k));
  }

  const size_t np = ps.size();
  const size_t nr = rs.size();
  // first_found[i * (nr + 1) + j]: neighbours first found at reorder index j for P index i
  // (j == nr: never within the grid).
  std::vector<uint64_t> first_found(np * (nr + 1), 0);
  for (const QueryTrace& q : trace.queries) {
    for (const NeighborTrace& n : q.neighbors) {
      if (n.partition_rank == kNotRanked) continue;
      for (size_t i = 0; i < np; ++i) {
        if (!n.reachable_at(ps[i])) continue;
        const uint32_t rank = n.CodeRank(ps[i]);
        // Found iff rank < R_eff: the first j with rs[j] > rank.
        const size_t j =
            static_cast<size_t>(std::upper_bound(rs.begin(), rs.end(), rank) - rs.begin());
        ++first_found[i * (nr + 1) + j];
      }
    }
  }
  GridTable table;
  table.partitions_to_search.assign(partitions_to_search.begin(), partitions_to_search.end());
  table.reorder_k.assign(reorder_k.begin(), reorder_k.end());
  table.values.resize(np * nr);
  for (size_t i = 0; i < np; ++i) {
    uint64_t found = 0;
    for (size_t j = 0; j < nr; ++j) {
      found += first_found[i * (nr + 1) + j];
      table.value(i, j) = Ratio(found, trace);
    }
  }
  return table;
}

}  // namespace nestor::tuning

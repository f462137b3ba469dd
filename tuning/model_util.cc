#include "tuning/model_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace nestor::tuning::internal {

// Memory-safety checks of the parts the model reads, O(num_queries * k). The full
// invariants are ValidateTrace's job.
absl::Status CheckShape(const Trace& trace) {
  if (trace.k < 1 || trace.max_partitions < 1 || trace.max_partitions > trace.num_partitions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed trace: k = ", trace.k, ", max_partitions = ", trace.max_partitions,
        ", num_partitions = ", trace.num_partitions));
  }
  if (trace.queries.empty()) return absl::InvalidArgumentError("trace has no queries");
  const size_t mp = static_cast<size_t>(trace.max_partitions);
  for (size_t qi = 0; qi < trace.queries.size(); ++qi) {
    const QueryTrace& q = trace.queries[qi];
    if (q.neighbors.size() != static_cast<size_t>(trace.k)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed trace: query ", qi, " has ",
                                                     q.neighbors.size(),
                                                     " neighbours, expected k = ", trace.k));
    }
    for (const NeighborTrace& n : q.neighbors) {
      const bool ranked = n.partition_rank != kNotRanked;
      if ((ranked && (n.partition_rank < 0 || n.partition_rank >= trace.max_partitions ||
                      n.better_before_rank.size() != mp + 1))) {
        return absl::InvalidArgumentError(
            absl::StrCat("malformed trace: query ", qi, " has a neighbour with partition_rank ",
                         n.partition_rank, " and ", n.better_before_rank.size(),
                         " prefix sums, expected ", mp + 1));
      }
    }
  }
  return absl::OkStatus();
}

// partitions_to_search clamped to num_partitions, or INVALID_ARGUMENT.
absl::StatusOr<int> EffectivePartitions(const Trace& trace, int partitions_to_search) {
  if (partitions_to_search < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("partitions_to_search must be >= 1, got ", partitions_to_search));
  }
  const int p = std::min(partitions_to_search, trace.num_partitions);
  if (p > trace.max_partitions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partitions_to_search ", partitions_to_search, " exceeds the ", trace.max_partitions,
        " ranked partitions recorded in the trace; record a deeper trace"));
  }
  return p;
}

absl::Status CheckReorder(int reorder_k) {
  if (reorder_k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("reorder_k must be >= 1, got ", reorder_k));
  }
  return absl::OkStatus();
}

absl::Status CheckMaxCodes(int64_t max_codes) {
  if (max_codes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_codes must be >= 0 (0 = no budget), got ", max_codes));
  }
  return absl::OkStatus();
}

absl::Status CheckAxes(absl::Span<const int> partitions_to_search,
                       absl::Span<const int> reorder_k) {
  if (partitions_to_search.empty() || reorder_k.empty()) {
    return absl::InvalidArgumentError(
        "candidate lists of partitions_to_search and reorder_k must be non-empty");
  }
  for (size_t i = 1; i < partitions_to_search.size(); ++i) {
    if (partitions_to_search[i] <= partitions_to_search[i - 1]) {
      return absl::InvalidArgumentError(
          "partitions_to_search candidates must be strictly increasing");
    }
  }
  for (size_t j = 1; j < reorder_k.size(); ++j) {
    if (reorder_k[j] <= reorder_k[j - 1]) {
      return absl::InvalidArgumentError("reorder_k candidates must be strictly increasing");
    }
  }
  return absl::OkStatus();
}

}  // namespace nestor::tuning::internal

#include "tuning/trace.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace nestor::tuning {

double Trace::MeanCodesScanned(int partitions_to_search) const {
  if (queries.empty()) return 0.0;
  const int p = std::clamp(partitions_to_search, 0, max_partitions);
  uint64_t total = 0;
  for (const QueryTrace& q : queries) total += q.codes_before_rank[p];
  return static_cast<double>(total) / static_cast<double>(queries.size());
}

absl::Status ValidateTrace(const Trace& trace) {
  if (trace.k < 1) return absl::InvalidArgumentError(absl::StrCat("k must be >= 1, got ", trace.k));
  if (trace.num_partitions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_partitions must be >= 1, got ", trace.num_partitions));
  }
  if (trace.dimension < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("dimension must be >= 1, got ", trace.dimension));
  }
  if (trace.max_partitions < 1 || trace.max_partitions > trace.num_partitions) {
    return absl::InvalidArgumentError(absl::StrCat("max_partitions must be in [1, ",
                                                   trace.num_partitions, "], got ",
                                                   trace.max_partitions));
  }
  const size_t mp = static_cast<size_t>(trace.max_partitions);
  for (size_t qi = 0; qi < trace.queries.size(); ++qi) {
    const QueryTrace& q = trace.queries[qi];
    if (q.partition_sizes_in_rank_order.size() != mp || q.codes_before_rank.size() != mp + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", qi, ": expected ", mp, " partition sizes and ", mp + 1,
          " prefix sums, got ", q.partition_sizes_in_rank_order.size(), " and ",
          q.codes_before_rank.size()));
    }
    uint64_t sum = 0;
    for (size_t r = 0; r <= mp; ++r) {
      if (q.codes_before_rank[r] != sum) {
        return absl::InvalidArgumentError(
            absl::StrCat("query ", qi, ": codes_before_rank[", r, "] is ",
                         q.codes_before_rank[r], ", expected ", sum));
      }
      if (r < mp) sum += q.partition_sizes_in_rank_order[r];
    }
    if (q.neighbors.size() != static_cast<size_t>(trace.k)) {
      return absl::InvalidArgumentError(absl::StrCat("query ", qi, ": expected k = ", trace.k,
                                                     " neighbours, got ", q.neighbors.size()));
    }
    for (size_t j = 0; j < q.neighbors.size(); ++j) {
      const NeighborTrace& n = q.neighbors[j];
      if (n.partition_rank == kNotRanked) {
        if (!n.better_before_rank.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "query ", qi, " neighbour ", j, ": unranked but has competitor counts"));
        }
        continue;
      }
      if (n.partition_rank < 0 || n.partition_rank >= trace.max_partitions) {
        return absl::InvalidArgumentError(
            absl::StrCat("query ", qi, " neighbour ", j, ": partition_rank must be -1 or in [0, ",
                         trace.max_partitions, "), got ", n.partition_rank));
      }
      if (n.better_before_rank.size() != mp + 1 || n.better_before_rank[0] != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "query ", qi, " neighbour ", j, ": expected ", mp + 1,
            " prefix sums starting at 0, got ", n.better_before_rank.size()));
      }
      for (size_t r = 0; r < mp; ++r) {
        if (n.better_before_rank[r + 1] < n.better_before_rank[r] ||
            n.better_before_rank[r + 1] - n.better_before_rank[r] >
                q.partition_sizes_in_rank_order[r]) {
          return absl::InvalidArgumentError(absl::StrCat(
              "query ", qi, " neighbour ", j, ": competitor count at rank ", r,
              " is negative or exceeds the partition size"));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TraceBuilder> TraceBuilder::Create(const TraceOptions& options,
                                                  absl::Span<const uint32_t> partition_of) {
  Trace trace;
  trace.k = options.k;
  trace.num_partitions = options.num_partitions;
  trace.dimension = options.dimension;
  trace.max_partitions =
      options.max_partitions == 0 ? options.num_partitions : options.max_partitions;
  trace.shortlist_dim = options.shortlist_dim;
  RETURN_IF_ERROR(ValidateTrace(trace));
  if (options.shortlist_dim < 0 || options.shortlist_dim > options.dimension) {
    return absl::InvalidArgumentError(absl::StrCat("shortlist_dim must be in [0, ",
                                                   options.dimension, "], got ",
                                                   options.shortlist_dim));
  }
  if (partition_of.size() >= static_cast<size_t>(std::numeric_limits<uint32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most 2^32 - 2 vectors, got ", partition_of.size()));
  }
  TraceBuilder builder;
  builder.members_.resize(static_cast<size_t>(options.num_partitions));
  for (size_t v = 0; v < partition_of.size(); ++v) {
    if (partition_of[v] >= static_cast<uint32_t>(options.num_partitions)) {
      return absl::InvalidArgumentError(absl::StrCat("partition_of[", v, "] must be in [0, ",
                                                     options.num_partitions, "), got ",
                                                     partition_of[v]));
    }
    builder.members_[partition_of[v]].push_back(static_cast<uint32_t>(v));
  }
  builder.trace_ = std::move(trace);
  builder.partition_of_.assign(partition_of.begin(), partition_of.end());
  builder.rank_of_partition_.assign(static_cast<size_t>(options.num_partitions), kNotRanked);
  return builder;
}

absl::Status TraceBuilder::AddQuery(absl::Span<const uint32_t> centroid_order,
                                    absl::Span<const float> approx_keys,
                                    absl::Span<const uint32_t> true_neighbors) {
  const int mp = trace_.max_partitions;
  const size_t n = partition_of_.size();
  const size_t k = static_cast<size_t>(trace_.k);
  if (centroid_order.size() < static_cast<size_t>(mp)) {
    return absl::InvalidArgumentError(absl::StrCat("centroid_order: expected at least ", mp,
                                                   " partition ids, got ",
                                                   centroid_order.size()));
  }
  if (approx_keys.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("approx_keys: expected ", n, " keys (one per vector), got ",
                     approx_keys.size()));
  }
  if (true_neighbors.size() != k) {
    return absl::InvalidArgumentError(absl::StrCat("true_neighbors: expected k = ", k,
                                                   " vector indices, got ",
                                                   true_neighbors.size()));
  }
  for (size_t j = 0; j < k; ++j) {
    if (true_neighbors[j] >= n) {
      return absl::InvalidArgumentError(absl::StrCat("true_neighbors[", j, "] must be in [0, ",
                                                     n, "), got ", true_neighbors[j]));
    }
    for (size_t i = 0; i < j; ++i) {
      if (true_neighbors[i] == true_neighbors[j]) {
        return absl::InvalidArgumentError(
            absl::StrCat("true_neighbors: vector ", true_neighbors[j], " appears twice"));
      }
    }
  }

  // Rank the first max_partitions partitions; rank_of_partition_ is restored on every
  // return below.
  absl::Status status = absl::OkStatus();
  int ranked = 0;
  for (; ranked < mp; ++ranked) {
    const uint32_t p = centroid_order[ranked];
    if (p >= static_cast<uint32_t>(trace_.num_partitions)) {
      status = absl::InvalidArgumentError(absl::StrCat("centroid_order[", ranked,
                                                       "] must be in [0, ",
                                                       trace_.num_partitions, "), got ", p));
      break;
    }
    if (rank_of_partition_[p] != kNotRanked) {
      status = absl::InvalidArgumentError(
          absl::StrCat("centroid_order: partition ", p, " appears twice"));
      break;
    }
    rank_of_partition_[p] = ranked;
  }
  auto restore = [&] {
    for (int r = 0; r < ranked; ++r) rank_of_partition_[centroid_order[r]] = kNotRanked;
  };
  if (!status.ok()) {
    restore();
    return status;
  }

  QueryTrace query;
  query.partition_sizes_in_rank_order.resize(static_cast<size_t>(mp));
  query.codes_before_rank.assign(static_cast<size_t>(mp) + 1, 0);
  for (int r = 0; r < mp; ++r) {
    const size_t size = members_[centroid_order[r]].size();
    query.partition_sizes_in_rank_order[r] = static_cast<uint32_t>(size);
    query.codes_before_rank[r + 1] = query.codes_before_rank[r] + size;
  }

  // Ranked neighbours sorted by (key, vector index): a vector v beats exactly the sorted
  // suffix starting at the first neighbour s with (key_s, s) > (key_v, v).
  using Entry = std::pair<float, uint32_t>;  // (key, vector index)
  std::vector<Entry> sorted;
  query.neighbors.resize(k);
  for (size_t j = 0; j < k; ++j) {
    const uint32_t v = true_neighbors[j];
    query.neighbors[j].vector_index = v;
    query.neighbors[j].partition_rank = rank_of_partition_[partition_of_[v]];
    if (query.neighbors[j].partition_rank != kNotRanked) sorted.emplace_back(approx_keys[v], v);
  }
  std::sort(sorted.begin(), sorted.end());
  const size_t m = sorted.size();
  // diff[r * (m + 1) + s]: vectors of rank-r partition whose first beaten slot is s.
  std::vector<uint32_t> diff(static_cast<size_t>(mp) * (m + 1), 0);
  if (m > 0) {
    for (int r = 0; r < mp && status.ok(); ++r) {
      uint32_t* row = diff.data() + static_cast<size_t>(r) * (m + 1);
      for (const uint32_t v : members_[centroid_order[r]]) {
        const float key = approx_keys[v];
        if (std::isnan(key)) {
          status = absl::InvalidArgumentError(absl::StrCat(
              "approx_keys[", v, "] is NaN (vector in ranked partition ", centroid_order[r],
              ")"));
          break;
        }
        const size_t s = static_cast<size_t>(
            std::upper_bound(sorted.begin(), sorted.end(), Entry(key, v)) - sorted.begin());
        ++row[s];
      }
    }
  }
  restore();
  if (!status.ok()) return status;
  // Cumulate each row over slots: row[t] = vectors of that partition beating slot t.
  for (int r = 0; r < mp; ++r) {
    uint32_t* row = diff.data() + static_cast<size_t>(r) * (m + 1);
    for (size_t s = 1; s <= m; ++s) row[s] += row[s - 1];
  }

  for (NeighborTrace& neighbor : query.neighbors) {
    if (neighbor.partition_rank == kNotRanked) continue;
    const size_t slot = static_cast<size_t>(
        std::lower_bound(sorted.begin(), sorted.end(),
                         Entry(approx_keys[neighbor.vector_index], neighbor.vector_index)) -
        sorted.begin());
    neighbor.better_before_rank.assign(static_cast<size_t>(mp) + 1, 0);
    for (int r = 0; r < mp; ++r) {
      neighbor.better_before_rank[r + 1] =
          neighbor.better_before_rank[r] + diff[static_cast<size_t>(r) * (m + 1) + slot];
    }
  }
  trace_.queries.push_back(std::move(query));
  return absl::OkStatus();
}

Trace TraceBuilder::Finish() {
  Trace out = std::move(trace_);
  trace_.queries.clear();
  trace_.k = out.k;
  trace_.num_partitions = out.num_partitions;
  trace_.dimension = out.dimension;
  trace_.max_partitions = out.max_partitions;
  trace_.shortlist_dim = out.shortlist_dim;
  return out;
}

absl::StatusOr<Trace> BuildTrace(const TraceOptions& options,
                                 absl::Span<const uint32_t> partition_of,
                                 absl::Span<const uint32_t> centroid_orders,
                                 size_t centroid_order_stride,
                                 absl::Span<const float> approx_keys,
                                 absl::Span<const uint32_t> true_neighbors) {
  ASSIGN_OR_RETURN(TraceBuilder builder, TraceBuilder::Create(options, partition_of));
  const size_t n = partition_of.size();
  const size_t k = static_cast<size_t>(options.k);
  if (centroid_order_stride == 0 || centroid_orders.size() % centroid_order_stride != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("centroid_orders: size ", centroid_orders.size(),
                     " is not a positive multiple of the stride ", centroid_order_stride));
  }
  const size_t num_queries = centroid_orders.size() / centroid_order_stride;
  if (approx_keys.size() != num_queries * n || true_neighbors.size() != num_queries * k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", num_queries, " queries of ", n, " keys and ", k,
        " neighbours: ", num_queries * n, " keys and ", num_queries * k,
        " neighbour ids, got ", approx_keys.size(), " and ", true_neighbors.size()));
  }
  for (size_t q = 0; q < num_queries; ++q) {
    absl::Status status =
        builder.AddQuery(centroid_orders.subspan(q * centroid_order_stride, centroid_order_stride),
                         approx_keys.subspan(q * n, n), true_neighbors.subspan(q * k, k));
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("query ", q, ": ", status.message()));
    }
  }
  return builder.Finish();
}

}  // namespace nestor::tuning

#include "tuning/autotuner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "index/tuning_trace.h"
#include "tuning/recall_model.h"

namespace nestor::tuning {
namespace {

double Seconds(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

absl::Status CheckQueries(const Index& index, absl::Span<const float> queries,
                          absl::Span<const DatapointId> true_ids, int k) {
  const size_t d = static_cast<size_t>(index.dimension());
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k must be >= 1, got ", k));
  if (queries.empty() || queries.size() % d != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries must be a non-empty multiple of the dimension ", d, " floats, got ",
        queries.size()));
  }
  const size_t nq = queries.size() / d;
  if (true_ids.size() != nq * static_cast<size_t>(k)) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", nq, " x ", k,
                                                   " true neighbour ids, got ",
                                                   true_ids.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckSelf(size_t num_queries, absl::Span<const DatapointId> self_ids) {
  if (!self_ids.empty() && self_ids.size() != num_queries) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", num_queries,
                                                   " self ids (one per query), got ",
                                                   self_ids.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckReorderCandidate(int reorder_k) {
  if (reorder_k < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_codes_reorder_k must be >= 1, got ", reorder_k));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<DatapointId>> ExactNeighborIds(
    const Index& exact, absl::Span<const float> queries, int k,
    absl::Span<const DatapointId> self_ids) {
  const size_t d = static_cast<size_t>(exact.dimension());
  RETURN_IF_ERROR(CheckSelf(queries.size() / d, self_ids));
  const int extra = self_ids.empty() ? 0 : 1;
  if (exact.size() < static_cast<size_t>(k + extra)) {
    return absl::InvalidArgumentError(absl::StrCat("recall@", k, " needs at least ", k,
                                                   " vectors, the index holds ",
                                                   exact.size()));
  }
  SearchParams params;
  params.k = k + extra;
  ASSIGN_OR_RETURN(auto results, exact.Search(queries, params));
  std::vector<DatapointId> ids;
  ids.reserve(results.size() * k);
  for (size_t i = 0; i < results.size(); ++i) {
    int taken = 0;
    for (const Neighbor& n : results[i]) {
      if (taken == k || (extra && n.id == self_ids[i])) continue;
      ids.push_back(n.id);
      ++taken;
    }
  }
  return ids;
}

absl::StatusOr<Trace> BuildIndexTrace(const Index& index, absl::Span<const float> queries,
                                      absl::Span<const DatapointId> true_ids, int k,
                                      int max_partitions,
                                      absl::Span<const DatapointId> self_ids,
                                      int shortlist_dim) {
  RETURN_IF_ERROR(CheckQueries(index, queries, true_ids, k));
  RETURN_IF_ERROR(CheckSelf(queries.size() / index.dimension(), self_ids));
  TuningScanLayout layout;
  std::optional<TraceBuilder> builder;
  absl::flat_hash_map<DatapointId, uint32_t> dense_of;
  std::vector<uint32_t> truth(k);
  TraceOptions trace_options;
  trace_options.k = k;
  trace_options.num_partitions = index.options().num_partitions;
  trace_options.dimension = index.dimension();
  trace_options.max_partitions = max_partitions;
  trace_options.shortlist_dim = shortlist_dim;
  RETURN_IF_ERROR(ScanForTuning(
      index, queries, max_partitions, shortlist_dim, &layout,
      [&](size_t q, absl::Span<const uint32_t> order,
          absl::Span<float> keys) -> absl::Status {
        if (!builder.has_value()) {
          trace_options.num_partitions = layout.num_partitions;
          ASSIGN_OR_RETURN(TraceBuilder b,
                           TraceBuilder::Create(trace_options, layout.partition_of));
          builder.emplace(std::move(b));
          dense_of.reserve(layout.ids.size());
          for (size_t v = 0; v < layout.ids.size(); ++v) {
            dense_of[layout.ids[v]] = static_cast<uint32_t>(v);
          }
        }
        for (int j = 0; j < k; ++j) {
          const DatapointId id = true_ids[q * k + j];
          auto it = dense_of.find(id);
          if (it == dense_of.end()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "query ", q, ": true neighbour id ", id, " is not in the index"));
          }
          truth[j] = it->second;
        }
        if (!self_ids.empty()) {
          auto it = dense_of.find(self_ids[q]);
          if (it == dense_of.end()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "query ", q, ": its own id ", self_ids[q], " is not in the index"));
          }
          keys[it->second] = std::numeric_limits<float>::infinity();
        }
        return builder->AddQuery(order, keys, truth);
      }));
  return builder->Finish();
}

absl::StatusOr<OperatingPoint> MeasureOperatingPoint(const Index& index,
                                                     absl::Span<const float> queries,
                                                     absl::Span<const DatapointId> true_ids,
                                                     int k, int partitions_to_search,
                                                     int reorder_k, int max_queries,
                                                     absl::Span<const DatapointId> self_ids,
                                                     int shortlist_dim, int shortlist_size,
                                                     int64_t max_codes) {
  RETURN_IF_ERROR(CheckQueries(index, queries, true_ids, k));
  RETURN_IF_ERROR(CheckSelf(queries.size() / index.dimension(), self_ids));
  const int extra = self_ids.empty() ? 0 : 1;
  const size_t d = static_cast<size_t>(index.dimension());
  size_t nq = queries.size() / d;
  if (max_queries > 0) nq = std::min(nq, static_cast<size_t>(max_queries));
  SearchParams params;
  params.k = k + extra;
  params.partitions_to_search = partitions_to_search;
  params.max_codes = max_codes;
  if (shortlist_dim > 0) {
    params.shortlist_dim = shortlist_dim;
    params.shortlist_size = std::max(shortlist_size, k) + extra;
  } else {
    params.reorder_k = std::max(reorder_k, k) + extra;
  }
  std::vector<double> latencies(nq);
  size_t found = 0;
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < nq; ++i) {
    const absl::Time t0 = absl::Now();
    ASSIGN_OR_RETURN(auto results, index.Search(queries.subspan(i * d, d), params));
    latencies[i] = Seconds(t0);
    int taken = 0;
    for (const Neighbor& n : results[0]) {
      if (extra && n.id == self_ids[i]) continue;
      if (taken++ == k) break;
      for (int j = 0; j < k; ++j) {
        if (true_ids[i * k + j] == n.id) {
          ++found;
          break;
        }
      }
    }
  }
  const double total = Seconds(start);
  OperatingPoint point;
  point.partitions_to_search = partitions_to_search;
  point.reorder_k = shortlist_dim > 0 ? 0 : reorder_k;
  point.shortlist_dim = shortlist_dim;
  point.shortlist_size = shortlist_dim > 0 ? shortlist_size : 0;
  point.max_codes = max_codes;
  point.measured_recall = static_cast<double>(found) / (static_cast<double>(nq) * k);
  point.measured_qps = total > 0 ? static_cast<double>(nq) / total : 0.0;
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    const size_t i = std::min(nq - 1, static_cast<size_t>(p * static_cast<double>(nq)));
    return absl::Seconds(latencies[i]);
  };
  point.latency_p50 = percentile(0.50);
  point.latency_p99 = percentile(0.99);
  return point;
}

bool SameSettings(const OperatingPoint& a, const OperatingPoint& b) {
  return a.partitions_to_search == b.partitions_to_search && a.reorder_k == b.reorder_k &&
         a.shortlist_dim == b.shortlist_dim && a.shortlist_size == b.shortlist_size &&
         a.max_codes == b.max_codes;
}

std::string DescribeSettings(const OperatingPoint& p) {
  if (p.shortlist_dim > 0) {
    return absl::StrCat("P=", p.partitions_to_search, " funnel ", p.shortlist_dim, "d x ",
                        p.shortlist_size);
  }
  if (p.max_codes > 0) {
    return absl::StrCat("P=", p.partitions_to_search, " max_codes=", p.max_codes, " R=",
                        p.reorder_k);
  }
  return absl::StrCat("P=", p.partitions_to_search, " R=", p.reorder_k);
}

std::vector<double> DefaultMaxCodesSteps() { return {-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5}; }

std::vector<int64_t> MaxCodesAxis(int partitions_to_search, double mean_partition_size,
                                  absl::Span<const double> steps) {
  std::vector<int64_t> axis;
  if (partitions_to_search < 2) return axis;
  for (double s : steps) {
    const double budget = (partitions_to_search + s) * mean_partition_size;
    if (!std::isfinite(budget) || budget < 0.5 || budget > 9.0e18) continue;
    const int64_t m = std::llround(budget);
    if (m >= 1) axis.push_back(m);
  }
  std::sort(axis.begin(), axis.end());
  axis.erase(std::unique(axis.begin(), axis.end()), axis.end());
  return axis;
}

std::vector<int> DefaultPartitionsAxis(int max_partitions) {
  std::vector<int> axis;
  for (int p = 1; p <= max_partitions; p = std::max(p + 1, p + p / 8)) axis.push_back(p);
  if (axis.empty() || axis.back() != max_partitions) axis.push_back(max_partitions);
  return axis;
}

std::vector<int> DefaultReorderAxis(int k, bool uses_codes) {
  if (!uses_codes) return {k};
  std::vector<int> axis;
  for (int m : {2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 30, 40, 50, 60, 80, 100}) {
    const int r = k * m / 2;  // 1x .. 50x k in steps of half a k
    if (axis.empty() || r > axis.back()) axis.push_back(r);
  }
  return axis;
}

int DefaultMaxPartitions(int num_partitions) {
  return std::min(num_partitions, std::max(32, num_partitions / 4));
}

absl::StatusOr<AutotuneResult> Autotune(const Index& index, absl::Span<const float> queries,
                                        absl::Span<const DatapointId> true_ids,
                                        const AutotuneOptions& options,
                                        absl::Span<const DatapointId> self_ids) {
  const absl::Time start = absl::Now();
  const int k = options.k;
  RETURN_IF_ERROR(CheckQueries(index, queries, true_ids, k));
  const int num_partitions = index.options().num_partitions;
  if (num_partitions < 1) {
    return absl::InvalidArgumentError(
        "the autotuner needs a partitioned index (num_partitions > 0), got an exact index");
  }
  const IndexStats stats = index.stats();
  const bool uses_codes = stats.code_type == "int8";
  auto progress = [&](absl::string_view stage, double f) {
    if (options.progress) options.progress(stage, f);
  };

  AutotuneResult result;
  result.k = k;
  result.num_partitions = num_partitions;
  result.dimension = index.dimension();
  result.num_vectors = stats.vector_count;
  result.num_queries = static_cast<int>(queries.size() / index.dimension());
  result.code_type = stats.code_type;

  int max_partitions = options.max_partitions > 0
                           ? std::min(options.max_partitions, num_partitions)
                           : DefaultMaxPartitions(num_partitions);
  std::vector<int> p_axis = options.partitions_to_search;
  if (p_axis.empty()) {
    p_axis = DefaultPartitionsAxis(max_partitions);
  } else if (options.max_partitions == 0) {
    max_partitions = std::min(num_partitions, std::max(max_partitions, p_axis.back()));
  }
  std::vector<int> r_axis = options.reorder_k;
  if (r_axis.empty()) r_axis = DefaultReorderAxis(k, uses_codes);
  if (p_axis.back() > max_partitions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partitions_to_search candidates go up to ", p_axis.back(),
        " but the trace ranks only ", max_partitions, " partitions (num_partitions ",
        num_partitions, ")"));
  }
  result.max_partitions = max_partitions;
  for (int p : options.max_codes_partitions) {
    if (p < 1 || p > max_partitions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_codes_partitions must be in 1..", max_partitions, ", got ", p));
    }
  }
  for (int r : options.max_codes_reorder_k) RETURN_IF_ERROR(CheckReorderCandidate(r));
  for (double s : options.max_codes_steps) {
    if (!std::isfinite(s) || std::abs(s) > num_partitions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_codes_steps must be finite and within -", num_partitions, "..", num_partitions,
          " (mean partition sizes; num_partitions ", num_partitions, "), got ", s));
    }
  }

  std::vector<int> dims = options.shortlist_dims;
  if (dims.empty()) dims = {0};
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  std::vector<int> s_axis = options.shortlist_sizes;
  if (s_axis.empty()) s_axis = r_axis;
  for (int dim : dims) {
    if (dim < 0 || dim > index.dimension()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shortlist_dim must be in 0..", index.dimension(), " (0 = funnel off), got ", dim));
    }
  }

  // 1. The traces: one scan per query and scan dimension, as deep as the largest
  // candidate.
  progress("trace", 0.0);
  absl::Time t = absl::Now();
  // traces[i] belongs to dims[i]; axes[i] is its reorder / shortlist-size axis.
  std::vector<Trace> traces;
  std::vector<std::vector<int>> axes;
  for (size_t i = 0; i < dims.size(); ++i) {
    ASSIGN_OR_RETURN(Trace trace, BuildIndexTrace(index, queries, true_ids, k, max_partitions,
                                                  self_ids, dims[i]));
    traces.push_back(std::move(trace));
    axes.push_back(dims[i] > 0 ? s_axis : r_axis);
    progress("trace", 0.4 * static_cast<double>(i + 1) / dims.size());
  }
  result.trace_seconds = Seconds(t);
  std::vector<GridTable> recall_tables(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    ASSIGN_OR_RETURN(recall_tables[i], PredictRecallTable(traces[i], p_axis, axes[i]));
  }

  // 2. Cost calibration: short timed runs at the corners and middle of each scan
  // dimension's grid (the full-dimension one in full, the funnel ones at fewer points).
  t = absl::Now();
  struct Setting {
    size_t trace = 0;
    int p = 0;
    int r = 0;  // reorder_k, or shortlist_size with a funnel
  };
  std::vector<Setting> settings;
  for (size_t i = 0; i < dims.size(); ++i) {
    const std::vector<int>& ax = axes[i];
    std::vector<int> cal_p = {p_axis.front(), p_axis[p_axis.size() / 2], p_axis.back()};
    std::vector<int> cal_r = {ax.front(), ax[ax.size() / 2], ax.back()};
    if (dims[i] > 0 && dims.size() > 1) {
      cal_p = {p_axis[p_axis.size() / 2], p_axis.back()};
      cal_r = {ax.front(), ax.back()};
    }
    for (int p : cal_p) {
      for (int r : cal_r) {
        bool dup = false;
        for (const Setting& st : settings) dup |= st.trace == i && st.p == p && st.r == r;
        if (!dup) settings.push_back({i, p, r});
      }
    }
  }
  std::vector<CostMeasurement> measurements;
  const int cal_queries = std::max(1, options.calibration_queries);
  for (size_t s = 0; s < settings.size(); ++s) {
    const Setting& st = settings[s];
    const int dim = dims[st.trace];
    double best = 0.0;
    for (int rep = 0; rep < std::max(1, options.calibration_repeats); ++rep) {
      ASSIGN_OR_RETURN(OperatingPoint m,
                       MeasureOperatingPoint(index, queries, true_ids, k, st.p,
                                             dim > 0 ? 0 : st.r, cal_queries, self_ids, dim,
                                             dim > 0 ? st.r : 0));
      const double seconds = 1.0 / *m.measured_qps;
      best = rep == 0 ? seconds : std::min(best, seconds);
    }
    CostMeasurement cm;
    ASSIGN_OR_RETURN(cm.features, ComputeCostFeatures(traces[st.trace], st.p, st.r));
    cm.seconds_per_query = best;
    measurements.push_back(cm);
    progress("calibrate", 0.4 + 0.3 * static_cast<double>(s + 1) / settings.size());
  }
  ASSIGN_OR_RETURN(result.cost_fit, FitCostModel(measurements));
  for (size_t s = 0; s < settings.size(); ++s) {
    CalibrationPoint c;
    const int dim = dims[settings[s].trace];
    c.partitions_to_search = settings[s].p;
    c.reorder_k = dim > 0 ? 0 : settings[s].r;
    c.shortlist_dim = dim;
    c.shortlist_size = dim > 0 ? settings[s].r : 0;
    c.measured_seconds_per_query = measurements[s].seconds_per_query;
    c.predicted_seconds_per_query =
        PredictSeconds(result.cost_fit.coefficients, measurements[s].features);
    result.calibration.push_back(c);
  }
  result.calibration_seconds = Seconds(t);

  // 3. The constrained problem over every candidate of every scan dimension.
  std::vector<OperatingPoint> candidates;
  for (size_t i = 0; i < dims.size(); ++i) {
    ASSIGN_OR_RETURN(GridTable cost_table, PredictCostTable(traces[i],
                                                            result.cost_fit.coefficients,
                                                            p_axis, axes[i]));
    ASSIGN_OR_RETURN(std::vector<OperatingPoint> grid,
                     GridCandidates(recall_tables[i], cost_table));
    for (OperatingPoint& c : grid) {
      if (dims[i] > 0) {
        c.shortlist_dim = dims[i];
        c.shortlist_size = c.reorder_k;
        c.reorder_k = 0;
      }
      candidates.push_back(c);
    }
    if (dims[i] == 0) {
      result.recall_table = std::move(recall_tables[i]);
      result.cost_table = std::move(cost_table);
    } else {
      result.funnel_tables.push_back({dims[i], std::move(recall_tables[i]),
                                      std::move(cost_table)});
    }
  }
  // Budget candidates (P, max_codes, R) on the full-dimension scan.
  const size_t full = static_cast<size_t>(std::find(dims.begin(), dims.end(), 0) - dims.begin());
  if (full < dims.size() && !options.max_codes_steps.empty()) {
    const double mean_size = static_cast<double>(stats.vector_count) / num_partitions;
    std::vector<int> budget_p = options.max_codes_partitions;
    if (budget_p.empty()) budget_p = p_axis;
    const std::vector<int>& budget_r =
        options.max_codes_reorder_k.empty() ? r_axis : options.max_codes_reorder_k;
    for (int p : budget_p) {
      for (int64_t m : MaxCodesAxis(p, mean_size, options.max_codes_steps)) {
        for (int r : budget_r) {
          OperatingPoint c;
          c.partitions_to_search = p;
          c.reorder_k = r;
          c.max_codes = m;
          ASSIGN_OR_RETURN(c.predicted_recall, PredictRecall(traces[full], p, m, r));
          ASSIGN_OR_RETURN(const CostFeatures f, ComputeCostFeatures(traces[full], p, r, m));
          c.predicted_seconds_per_query = PredictSeconds(result.cost_fit.coefficients, f);
          candidates.push_back(c);
        }
      }
    }
  }
  if (options.max_seconds_per_query > 0.0) {
    ASSIGN_OR_RETURN(result.solution,
                     SolveMaxRecall(candidates, options.max_seconds_per_query));
  } else {
    ASSIGN_OR_RETURN(result.solution, SolveMinCost(candidates, options.target_recall));
  }

  // 4. Measure a few frontier points and the choice.
  const auto& pareto = result.solution.pareto;
  std::vector<OperatingPoint> picked;
  const int want = std::max(0, options.measure_points);
  if (want > 0 && !pareto.empty()) {
    for (int i = 0; i < want; ++i) {
      const size_t idx = want == 1 ? pareto.size() - 1
                                   : static_cast<size_t>(std::llround(
                                         static_cast<double>(i) * (pareto.size() - 1) /
                                         (want - 1)));
      const OperatingPoint& p = pareto[idx];
      bool dup = false;
      for (const auto& q : picked) dup |= SameSettings(q, p);
      if (!dup) picked.push_back(p);
    }
  }
  const OperatingPoint& chosen = result.solution.chosen;
  bool has_chosen = false;
  for (const auto& q : picked) has_chosen |= SameSettings(q, chosen);
  if (!has_chosen) picked.push_back(chosen);
  std::sort(picked.begin(), picked.end(), [](const OperatingPoint& a, const OperatingPoint& b) {
    return a.predicted_seconds_per_query < b.predicted_seconds_per_query;
  });
  for (size_t i = 0; i < picked.size(); ++i) {
    OperatingPoint& p = picked[i];
    ASSIGN_OR_RETURN(OperatingPoint m,
                     MeasureOperatingPoint(index, queries, true_ids, k, p.partitions_to_search,
                                           p.reorder_k, options.measure_queries, self_ids,
                                           p.shortlist_dim, p.shortlist_size, p.max_codes));
    p.measured_recall = m.measured_recall;
    p.measured_qps = m.measured_qps;
    p.latency_p50 = m.latency_p50;
    p.latency_p99 = m.latency_p99;
    if (SameSettings(p, chosen)) result.chosen = p;
    progress("measure", 0.7 + 0.3 * static_cast<double>(i + 1) / picked.size());
  }
  result.frontier = std::move(picked);
  result.tuning_seconds = Seconds(start);
  progress("done", 1.0);
  return result;
}

}  // namespace nestor::tuning

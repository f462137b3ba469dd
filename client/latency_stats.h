// Latency percentiles and recall@k for `nestor bench`.
#ifndef NESTOR_CLIENT_LATENCY_STATS_H_
#define NESTOR_CLIENT_LATENCY_STATS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace nestor::client {

// The p-th percentile (0 <= p <= 100) of `values` by linear interpolation between the
// closest ranks (NumPy's default): rank = p/100 × (n − 1). 0 for an empty input.
double Percentile(std::vector<double> values, double p);

struct LatencySummary {
  int64_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};

// Summary of `values` (any unit; the result is in the same unit).
LatencySummary Summarize(absl::Span<const double> values);

// recall@k = |approximate top-k ∩ exact top-k| / k, averaged over queries.
// `approximate[q]` holds the ids returned for query q (at most k are used, fewer count as
// misses); `exact` is rows × exact_cols ids of which the first k are used.
double RecallAtK(const std::vector<std::vector<int64_t>>& approximate,
                 absl::Span<const int64_t> exact, int64_t exact_cols, int k);

}  // namespace nestor::client

#endif  // NESTOR_CLIENT_LATENCY_STATS_H_

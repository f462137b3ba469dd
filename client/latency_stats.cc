#include "client/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace nestor::client {

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  p = std::clamp(p, 0.0, 100.0);
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lower = static_cast<size_t>(std::floor(rank));
  const size_t upper = std::min(lower + 1, values.size() - 1);
  const double weight = rank - static_cast<double>(lower);
  return values[lower] + (values[upper] - values[lower]) * weight;
}

LatencySummary Summarize(absl::Span<const double> values) {
  LatencySummary summary;
  summary.count = static_cast<int64_t>(values.size());
  if (values.empty()) return summary;
  std::vector<double> copy(values.begin(), values.end());
  double sum = 0;
  for (double v : copy) sum += v;
  summary.mean = sum / copy.size();
  summary.max = *std::max_element(copy.begin(), copy.end());
  summary.p50 = Percentile(copy, 50);
  summary.p95 = Percentile(copy, 95);
  summary.p99 = Percentile(copy, 99);
  return summary;
}

double RecallAtK(const std::vector<std::vector<int64_t>>& approximate,
                 absl::Span<const int64_t> exact, int64_t exact_cols, int k) {
  if (approximate.empty() || k <= 0) return 0;
  const int64_t use = std::min<int64_t>(k, exact_cols);
  double total = 0;
  for (size_t q = 0; q < approximate.size(); ++q) {
    std::unordered_set<int64_t> truth(exact.begin() + q * exact_cols,
                                      exact.begin() + q * exact_cols + use);
    int64_t hits = 0;
    const size_t n = std::min<size_t>(approximate[q].size(), static_cast<size_t>(k));
    for (size_t i = 0; i < n; ++i) hits += truth.count(approximate[q][i]);
    total += static_cast<double>(hits) / static_cast<double>(use);
  }
  return total / static_cast<double>(approximate.size());
}

}  // namespace nestor::client

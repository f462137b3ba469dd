// Seeded data generators, index construction and search that expect success, and a
// double-precision brute-force oracle for index tests.
#ifndef NESTOR_TESTS_INDEX_TEST_UTIL_H_
#define NESTOR_TESTS_INDEX_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index.h"
#include "index/index_factory.h"
#include "tests/testing/status_matchers.h"

namespace nestor {

// How gtest prints Metric and CodeType test parameters (found by argument-dependent
// lookup): their names, not raw bytes, so ctest names read well and stay the same from
// build to build.
inline void PrintTo(Metric metric, std::ostream* os) { *os << MetricName(metric); }
inline void PrintTo(CodeType code_type, std::ostream* os) { *os << CodeTypeName(code_type); }

}  // namespace nestor

namespace nestor::testing {

// n x d floats, each uniform in [-1, 1).
inline std::vector<float> RandomVectors(size_t n, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> v(n * d);
  for (float& x : v) x = uniform(rng);
  return v;
}

// n x d floats around `clusters` random centres (spread 1) with noise `sigma`.
inline std::vector<float> ClusteredVectors(size_t n, int d, int clusters, float sigma,
                                           uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::normal_distribution<float> noise(0.0f, sigma);
  std::vector<float> centres(static_cast<size_t>(clusters) * d);
  for (float& x : centres) x = uniform(rng);
  std::vector<float> v(n * d);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng() % clusters;
    for (int j = 0; j < d; ++j) v[i * d + j] = centres[c * d + j] + noise(rng);
  }
  return v;
}

// Ids first, first+1, ...
inline std::vector<DatapointId> SequentialIds(size_t n, DatapointId first = 0) {
  std::vector<DatapointId> ids(n);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

// Options for a `dimension`-wide index under `metric` holding `code_type` codes in
// `num_partitions` k-means partitions (0: the exact index); other fields keep their
// defaults.
inline IndexOptions PartitionedOptions(int dimension, Metric metric, int num_partitions,
                                       CodeType code_type = IndexOptions().code_type) {
  IndexOptions options;
  options.dimension = dimension;
  options.metric = metric;
  options.num_partitions = num_partitions;
  options.code_type = code_type;
  return options;
}

// CreateIndex(options), expecting OK.
inline std::unique_ptr<Index> MustCreate(const IndexOptions& options) {
  auto index = CreateIndex(options);
  EXPECT_THAT(index, IsOk());
  return std::move(index).value();
}

// An index created from `options` and built over `data` (rows of options.dimension
// floats) under ids 0, 1, ...; each step is expected to be OK.
inline std::unique_ptr<Index> MustCreateBuilt(const IndexOptions& options,
                                              const std::vector<float>& data) {
  std::unique_ptr<Index> index = MustCreate(options);
  EXPECT_THAT(index->Upsert(SequentialIds(data.size() / options.dimension), data), IsOk());
  EXPECT_THAT(index->Build(), IsOk());
  return index;
}

// index.Search(queries, params), expecting OK; no result lists on error.
inline std::vector<std::vector<Neighbor>> MustSearch(const Index& index,
                                                     const std::vector<float>& queries,
                                                     const SearchParams& params) {
  auto results = index.Search(queries, params);
  EXPECT_THAT(results, IsOk());
  return results.ok() ? *std::move(results) : std::vector<std::vector<Neighbor>>{};
}

// Score of `x` against `q` on the first `p` coordinates, in double precision, as the
// index reports it (L2 squared distance, dot product, or cosine with re-normalized
// prefixes; a zero prefix scores 0).
inline double NaiveScore(Metric metric, const float* q, const float* x, int p) {
  double dot = 0, qq = 0, xx = 0, l2 = 0;
  for (int j = 0; j < p; ++j) {
    dot += double{q[j]} * x[j];
    qq += double{q[j]} * q[j];
    xx += double{x[j]} * x[j];
    l2 += (double{q[j]} - x[j]) * (double{q[j]} - x[j]);
  }
  switch (metric) {
    case Metric::kL2:
      return l2;
    case Metric::kInnerProduct:
      return dot;
    case Metric::kCosine:
      return (qq == 0 || xx == 0) ? 0.0 : dot / std::sqrt(qq * xx);
  }
  return 0;
}

// Nearest-first (score, id) over all rows for one query; ties by smaller id.
inline std::vector<std::pair<double, DatapointId>> NaiveSearch(
    Metric metric, const float* q, const std::vector<float>& data,
    const std::vector<DatapointId>& ids, int d, int p, size_t k) {
  std::vector<std::pair<double, DatapointId>> all;
  for (size_t r = 0; r < ids.size(); ++r) {
    const double s = NaiveScore(metric, q, data.data() + r * d, p);
    all.push_back({HigherIsNearer(metric) ? -s : s, ids[r]});
  }
  std::sort(all.begin(), all.end());
  all.resize(std::min(k, all.size()));
  if (HigherIsNearer(metric)) {
    for (auto& e : all) e.first = -e.first;
  }
  return all;
}

// |approx ∩ exact| / |exact| averaged over queries (recall@k against the oracle).
inline double Recall(const std::vector<std::vector<Neighbor>>& approx,
                     const std::vector<std::vector<Neighbor>>& exact) {
  double total = 0;
  for (size_t q = 0; q < exact.size(); ++q) {
    absl::flat_hash_set<DatapointId> truth;
    for (const Neighbor& n : exact[q]) truth.insert(n.id);
    size_t hit = 0;
    for (const Neighbor& n : approx[q]) hit += truth.contains(n.id);
    total += truth.empty() ? 1.0 : static_cast<double>(hit) / truth.size();
  }
  return exact.empty() ? 1.0 : total / exact.size();
}

inline std::vector<DatapointId> Ids(const std::vector<Neighbor>& neighbors) {
  std::vector<DatapointId> ids;
  for (const Neighbor& n : neighbors) ids.push_back(n.id);
  return ids;
}

}  // namespace nestor::testing

#endif  // NESTOR_TESTS_INDEX_TEST_UTIL_H_

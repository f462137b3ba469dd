// A seeded simulation of an IVF search with noisy approximate (code) scores and exact
// reorder, written independently of tuning/ so the recall model can be checked against
// it: brute force over the same data gives the recall the model must predict.
#ifndef NESTOR_TESTS_TUNING_IVF_SIMULATION_H_
#define NESTOR_TESTS_TUNING_IVF_SIMULATION_H_

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace nestor::tuning::testing {

// Clustered Gaussian data, random data points as centroids with nearest assignment, and
// approximate key = exact squared L2 + a deterministic pseudo-random perturbation.
struct IvfSimulation {
  int num_vectors = 0;
  int dimension = 0;
  int num_partitions = 0;
  int num_queries = 0;
  int k = 0;
  std::vector<uint32_t> partition_of;    // num_vectors
  std::vector<uint32_t> centroid_order;  // num_queries x num_partitions, nearest first
  std::vector<float> exact_keys;         // num_queries x num_vectors
  std::vector<float> approx_keys;        // num_queries x num_vectors
  std::vector<uint32_t> true_neighbors;  // num_queries x k, by (exact key, index)

  // Neighbours found over all queries by the simulated search: the first P partitions'
  // vectors, the best max(R, k) by (approx key, index), then the best k of those by
  // (exact key, index).
  uint64_t FoundBySearch(int partitions_to_search, int reorder_k) const {
    const int p_eff = std::min(partitions_to_search, num_partitions);
    const size_t keep = static_cast<size_t>(std::max(reorder_k, k));
    uint64_t found = 0;
    for (int q = 0; q < num_queries; ++q) {
      const float* approx = approx_keys.data() + static_cast<size_t>(q) * num_vectors;
      const float* exact = exact_keys.data() + static_cast<size_t>(q) * num_vectors;
      std::vector<bool> probed(num_partitions, false);
      for (int r = 0; r < p_eff; ++r) probed[centroid_order[q * num_partitions + r]] = true;
      std::vector<std::pair<float, uint32_t>> candidates;
      for (int v = 0; v < num_vectors; ++v) {
        if (probed[partition_of[v]]) candidates.emplace_back(approx[v], v);
      }
      const size_t kept = std::min(keep, candidates.size());
      std::partial_sort(candidates.begin(), candidates.begin() + kept, candidates.end());
      std::vector<std::pair<float, uint32_t>> reordered;
      for (size_t i = 0; i < kept; ++i) {
        reordered.emplace_back(exact[candidates[i].second], candidates[i].second);
      }
      const size_t top = std::min(static_cast<size_t>(k), reordered.size());
      std::partial_sort(reordered.begin(), reordered.begin() + top, reordered.end());
      const std::set<uint32_t> truth(true_neighbors.begin() + q * k,
                                     true_neighbors.begin() + (q + 1) * k);
      for (size_t i = 0; i < top; ++i) found += truth.count(reordered[i].second);
    }
    return found;
  }
  double SearchRecall(int partitions_to_search, int reorder_k) const {
    return static_cast<double>(FoundBySearch(partitions_to_search, reorder_k)) /
           (static_cast<double>(num_queries) * static_cast<double>(k));
  }
};

inline float SquaredL2(const float* a, const float* b, int d) {
  float s = 0.0f;
  for (int j = 0; j < d; ++j) s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

// `noise` is the half-width of the uniform perturbation of the approximate keys.
inline IvfSimulation MakeIvfSimulation(uint32_t seed, int num_vectors = 3000,
                                       int dimension = 16, int num_clusters = 20,
                                       int num_partitions = 24, int num_queries = 100,
                                       int k = 10, float noise = 12.0f) {
  IvfSimulation sim;
  sim.num_vectors = num_vectors;
  sim.dimension = dimension;
  sim.num_partitions = num_partitions;
  sim.num_queries = num_queries;
  sim.k = k;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> center_dist(-6.0f, 6.0f);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  const int d = dimension;

  std::vector<float> centers(static_cast<size_t>(num_clusters) * d);
  for (float& c : centers) c = center_dist(rng);
  std::vector<float> data(static_cast<size_t>(num_vectors) * d);
  for (int v = 0; v < num_vectors; ++v) {
    const int c = static_cast<int>(rng() % num_clusters);
    for (int j = 0; j < d; ++j) data[v * d + j] = centers[c * d + j] + gauss(rng);
  }
  // Centroids: distinct random data points; nearest assignment (ties: lower partition).
  std::vector<int> order(num_vectors);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<float> centroids(static_cast<size_t>(num_partitions) * d);
  for (int p = 0; p < num_partitions; ++p) {
    std::copy_n(data.begin() + order[p] * d, d, centroids.begin() + p * d);
  }
  sim.partition_of.resize(num_vectors);
  for (int v = 0; v < num_vectors; ++v) {
    float best = SquaredL2(&data[v * d], &centroids[0], d);
    uint32_t best_p = 0;
    for (int p = 1; p < num_partitions; ++p) {
      const float dist = SquaredL2(&data[v * d], &centroids[p * d], d);
      if (dist < best) {
        best = dist;
        best_p = static_cast<uint32_t>(p);
      }
    }
    sim.partition_of[v] = best_p;
  }
  // Queries near data points.
  std::vector<float> query(d);
  for (int q = 0; q < num_queries; ++q) {
    const int base = static_cast<int>(rng() % num_vectors);
    for (int j = 0; j < d; ++j) query[j] = data[base * d + j] + 0.5f * gauss(rng);
    std::vector<std::pair<float, uint32_t>> cents;
    for (int p = 0; p < num_partitions; ++p) {
      cents.emplace_back(SquaredL2(query.data(), &centroids[p * d], d), p);
    }
    std::sort(cents.begin(), cents.end());
    for (const auto& c : cents) sim.centroid_order.push_back(c.second);
    std::vector<std::pair<float, uint32_t>> exact;
    for (int v = 0; v < num_vectors; ++v) {
      const float e = SquaredL2(query.data(), &data[v * d], d);
      sim.exact_keys.push_back(e);
      // Deterministic perturbation: int8-like code error, larger than neighbour gaps.
      sim.approx_keys.push_back(e + noise * unit(rng));
      exact.emplace_back(e, v);
    }
    std::partial_sort(exact.begin(), exact.begin() + k, exact.end());
    for (int i = 0; i < k; ++i) sim.true_neighbors.push_back(exact[i].second);
  }
  return sim;
}

}  // namespace nestor::tuning::testing

#endif  // NESTOR_TESTS_TUNING_IVF_SIMULATION_H_

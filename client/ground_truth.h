// Exact k-nearest neighbours computed locally with BLAS (cblas_sgemm), used by
// `nestor bench` as the oracle for recall@k. Blocked over queries and base rows so that
// memory stays at block_queries × block_base floats however large the data.
#ifndef NESTOR_CLIENT_GROUND_TRUTH_H_
#define NESTOR_CLIENT_GROUND_TRUTH_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "client/datasets.h"

namespace nestor::client {

// Same meanings as nestor.v1.Metric.
enum class GroundTruthMetric {
  kL2,            // Squared Euclidean distance; smaller is nearer.
  kInnerProduct,  // Dot product; larger is nearer.
  kCosine,        // Cosine similarity; larger is nearer. Zero vectors score 0.
};

struct GroundTruthOptions {
  GroundTruthMetric metric = GroundTruthMetric::kL2;
  // Neighbours per query; fewer when the base has fewer rows. Default 10.
  int k = 10;
  // Score on the first `prefix_dim` coordinates only (Matryoshka prefix; cosine
  // normalizes the prefixes). 0 (default) = all coordinates.
  int64_t prefix_dim = 0;
  // Rows per BLAS block. Memory is block_queries × block_base floats (64 MiB default).
  int64_t block_queries = 1024;
  int64_t block_base = 16384;
};

// queries.rows × k nearest base rows, nearest first. Ties are broken by the smaller row.
struct Neighbors {
  int64_t rows = 0;
  int k = 0;
  std::vector<int64_t> ids;       // rows × k base row numbers.
  std::vector<float> distances;   // rows × k scores in the metric's convention.
};

// INVALID_ARGUMENT when the column counts differ, k < 1, the base is empty or prefix_dim
// is outside 0..cols.
absl::StatusOr<Neighbors> ExactNeighbors(const FloatMatrix& base, const FloatMatrix& queries,
                                         const GroundTruthOptions& options);

}  // namespace nestor::client

#endif  // NESTOR_CLIENT_GROUND_TRUTH_H_

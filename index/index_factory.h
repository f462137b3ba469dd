// Construction and loading of indexes.
#ifndef NESTOR_INDEX_INDEX_FACTORY_H_
#define NESTOR_INDEX_INDEX_FACTORY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "index/index.h"

namespace nestor {

// Options of a new index. Mirrors proto nestor.v1.IndexConfig (server/ converts).
struct IndexOptions {
  // Coordinates per vector, 1..65536.
  int dimension = 0;
  Metric metric = Metric::kL2;
  // 0: exact (brute-force) index. N > 0: partitioned index with N k-means partitions,
  // trained by Build() once at least N vectors are present.
  int num_partitions = 0;
  // Partitions scanned when SearchParams.partitions_to_search is 0. 0 picks
  // max(1, num_partitions / 16). More partitions: higher recall, slower queries.
  int default_partitions_to_search = 0;
  // k-means (Lloyd) iterations; more cost build time, rarely recall past 20.
  int training_iterations = 20;
  // Seed of k-means initialisation and of the training sample.
  uint64_t seed = 1234;
  // Training sample is capped at num_partitions * this many points.
  int max_training_points_per_partition = 256;
};

// Validates `options` (INVALID_ARGUMENT naming the field, expected vs actual) and
// returns an empty index.
absl::StatusOr<std::unique_ptr<Index>> CreateIndex(const IndexOptions& options);

// Loads a snapshot written by Index::Save. NOT_FOUND if `directory` holds none;
// DATA_LOSS if it is truncated, corrupt or of an unknown format version.
absl::StatusOr<std::unique_ptr<Index>> LoadIndex(const std::string& directory);

}  // namespace nestor

#endif  // NESTOR_INDEX_INDEX_FACTORY_H_

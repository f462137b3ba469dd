// Construction and loading of indexes.
#ifndef NESTOR_INDEX_INDEX_FACTORY_H_
#define NESTOR_INDEX_INDEX_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "index/index.h"

namespace nestor {


// Validates `options` (INVALID_ARGUMENT naming the field, expected vs actual) and
// returns an empty index. An exact index (num_partitions 0) is refused the options only a
// partitioned index can use (see IndexOptions.num_partitions).
absl::StatusOr<std::unique_ptr<Index>> CreateIndex(const IndexOptions& options);

// Loads a snapshot written by Index::Save. NOT_FOUND if `directory` holds none;
// DATA_LOSS if it is truncated, corrupt or of an unknown format version. An exact index
// saved with options CreateIndex now refuses it (an older snapshot) loads with them. When
// `query_defaults` is not null it receives the query defaults saved with the snapshot
// (all 0 for snapshots of format version < 4, or saved without any).
absl::StatusOr<std::unique_ptr<Index>> LoadIndex(const std::string& directory,
                                                 SavedQueryDefaults* query_defaults = nullptr);

}  // namespace nestor

#endif  // NESTOR_INDEX_INDEX_FACTORY_H_

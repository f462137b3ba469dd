// Construction and loading of indexes.
#ifndef NESTOR_INDEX_INDEX_FACTORY_H_
#define NESTOR_INDEX_INDEX_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "index/index.h"

namespace nestor {


// Validates `options` (INVALID_ARGUMENT naming the field, expected vs actual) and
// returns an empty index.
absl::StatusOr<std::unique_ptr<Index>> CreateIndex(const IndexOptions& options);

// Loads a snapshot written by Index::Save. NOT_FOUND if `directory` holds none;
// DATA_LOSS if it is truncated, corrupt or of an unknown format version.
absl::StatusOr<std::unique_ptr<Index>> LoadIndex(const std::string& directory);

}  // namespace nestor

#endif  // NESTOR_INDEX_INDEX_FACTORY_H_

// Argument checks shared by the recall and cost models. Internal to tuning/.
#ifndef NESTOR_TUNING_MODEL_UTIL_H_
#define NESTOR_TUNING_MODEL_UTIL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tuning/trace.h"

namespace nestor::tuning::internal {

// Memory-safety checks of the parts the models read, O(num_queries * k); the full
// invariants are ValidateTrace's job. INVALID_ARGUMENT, also without queries.
absl::Status CheckShape(const Trace& trace);

// partitions_to_search clamped to num_partitions; INVALID_ARGUMENT when < 1 or beyond the
// trace's max_partitions.
absl::StatusOr<int> EffectivePartitions(const Trace& trace, int partitions_to_search);

// INVALID_ARGUMENT when reorder_k < 1.
absl::Status CheckReorder(int reorder_k);

// INVALID_ARGUMENT when max_codes < 0 (0 = no budget).
absl::Status CheckMaxCodes(int64_t max_codes);

// INVALID_ARGUMENT unless both candidate lists are non-empty and strictly increasing.
absl::Status CheckAxes(absl::Span<const int> partitions_to_search,
                       absl::Span<const int> reorder_k);

}  // namespace nestor::tuning::internal

#endif  // NESTOR_TUNING_MODEL_UTIL_H_

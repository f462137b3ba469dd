// Helpers shared by the search implementations: interruption checks and the split of a
// query batch across threads.
#ifndef NESTOR_INDEX_SEARCH_UTIL_H_
#define NESTOR_INDEX_SEARCH_UTIL_H_

#include <cstddef>
#include <functional>

#include "absl/status/status.h"
#include "index/index.h"

namespace nestor {

// DEADLINE_EXCEEDED once params.deadline has passed, CANCELLED once params.cancelled()
// returns true, OK otherwise.
absl::Status CheckInterrupted(const SearchParams& params);

// Splits [0, n) into at most `num_threads` contiguous chunks and runs
// fn(begin, end) on each, the first inline and the rest on std::threads. Returns the
// first non-OK status (all chunks still run to completion or to their own error).
// At most 256 threads are used whatever `num_threads` says.
absl::Status ParallelForChunks(size_t n, int num_threads,
                               const std::function<absl::Status(size_t, size_t)>& fn);

}  // namespace nestor

#endif  // NESTOR_INDEX_SEARCH_UTIL_H_

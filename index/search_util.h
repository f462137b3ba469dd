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

// Splits [0, n) into at most `num_threads` contiguous chunks (never more than
// ceil(n / min_per_chunk), so small batches stay on the calling thread) and runs
// fn(begin, end) on each. The calling thread runs chunks itself; the others are offered to
// a process-wide pool of persistent worker threads (grown on demand to the largest
// num_threads - 1 ever requested, at most 255, never shrunk), so a call spawns no thread
// once the pool has grown. A chunk no idle worker has taken by the time the caller is free
// is run by the caller, so a call never waits on a busy pool. The chunk bounds depend only
// on n and the chunk count, not on which thread runs a chunk. Returns the first non-OK
// status in chunk order (all chunks still run to completion or to their own error).
//
// Thread safety: safe to call concurrently from any number of threads, and from inside fn.
absl::Status ParallelForChunks(size_t n, int num_threads,
                               const std::function<absl::Status(size_t, size_t)>& fn,
                               size_t min_per_chunk = 1);

}  // namespace nestor

#endif  // NESTOR_INDEX_SEARCH_UTIL_H_

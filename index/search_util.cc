#include "index/search_util.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/time/clock.h"

namespace nestor {

absl::Status CheckInterrupted(const SearchParams& params) {
  if (params.deadline != absl::InfiniteFuture() && absl::Now() >= params.deadline) {
    return absl::DeadlineExceededError("search deadline exceeded");
  }
  if (params.cancelled && params.cancelled()) {
    return absl::CancelledError("search cancelled");
  }
  return absl::OkStatus();
}

absl::Status ParallelForChunks(size_t n, int num_threads,
                               const std::function<absl::Status(size_t, size_t)>& fn) {
  if (n == 0) return absl::OkStatus();
  // Upper bound on threads per call, whatever the caller asks: protects the process from
  // a malformed request; real thread budgets are set by the server's config.
  constexpr size_t kMaxThreads = 256;
  const size_t chunks =
      std::min({static_cast<size_t>(std::max(num_threads, 1)), n, kMaxThreads});
  if (chunks == 1) return fn(0, n);
  std::vector<absl::Status> statuses(chunks);
  std::vector<std::thread> threads;
  threads.reserve(chunks - 1);
  auto bounds = [&](size_t c) { return c * n / chunks; };
  for (size_t c = 1; c < chunks; ++c) {
    threads.emplace_back([&, c] { statuses[c] = fn(bounds(c), bounds(c + 1)); });
  }
  statuses[0] = fn(bounds(0), bounds(1));
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : statuses) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace nestor

#include "index/search_util.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace nestor {
namespace {

// Upper bound on threads per call, whatever the caller asks: protects the process from a
// malformed request; real thread budgets are set by the server's config.
constexpr size_t kMaxThreads = 256;

// Persistent workers that run queued tasks. Created on first use and never destroyed (the
// workers outlive main; they only ever block on the queue).
//
// Thread safety: all methods are thread-safe.
class WorkerPool {
 public:
  static WorkerPool& Get() {
    static WorkerPool* pool = new WorkerPool();
    return *pool;
  }

  // Queues `tasks` copies of `task`, first growing the pool to at least `tasks` workers.
  void Offer(const std::function<void()>& task, size_t tasks) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    while (workers_ < tasks) {
      std::thread([this] { Work(); }).detach();
      ++workers_;
    }
    for (size_t i = 0; i < tasks; ++i) queue_.push_back(task);
  }

 private:
  void Work() ABSL_LOCKS_EXCLUDED(mu_) {
    for (;;) {
      std::function<void()> task;
      {
        mu_.LockWhen(absl::Condition(this, &WorkerPool::HasWork));
        task = std::move(queue_.front());
        queue_.pop_front();
        mu_.Unlock();
      }
      task();
    }
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty(); }

  absl::Mutex mu_;
  size_t workers_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
};

// One ParallelForChunks call, shared with the pool tasks that help it (a task may start
// after the call has returned, so the state is reference counted; such a task finds no
// chunk left and never touches `fn`).
struct ChunkedCall {
  ChunkedCall(size_t n, size_t chunks, const std::function<absl::Status(size_t, size_t)>* fn)
      : n(n), chunks(chunks), fn(fn), statuses(chunks) {}

  // Claims and runs chunks until none is left.
  void RunChunks() ABSL_LOCKS_EXCLUDED(mu) {
    for (;;) {
      const size_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) return;
      statuses[c] = (*fn)(c * n / chunks, (c + 1) * n / chunks);
      absl::MutexLock lock(&mu);
      ++done;
    }
  }
  bool AllDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done == chunks; }

  const size_t n;
  const size_t chunks;
  const std::function<absl::Status(size_t, size_t)>* const fn;
  std::vector<absl::Status> statuses;  // statuses[c] written by whoever runs chunk c
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  size_t done ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

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
                               const std::function<absl::Status(size_t, size_t)>& fn,
                               size_t min_per_chunk) {
  if (n == 0) return absl::OkStatus();
  const size_t by_size = (n + std::max<size_t>(min_per_chunk, 1) - 1) /
                         std::max<size_t>(min_per_chunk, 1);
  const size_t chunks =
      std::min({static_cast<size_t>(std::max(num_threads, 1)), by_size, kMaxThreads});
  if (chunks == 1) return fn(0, n);
  auto call = std::make_shared<ChunkedCall>(n, chunks, &fn);
  WorkerPool::Get().Offer([call] { call->RunChunks(); }, chunks - 1);
  call->RunChunks();
  call->mu.LockWhen(absl::Condition(call.get(), &ChunkedCall::AllDone));
  call->mu.Unlock();
  for (const absl::Status& s : call->statuses) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace nestor

#include "client/request_load.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace nestor::client {

absl::StatusOr<LoadPass> SendRequests(NestorClient& client,
                                      const std::vector<nestor::v1::FindNeighborsRequest>& requests,
                                      int concurrency, std::atomic<int64_t>* queries_done) {
  if (concurrency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrency must be >= 1 (requests in flight), got ", concurrency));
  }
  const int64_t num_requests = static_cast<int64_t>(requests.size());
  // first_query[b]: number of request b's first query across the list.
  std::vector<int64_t> first_query(requests.size() + 1, 0);
  for (int64_t b = 0; b < num_requests; ++b) {
    first_query[b + 1] = first_query[b] + requests[b].queries_size();
  }
  LoadPass pass;
  pass.latencies_ms.assign(requests.size(), 0.0);
  pass.ids.resize(static_cast<size_t>(first_query.back()));
  const int threads = static_cast<int>(std::min<int64_t>(concurrency, num_requests));

  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  absl::Status first_error;
  auto worker = [&]() {
    nestor::v1::FindNeighborsResponse response;
    for (;;) {
      const int64_t b = next.fetch_add(1);
      if (b >= num_requests || failed.load()) return;
      const int64_t n = requests[b].queries_size();
      const absl::Time t0 = absl::Now();
      absl::Status status = client.FindNeighbors(requests[b], &response);
      pass.latencies_ms[b] = absl::ToDoubleMilliseconds(absl::Now() - t0);
      if (status.ok() && response.nearest_neighbors_size() != n) {
        status = absl::InternalError(absl::StrCat("the server answered ",
                                                  response.nearest_neighbors_size(),
                                                  " result lists for ", n, " queries"));
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = status;
        failed.store(true);
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        std::vector<int64_t>& ids = pass.ids[first_query[b] + i];
        const auto& neighbors = response.nearest_neighbors(static_cast<int>(i)).neighbors();
        ids.reserve(static_cast<size_t>(neighbors.size()));
        for (const auto& neighbor : neighbors) {
          ids.push_back(static_cast<int64_t>(neighbor.datapoint().datapoint_id()));
        }
      }
      if (queries_done != nullptr) queries_done->fetch_add(n);
    }
  };
  const absl::Time start = absl::Now();
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();  // the calling thread works too
  for (std::thread& t : pool) t.join();
  pass.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!first_error.ok()) return first_error;
  return pass;
}

}  // namespace nestor::client

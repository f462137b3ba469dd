// The timed request loop of a FindNeighbors load test: every request of a prebuilt list
// sent once, with a fixed number of requests in flight. Shared by `nestor bench` and
// `nestor-bench --mode grpc`, so both measure the same client.
#ifndef NESTOR_CLIENT_REQUEST_LOAD_H_
#define NESTOR_CLIENT_REQUEST_LOAD_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "client/nestor_client.h"
#include "proto/nestor.pb.h"

namespace nestor::client {

// One pass over a request list.
struct LoadPass {
  // From the first send to the last answer, in seconds.
  double wall_seconds = 0;
  // latencies_ms[b]: request b's round trip (send to parsed answer), in milliseconds.
  std::vector<double> latencies_ms;
  // ids[q]: neighbour ids of query q, in the server's order (nearest first), where the
  // queries are numbered across the requests in list order (request 0's first, ...).
  std::vector<std::vector<int64_t>> ids;
};

// Sends every request of `requests` once through `client`.FindNeighbors and collects the
// answers. `concurrency` threads (the calling one included, capped at requests.size())
// each take the next unsent request in list order, so at most `concurrency` requests are
// in flight; each thread reuses one response message. `requests` should be built before
// the call so the timing covers only sending, waiting and copying ids out. When
// `queries_done` is given it is advanced by each answered request's query count (for a
// progress display on another thread).
//
// Errors: INVALID_ARGUMENT for concurrency < 1; otherwise the first failed call's status
// (the server's code and message; the other threads stop taking requests), or INTERNAL
// when an answer holds a different number of result lists than its request has queries.
absl::StatusOr<LoadPass> SendRequests(NestorClient& client,
                                      const std::vector<nestor::v1::FindNeighborsRequest>& requests,
                                      int concurrency,
                                      std::atomic<int64_t>* queries_done = nullptr);

}  // namespace nestor::client

#endif  // NESTOR_CLIENT_REQUEST_LOAD_H_

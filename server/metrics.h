// Prometheus metrics of one server: one registry, exposed over HTTP at /metrics.
#ifndef NESTOR_SERVER_METRICS_H_
#define NESTOR_SERVER_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "index/index.h"
#include "server/metrics_http.h"

namespace prometheus {
class Registry;
template <typename T> class Family;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace nestor::server {

// stats.memory_bytes / stats.vector_count in bytes; 0 for an empty index.
double BytesPerVector(const IndexStats& stats);

// Metric families (base units in names):
//   nestor_requests_total{method,code}          RPCs finished, by gRPC code name
//   nestor_request_duration_seconds{method}     RPC latency, 100 us .. 10 s buckets
//   nestor_queries_total{method}                individual queries (a batch counts n)
//   nestor_queries_by_prefix_dim_total{index,prefix_dim}  FindNeighbors queries of
//                                               an index by the Matryoshka prefix they
//                                               scored at (0 in a request counts as the
//                                               dimension)
//   nestor_index_vectors{index}                 live vectors
//   nestor_index_memory_bytes{index}            memory of vectors, ids, centroids
//   nestor_index_build_seconds{index}           wall time of the last build
//   nestor_index_bytes_per_vector{index}        memory_bytes / vectors (0 when empty)
// The series labelled with an index go when the index is deleted (RemoveIndex).
//
// Thread safety: every method may be called concurrently (prometheus-cpp families and
// metrics are internally synchronized).
class ServerMetrics {
 public:
  // Starts serving /metrics (MetricsHttpServer) on `listen_address`:`port` (0 picks a free port).
  // UNAVAILABLE if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      const std::string& listen_address, int port);
  // Metrics without an HTTP endpoint (port() is 0); for tests.
  static std::unique_ptr<ServerMetrics> CreateWithoutExposer();

  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // The bound HTTP port, 0 without an exposer.
  int port() const { return port_; }

  // One finished RPC: `code` is the absl/gRPC code, `latency` its wall time.
  void RecordRequest(absl::string_view method, absl::StatusCode code, absl::Duration latency);
  // `count` individual queries served by one RPC of `method`.
  void RecordQueries(absl::string_view method, uint64_t count);
  // `count` queries of index `name` scored at Matryoshka prefix dimension `prefix_dim`;
  // `exact`: answered by brute force (Query.exact, e.g. `nestor bench
  // --server_ground_truth`), also counted in nestor_exact_queries_total.
  void RecordPrefixQueries(const std::string& name, int prefix_dim, uint64_t count,
                           bool exact = false) ABSL_LOCKS_EXCLUDED(prefix_mu_);
  // Sets the gauges of index `name` from its stats.
  void UpdateIndex(const std::string& name, const IndexStats& stats);
  // Drops the gauges and the prefix query counters of a deleted index.
  void RemoveIndex(const std::string& name) ABSL_LOCKS_EXCLUDED(prefix_mu_);

  // Stops serving /metrics (idempotent).
  void Stop();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  ServerMetrics();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> http_;
  int port_ = 0;
  prometheus::Family<prometheus::Counter>* requests_total_;
  prometheus::Family<prometheus::Histogram>* request_duration_seconds_;
  prometheus::Family<prometheus::Counter>* queries_total_;
  prometheus::Family<prometheus::Counter>* queries_by_prefix_dim_total_;
  prometheus::Family<prometheus::Counter>* exact_queries_total_;
  prometheus::Family<prometheus::Gauge>* index_vectors_;
  prometheus::Family<prometheus::Gauge>* index_memory_bytes_;
  prometheus::Family<prometheus::Gauge>* index_build_seconds_;
  prometheus::Family<prometheus::Gauge>* index_bytes_per_vector_;
  // The counters of queries_by_prefix_dim_total_ by index name and prefix dimension: the
  // prefixes an index was queried at are known only here, and RemoveIndex drops them all.
  // Counters are incremented under the lock, so none is removed while in use.
  absl::Mutex prefix_mu_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<int, prometheus::Counter*>>
      prefix_counters_ ABSL_GUARDED_BY(prefix_mu_);
  // The counters of exact_queries_total_ by index name, kept the same way.
  absl::flat_hash_map<std::string, prometheus::Counter*> exact_counters_
      ABSL_GUARDED_BY(prefix_mu_);
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_METRICS_H_

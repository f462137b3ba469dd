#include "server/metrics.h"

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/status_macros.h"
#include "server/status_util.h"

namespace nestor::server {
namespace {

// 100 us .. 10 s, roughly 1-2.5-5 per decade.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const kBuckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,   10.0};
  return *kBuckets;
}

}  // namespace

double BytesPerVector(const IndexStats& stats) {
  if (stats.vector_count == 0) return 0.0;
  return static_cast<double>(stats.memory_bytes) / static_cast<double>(stats.vector_count);
}

ServerMetrics::ServerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  requests_total_ = &prometheus::BuildCounter()
                         .Name("nestor_requests_total")
                         .Help("RPCs finished, by method and gRPC status code")
                         .Register(*registry_);
  request_duration_seconds_ = &prometheus::BuildHistogram()
                                   .Name("nestor_request_duration_seconds")
                                   .Help("RPC wall time in seconds, by method")
                                   .Register(*registry_);
  queries_total_ = &prometheus::BuildCounter()
                        .Name("nestor_queries_total")
                        .Help("Individual queries served (a batch of n counts n)")
                        .Register(*registry_);
  queries_by_prefix_dim_total_ =
      &prometheus::BuildCounter()
           .Name("nestor_queries_by_prefix_dim_total")
           .Help("FindNeighbors queries by index and the Matryoshka prefix dimension they "
                 "scored at")
           .Register(*registry_);
  exact_queries_total_ =
      &prometheus::BuildCounter()
           .Name("nestor_exact_queries_total")
           .Help("FindNeighbors queries answered by brute force (Query.exact, such as the "
                 "ground truth of nestor bench --server_ground_truth), by index; also counted "
                 "in nestor_queries_total and nestor_queries_by_prefix_dim_total")
           .Register(*registry_);
  index_vectors_ = &prometheus::BuildGauge()
                        .Name("nestor_index_vectors")
                        .Help("Live vectors in the index")
                        .Register(*registry_);
  index_memory_bytes_ = &prometheus::BuildGauge()
                             .Name("nestor_index_memory_bytes")
                             .Help("Memory held by vectors, ids and centroids, in bytes")
                             .Register(*registry_);
  index_build_seconds_ = &prometheus::BuildGauge()
                              .Name("nestor_index_build_seconds")
                              .Help("Wall time of the index's last build, in seconds")
                              .Register(*registry_);
  index_bytes_per_vector_ =
      &prometheus::BuildGauge()
           .Name("nestor_index_bytes_per_vector")
           .Help("Index memory per live vector in bytes (memory_bytes / vectors; 0 if empty)")
           .Register(*registry_);
}

ServerMetrics::~ServerMetrics() { Stop(); }

std::unique_ptr<ServerMetrics> ServerMetrics::CreateWithoutExposer() {
  return std::unique_ptr<ServerMetrics>(new ServerMetrics());
}

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    const std::string& listen_address, int port) {
  std::unique_ptr<ServerMetrics> metrics(new ServerMetrics());
  ASSIGN_OR_RETURN(metrics->http_,
                   MetricsHttpServer::Start(listen_address, port, metrics->registry_));
  metrics->port_ = metrics->http_->port();
  return metrics;
}

void ServerMetrics::Stop() { http_.reset(); }

void ServerMetrics::RecordRequest(absl::string_view method, absl::StatusCode code,
                                  absl::Duration latency) {
  const std::string method_name(method);
  requests_total_->Add({{"method", method_name}, {"code", StatusCodeName(code)}}).Increment();
  request_duration_seconds_->Add({{"method", method_name}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::RecordQueries(absl::string_view method, uint64_t count) {
  queries_total_->Add({{"method", std::string(method)}}).Increment(static_cast<double>(count));
}

void ServerMetrics::RecordPrefixQueries(const std::string& name, int prefix_dim,
                                        uint64_t count, bool exact) {
  absl::MutexLock lock(&prefix_mu_);
  prometheus::Counter*& counter = prefix_counters_[name][prefix_dim];
  if (counter == nullptr) {
    counter = &queries_by_prefix_dim_total_->Add(
        {{"index", name}, {"prefix_dim", std::to_string(prefix_dim)}});
  }
  counter->Increment(static_cast<double>(count));
  // Present (at 0) from an index's first query, so that served = all - exact has a
  // right-hand side for every index.
  prometheus::Counter*& exact_counter = exact_counters_[name];
  if (exact_counter == nullptr) exact_counter = &exact_queries_total_->Add({{"index", name}});
  if (exact) exact_counter->Increment(static_cast<double>(count));
}

void ServerMetrics::UpdateIndex(const std::string& name, const IndexStats& stats) {
  index_vectors_->Add({{"index", name}}).Set(static_cast<double>(stats.vector_count));
  index_memory_bytes_->Add({{"index", name}}).Set(static_cast<double>(stats.memory_bytes));
  index_build_seconds_->Add({{"index", name}}).Set(stats.build_seconds);
  index_bytes_per_vector_->Add({{"index", name}}).Set(BytesPerVector(stats));
}

void ServerMetrics::RemoveIndex(const std::string& name) {
  for (auto* family : {index_vectors_, index_memory_bytes_, index_build_seconds_,
                       index_bytes_per_vector_}) {
    family->Remove(&family->Add({{"index", name}}));
  }
  absl::MutexLock lock(&prefix_mu_);
  if (auto exact = exact_counters_.find(name); exact != exact_counters_.end()) {
    exact_queries_total_->Remove(exact->second);
    exact_counters_.erase(exact);
  }
  auto it = prefix_counters_.find(name);
  if (it == prefix_counters_.end()) return;
  for (const auto& [prefix_dim, counter] : it->second) {
    queries_by_prefix_dim_total_->Remove(counter);
  }
  prefix_counters_.erase(it);
}

}  // namespace nestor::server

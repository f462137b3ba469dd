// gRPC adapter of nestor.v1.IndexService over an IndexRegistry: validates requests and
// limits, converts proto <-> engine types, records metrics.
#ifndef NESTOR_SERVER_INDEX_SERVICE_H_
#define NESTOR_SERVER_INDEX_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/index.h"
#include "proto/nestor.grpc.pb.h"
#include "proto/nestor.pb.h"
#include "server/index_registry.h"
#include "server/metrics.h"
#include "server/tuned_defaults.h"

namespace nestor::server {

// Converts a wire IndexConfig to engine options: METRIC_UNSPECIFIED -> L2,
// CODE_TYPE_UNSPECIFIED -> IndexOptions' default code type, zero fields -> the defaults in
// the proto comments. INVALID_ARGUMENT for an unknown metric or code type value or a
// count above INT32_MAX; the engine checks the rest (CreateIndex).
absl::StatusOr<IndexOptions> IndexOptionsFromProto(const v1::IndexConfig& config);
// The engine's options (defaults filled in) as a wire IndexConfig.
v1::IndexConfig IndexConfigToProto(const IndexOptions& options);
// Name, config and stats of one index.
// `tuned`: the query defaults a tuning result applied to this index (zeros for none).
v1::IndexInfo MakeIndexInfo(const std::string& name, const Index& index,
                            const TunedDefaults& tuned = {});

// Limits of IndexService, from ServerConfig.
struct IndexServiceOptions {
  // Most queries per FindNeighbors and datapoints per upsert message, >= 1.
  int max_batch_size = 1024;
  // Most neighbours per query, >= 1.
  int max_neighbor_count = 1000;
  // SearchParams.num_threads of every search, >= 1.
  int search_threads = 1;
  // Tuned query defaults (server/tuned_defaults.h) substituted for a query's unset
  // partitions_to_search / reorder_k / funnel (see FindNeighborsRequest.Query); null:
  // none. Not owned.
  const TunedDefaultsTable* tuned_defaults = nullptr;
};

// Implements nestor.v1.IndexService (synchronous API). Every RPC validates the whole
// request before changing anything (a rejected request changes nothing; see the proto
// for StreamUpsertDatapoints, which applies each message as it arrives), records
// nestor_requests_total / nestor_request_duration_seconds under the RPC's name, and
// maps errors to gRPC codes through ToGrpcStatus. Searches bind the call's deadline and
// cancellation into SearchParams, so they end with DEADLINE_EXCEEDED / CANCELLED.
//
// Thread safety: all RPC methods may run concurrently (gRPC calls them from its worker
// threads); shared state lives in the registry and metrics, both thread-safe.
class IndexServiceImpl final : public v1::IndexService::Service {
 public:
  // `registry` and `metrics` must outlive the service.
  IndexServiceImpl(IndexRegistry* registry, ServerMetrics* metrics,
                   const IndexServiceOptions& options);

  grpc::Status CreateIndex(grpc::ServerContext* context, const v1::CreateIndexRequest* request,
                           v1::IndexInfo* response) override;
  grpc::Status GetIndex(grpc::ServerContext* context, const v1::GetIndexRequest* request,
                        v1::IndexInfo* response) override;
  grpc::Status ListIndexes(grpc::ServerContext* context,
                           const v1::ListIndexesRequest* request,
                           v1::ListIndexesResponse* response) override;
  grpc::Status DeleteIndex(grpc::ServerContext* context,
                           const v1::DeleteIndexRequest* request,
                           v1::DeleteIndexResponse* response) override;
  grpc::Status UpsertDatapoints(grpc::ServerContext* context,
                                const v1::UpsertDatapointsRequest* request,
                                v1::UpsertDatapointsResponse* response) override;
  grpc::Status StreamUpsertDatapoints(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::UpsertDatapointsRequest>* reader,
      v1::UpsertDatapointsResponse* response) override;
  grpc::Status RemoveDatapoints(grpc::ServerContext* context,
                                const v1::RemoveDatapointsRequest* request,
                                v1::RemoveDatapointsResponse* response) override;
  grpc::Status BuildIndex(grpc::ServerContext* context, const v1::BuildIndexRequest* request,
                          v1::IndexInfo* response) override;
  grpc::Status SaveIndex(grpc::ServerContext* context, const v1::SaveIndexRequest* request,
                         v1::SaveIndexResponse* response) override;
  grpc::Status FindNeighbors(grpc::ServerContext* context,
                             const v1::FindNeighborsRequest* request,
                             v1::FindNeighborsResponse* response) override;

 private:
  // The tuned query defaults of `index` (all 0 when none are applied).
  TunedDefaults Tuned(const Index& index) const;
  // Validates one upsert message (limits, dimensions) and applies it to `index` as one
  // all-or-nothing Index::Upsert call. Returns the number of datapoints written.
  absl::StatusOr<size_t> ApplyUpsert(Index* index,
                                     const v1::UpsertDatapointsRequest& request);
  absl::Status DoFindNeighbors(grpc::ServerContext* context,
                               const v1::FindNeighborsRequest& request,
                               v1::FindNeighborsResponse* response);
  absl::Status DoStreamUpsert(grpc::ServerReader<v1::UpsertDatapointsRequest>* reader,
                              v1::UpsertDatapointsResponse* response);
  // Refreshes the gauges of `name` if it still names `index` (not deleted meanwhile).
  void UpdateIndexMetrics(const std::string& name, const Index& index);
  // Runs `body`, records the request metrics under `method`, converts the status.
  template <typename Body>
  grpc::Status Instrument(const char* method, Body&& body);

  IndexRegistry* const registry_;
  ServerMetrics* const metrics_;
  const IndexServiceOptions options_;
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_INDEX_SERVICE_H_

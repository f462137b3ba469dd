// Tuned query defaults of live indexes and the gRPC adapter of nestor.v1.TuningService
// (issue #5). The tuner (tools/nestor_tune.cc, tuning/) is offline; the server only
// installs the settings a TuningResult chose as an index's query defaults.
#ifndef NESTOR_SERVER_TUNING_SERVICE_H_
#define NESTOR_SERVER_TUNING_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/index.h"
#include "proto/nestor.grpc.pb.h"
#include "proto/nestor.pb.h"
#include "server/index_registry.h"
#include "server/metrics.h"
#include "proto/tuning_result_file.h"
#include "server/tuned_defaults.h"

namespace nestor::server {


// Checks `result` against `index` and installs result.chosen in `table`: its
// partitions_to_search, reorder_k, shortlist_dim and shortlist_size (the funnel; 0 = off)
// and max_codes (0 = no limit) become the index's tuned query defaults, in one swap.
// Errors: FAILED_PRECONDITION for an exact index; INVALID_ARGUMENT for a result of another
// dimension, metric, code type or num_partitions, or for chosen settings that
// ValidateTunedDefaults refuses (the message names the field as chosen.FIELD, the allowed
// range and the value given).
absl::StatusOr<v1::ApplyTuningResponse> ApplyTuningResult(const std::shared_ptr<Index>& index,
                                                          const v1::TuningResult& result,
                                                          TunedDefaultsTable* table);

// Applies "NAME=PATH" specs (ServerConfig.tuning_files) at start. INVALID_ARGUMENT for a
// malformed spec; the errors of Get, ReadTuningResult and ApplyTuningResult, each
// prefixed with the spec.
absl::Status ApplyTuningFiles(const std::vector<std::string>& specs,
                              const IndexRegistry& registry, TunedDefaultsTable* table);

// Implements nestor.v1.TuningService.
//
// Thread safety: RPCs may run concurrently; state lives in the registry and the table.
class TuningServiceImpl final : public v1::TuningService::Service {
 public:
  TuningServiceImpl(IndexRegistry* registry, TunedDefaultsTable* table, ServerMetrics* metrics)
      : registry_(registry), table_(table), metrics_(metrics) {}

  grpc::Status ApplyTuning(grpc::ServerContext* context, const v1::ApplyTuningRequest* request,
                           v1::ApplyTuningResponse* response) override;

 private:
  IndexRegistry* const registry_;
  TunedDefaultsTable* const table_;
  ServerMetrics* const metrics_;
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_TUNING_SERVICE_H_

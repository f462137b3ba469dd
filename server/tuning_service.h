// Tuned query defaults of live indexes and the gRPC adapter of nestor.v1.TuningService
// (issue #5). The tuner (tools/nestor_tune.cc, tuning/) is offline; the server only
// installs the settings a TuningResult chose as an index's query defaults.
#ifndef NESTOR_SERVER_TUNING_SERVICE_H_
#define NESTOR_SERVER_TUNING_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "index/index.h"
#include "proto/nestor.grpc.pb.h"
#include "proto/nestor.pb.h"
#include "server/index_registry.h"
#include "server/metrics.h"

namespace nestor::server {

// Query defaults installed by tuning; 0 = the index's own default rule.
struct TunedDefaults {
  int partitions_to_search = 0;
  int reorder_k = 0;
};

// The tuned defaults of each live index, keyed by the index object itself (not its name),
// so a deleted and re-created index of the same name starts untuned. The index's own
// options never change: FindNeighbors substitutes these for a query's zero
// partitions_to_search / reorder_k, so a swap is one pointer-sized write under a mutex
// and every request reads one consistent pair.
//
// Thread safety: every method may be called concurrently.
class TunedDefaultsTable {
 public:
  // The defaults of `index` ({0, 0} when never tuned).
  TunedDefaults Get(const Index* index) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the defaults of `index`; returns the previous ones. Entries of indexes no
  // longer alive are dropped on the way.
  TunedDefaults Set(const std::shared_ptr<Index>& index, TunedDefaults defaults)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::weak_ptr<Index> index;
    TunedDefaults defaults;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const Index*, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Reads a TuningResult written by `nestor tune`: JSON when the file's first
// non-blank character is '{', protobuf text format otherwise. NOT_FOUND when the file
// cannot be read; INVALID_ARGUMENT when it does not parse.
absl::StatusOr<v1::TuningResult> ReadTuningResult(const std::string& path);

// Checks `result` against `index` and installs result.chosen in `table`. Errors:
// FAILED_PRECONDITION for an exact index; INVALID_ARGUMENT for a result of another
// dimension, metric, code type or num_partitions, or settings out of range
// (partitions_to_search 1..num_partitions, reorder_k 1..kMaxTunedReorderK).
inline constexpr int kMaxTunedReorderK = 1000000;
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

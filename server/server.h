// The composed Nestor server: index registry + gRPC (IndexService, health, reflection) +
// Prometheus metrics. Used by main() and by in-process tests.
#ifndef NESTOR_SERVER_SERVER_H_
#define NESTOR_SERVER_SERVER_H_

#include <memory>

#include <grpcpp/server.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/config.h"
#include "server/index_registry.h"
#include "server/index_service.h"
#include "server/metrics.h"
#include "server/tuning_service.h"

namespace nestor::server {

// A running server. Create() loads every index snapshot from data_dir, starts metrics on
// listen_address:metrics_port and gRPC on listen_address:grpc_port (port 0 picks a free
// port; see grpc_port()/metrics_port() for the bound ones). Shutdown() stops gRPC
// (in-flight RPCs get until the deadline, then are cancelled), saves every index and
// stops metrics; the destructor calls it if needed.
//
// config.grpc_threads RPCs are handled at once (a gRPC ResourceQuota caps the threads);
// when more are in flight, gRPC may refuse the excess with RESOURCE_EXHAUSTED ("Server
// Threadpool Exhausted"): load shedding instead of oversubscribing the cores.
//
// Thread safety: grpc_port(), metrics_port(), registry() and Shutdown() may be called
// from any thread; Shutdown() is idempotent.
class NestorServer {
 public:
  // Fills defaults into `config` (FillServerConfigDefaults) and validates it
  // (INVALID_ARGUMENT); UNAVAILABLE if a port cannot be bound; INTERNAL if data_dir
  // cannot be created. Corrupt snapshots are logged and skipped.
  static absl::StatusOr<std::unique_ptr<NestorServer>> Create(const ServerConfig& config);

  ~NestorServer();
  NestorServer(const NestorServer&) = delete;
  NestorServer& operator=(const NestorServer&) = delete;

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_->port(); }
  const ServerConfig& config() const { return config_; }
  IndexRegistry* registry() { return registry_.get(); }

  // Stops accepting RPCs, waits up to `grace` for in-flight ones (then cancels them),
  // saves all indexes to data_dir and stops metrics. Returns the first save error.
  absl::Status Shutdown(absl::Duration grace = absl::Seconds(5)) ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until the gRPC server has shut down (by Shutdown from another thread).
  void Wait();

 private:
  explicit NestorServer(const ServerConfig& config);

  const ServerConfig config_;
  // Declared before registry_, which holds a pointer to it.
  std::unique_ptr<TunedDefaultsTable> tuned_defaults_;
  std::unique_ptr<IndexRegistry> registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<IndexServiceImpl> service_;
  std::unique_ptr<TuningServiceImpl> tuning_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int grpc_port_ = 0;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status shutdown_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_SERVER_H_

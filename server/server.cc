#include "server/server.h"

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"

namespace nestor::server {

NestorServer::NestorServer(const ServerConfig& config) : config_(config) {}

NestorServer::~NestorServer() { Shutdown().IgnoreError(); }

absl::StatusOr<std::unique_ptr<NestorServer>> NestorServer::Create(
    const ServerConfig& config_in) {
  ServerConfig config = config_in;
  FillServerConfigDefaults(&config);
  absl::Status valid = ValidateServerConfig(config);
  if (!valid.ok()) return valid;

  std::unique_ptr<NestorServer> server(new NestorServer(config));
  // The tuned defaults are created first: the registry restores those saved in the
  // snapshots into them, and --tuning_file (below) replaces them.
  server->tuned_defaults_ = std::make_unique<TunedDefaultsTable>();
  server->registry_ =
      std::make_unique<IndexRegistry>(config.data_dir(), server->tuned_defaults_.get());
  absl::StatusOr<int> loaded = server->registry_->LoadAll();
  if (!loaded.ok()) return loaded.status();

  absl::StatusOr<std::unique_ptr<ServerMetrics>> metrics =
      ServerMetrics::Create(config.listen_address(), static_cast<int>(config.metrics_port()));
  if (!metrics.ok()) return metrics.status();
  server->metrics_ = *std::move(metrics);
  for (const auto& [name, index] : server->registry_->List()) {
    server->metrics_->UpdateIndex(name, index->stats());
  }

  IndexServiceOptions service_options;
  service_options.max_batch_size = static_cast<int>(config.max_batch_size());
  service_options.max_neighbor_count = static_cast<int>(config.max_neighbor_count());
  service_options.search_threads = static_cast<int>(config.search_threads());
  std::vector<std::string> tuning_files(config.tuning_files().begin(),
                                        config.tuning_files().end());
  absl::Status tuned =
      ApplyTuningFiles(tuning_files, *server->registry_, server->tuned_defaults_.get());
  if (!tuned.ok()) return tuned;
  service_options.tuned_defaults = server->tuned_defaults_.get();
  server->service_ = std::make_unique<IndexServiceImpl>(
      server->registry_.get(), server->metrics_.get(), service_options);
  server->tuning_service_ = std::make_unique<TuningServiceImpl>(
      server->registry_.get(), server->tuned_defaults_.get(), server->metrics_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(config.listen_address(), ":", config.grpc_port());
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->grpc_port_);
  // gRPC sets SO_REUSEPORT by default, so a second server on a busy port would start and
  // take a random share of the connections; with it off that port fails to bind.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes()));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes()));
  // The sync server keeps up to kMaxPollers threads polling for new RPCs besides the
  // handlers, and briefly needs one more while threads come and go; with fewer spare
  // threads, measured on gRPC 1.51, it refuses RPCs below grpc_threads in flight.
  constexpr int kMaxPollers = 2;
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxPollers);
  grpc::ResourceQuota quota("nestor-server");
  // Handler threads that have finished but not yet exited still count against the quota;
  // under load that made RPCs below grpc_threads in flight fail (a flaky concurrency test
  // on a loaded 2-core CI machine), so the quota leaves as many again for them.
  quota.SetMaxThreads(2 * static_cast<int>(config.grpc_threads()) + kMaxPollers + 1);
  builder.SetResourceQuota(quota);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->tuning_service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->grpc_port_ == 0) {
    server->grpc_server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot serve gRPC on ", address,
        ": is the port in use, or the address not one of this machine's?"));
  }
  if (auto* health = server->grpc_server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
  }
  std::cerr << "nestor-server: " << *loaded << " index(es) loaded from "
            << config.data_dir() << std::endl;
  return server;
}

absl::Status NestorServer::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return shutdown_status_;
  shut_down_ = true;
  if (grpc_server_ != nullptr) {
    if (auto* health = grpc_server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
    grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    grpc_server_->Wait();
  }
  if (registry_ != nullptr) shutdown_status_ = registry_->SaveAll();
  if (metrics_ != nullptr) metrics_->Stop();
  return shutdown_status_;
}

void NestorServer::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace nestor::server

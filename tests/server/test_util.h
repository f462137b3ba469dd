// Fixture code shared by the server suites: seeded data, and an in-process NestorServer on
// 127.0.0.1 with ephemeral ports, called through the real generated stubs.
#ifndef NESTOR_TESTS_SERVER_TEST_UTIL_H_
#define NESTOR_TESTS_SERVER_TEST_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/nestor.grpc.pb.h"
#include "server/server.h"
#include "server/status_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor::server {

// n × dim standard-normal floats, row-major, reproducible from `seed`.
inline std::vector<float> RandomVectors(int n, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(static_cast<size_t>(n) * dim);
  for (float& x : out) x = normal(rng);
  return out;
}

// <temp dir>/<prefix>_<pid>_<current test name>, removed if it exists: a data dir that no
// other test, and no other test process, shares.
inline std::filesystem::path FreshDataDir(const std::string& prefix) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat(prefix, "_", ::getpid(), "_",
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  return dir;
}

// Creates a NestorServer on `data_dir` (loading its snapshots) that listens on 127.0.0.1
// with ephemeral gRPC and metrics ports; `tuning_files` are --tuning_file specs.
inline absl::StatusOr<std::unique_ptr<NestorServer>> StartLoopbackServer(
    const std::filesystem::path& data_dir, uint32_t grpc_threads,
    const std::vector<std::string>& tuning_files = {}) {
  ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_grpc_port(0);
  config.set_metrics_port(0);
  config.set_data_dir(data_dir.string());
  config.set_grpc_threads(grpc_threads);
  for (const std::string& spec : tuning_files) config.add_tuning_files(spec);
  return NestorServer::Create(config);
}

// A channel to `server`'s gRPC port without message size limits.
inline std::shared_ptr<grpc::Channel> LoopbackChannel(const NestorServer& server) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server.grpc_port()),
                                   grpc::InsecureChannelCredentials(), args);
}

// Shuts `server` down as SIGTERM does (saving every index), expects that to be OK, and
// frees it; a null `server` is left alone.
inline void ExpectShutdown(std::unique_ptr<NestorServer>& server) {
  if (server != nullptr) {
    EXPECT_THAT(server->Shutdown(), ::nestor::testing::IsOk());
  }
  server.reset();
}

// Calls the unary IndexService `rpc` on `stub` and returns its response, or its gRPC status
// as absl::Status; a finite `timeout` becomes the call's deadline (DEADLINE_EXCEEDED).
template <typename Request, typename Response>
absl::StatusOr<Response> CallIndexService(
    grpc::Status (v1::IndexService::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    v1::IndexService::Stub& stub, const Request& request,
    absl::Duration timeout = absl::InfiniteDuration()) {
  Response response;
  grpc::ClientContext context;
  if (timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  absl::Status status = FromGrpcStatus((stub.*rpc)(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

inline absl::StatusOr<v1::IndexInfo> CreateIndex(v1::IndexService::Stub& stub,
                                                 const std::string& name,
                                                 const v1::IndexConfig& config) {
  v1::CreateIndexRequest request;
  request.set_name(name);
  *request.mutable_config() = config;
  return CallIndexService(&v1::IndexService::Stub::CreateIndex, stub, request);
}

inline absl::StatusOr<v1::IndexInfo> GetIndex(v1::IndexService::Stub& stub,
                                              const std::string& name) {
  v1::GetIndexRequest request;
  request.set_name(name);
  return CallIndexService(&v1::IndexService::Stub::GetIndex, stub, request);
}

inline absl::Status DeleteIndex(v1::IndexService::Stub& stub, const std::string& name) {
  v1::DeleteIndexRequest request;
  request.set_name(name);
  return CallIndexService(&v1::IndexService::Stub::DeleteIndex, stub, request).status();
}

inline absl::StatusOr<v1::IndexInfo> BuildIndex(v1::IndexService::Stub& stub,
                                                const std::string& name) {
  v1::BuildIndexRequest request;
  request.set_name(name);
  return CallIndexService(&v1::IndexService::Stub::BuildIndex, stub, request);
}

inline absl::StatusOr<v1::UpsertDatapointsResponse> UpsertDatapoints(
    v1::IndexService::Stub& stub, const v1::UpsertDatapointsRequest& request) {
  return CallIndexService(&v1::IndexService::Stub::UpsertDatapoints, stub, request);
}

// Fails with DEADLINE_EXCEEDED when no answer comes within `timeout`.
inline absl::StatusOr<v1::FindNeighborsResponse> FindNeighbors(
    v1::IndexService::Stub& stub, const v1::FindNeighborsRequest& request,
    absl::Duration timeout = absl::Seconds(30)) {
  return CallIndexService(&v1::IndexService::Stub::FindNeighbors, stub, request, timeout);
}

// An upsert into `name` of rows [begin, end): datapoint ids[i] with data row i, where
// `data` is row-major with `dim` floats a row.
inline v1::UpsertDatapointsRequest UpsertRequest(const std::string& name,
                                                 const std::vector<uint64_t>& ids,
                                                 const std::vector<float>& data, size_t begin,
                                                 size_t end, int dim) {
  v1::UpsertDatapointsRequest request;
  request.set_index(name);
  for (size_t i = begin; i < end; ++i) {
    v1::Datapoint* datapoint = request.add_datapoints();
    datapoint->set_datapoint_id(ids[i]);
    datapoint->mutable_feature_vector()->Add(&data[i * dim], &data[(i + 1) * dim]);
  }
  return request;
}

// A search on `name` with one query per row of `queries` (row-major, `dim` floats a row),
// each asking for `k` neighbors over `partitions_to_search` partitions (0: the index's
// default).
inline v1::FindNeighborsRequest FindRequest(const std::string& name,
                                            const std::vector<float>& queries, int k,
                                            int partitions_to_search, int dim) {
  v1::FindNeighborsRequest request;
  request.set_index(name);
  for (size_t i = 0; i * dim < queries.size(); ++i) {
    v1::FindNeighborsRequest::Query* query = request.add_queries();
    query->mutable_datapoint()->mutable_feature_vector()->Add(&queries[i * dim],
                                                              &queries[(i + 1) * dim]);
    query->set_neighbor_count(k);
    query->set_partitions_to_search(partitions_to_search);
  }
  return request;
}

}  // namespace nestor::server

#endif  // NESTOR_TESTS_SERVER_TEST_UTIL_H_

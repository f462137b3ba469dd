// C++ client of Nestor's IndexService (proto/nestor.proto). Wraps the generated stub so
// that callers see absl::Status / absl::StatusOr instead of grpc::Status, and every call
// carries the deadline set in the options.
#ifndef NESTOR_CLIENT_NESTOR_CLIENT_H_
#define NESTOR_CLIENT_NESTOR_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "proto/nestor.grpc.pb.h"
#include "proto/nestor.pb.h"

namespace nestor::client {

// The one conversion from grpc::Status to absl::Status on the client side. The codes
// share numbers; the message is kept as is.
absl::Status FromGrpcStatus(const grpc::Status& status);

struct NestorClientOptions {
  // "host:port" of the server. Default 127.0.0.1:50051, the server's default.
  std::string server = "127.0.0.1:50051";
  // Deadline of every call, measured from its start. absl::InfiniteDuration() (default)
  // sets none; a call past its deadline fails with DEADLINE_EXCEEDED.
  absl::Duration timeout = absl::InfiniteDuration();
};

// A bulk load over StreamUpsertDatapoints: Write() sends one message, Finish() closes the
// stream and returns the server's totals. The server applies each message as it
// arrives, so an error leaves the earlier messages written.
// Thread safety: one thread at a time.
class UpsertStream {
 public:
  UpsertStream(std::unique_ptr<grpc::ClientContext> context,
               std::unique_ptr<nestor::v1::UpsertDatapointsResponse> response,
               std::unique_ptr<grpc::ClientWriter<nestor::v1::UpsertDatapointsRequest>> writer,
               std::string index);
  ~UpsertStream();
  UpsertStream(const UpsertStream&) = delete;
  UpsertStream& operator=(const UpsertStream&) = delete;

  // Sends `ids.size()` vectors of `dimension` floats each; `vectors` is row-major,
  // ids.size() * dimension floats. When the stream is broken (the server rejected a
  // message) returns the server's status, e.g. INVALID_ARGUMENT for a wrong dimension.
  absl::Status Write(absl::Span<const uint64_t> ids, absl::Span<const float> vectors,
                     int64_t dimension);

  // Half-closes the stream and waits for the server's answer.
  absl::StatusOr<nestor::v1::UpsertDatapointsResponse> Finish();

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<nestor::v1::UpsertDatapointsResponse> response_;
  std::unique_ptr<grpc::ClientWriter<nestor::v1::UpsertDatapointsRequest>> writer_;
  std::string index_;
  bool finished_ = false;
};

// Thread safety: every method may be called concurrently (the stub is thread-safe).
class NestorClient {
 public:
  // Opens an insecure channel to options.server. The connection itself is made lazily,
  // so an unreachable server shows up as UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<NestorClient>> Create(
      const NestorClientOptions& options);

  const NestorClientOptions& options() const { return options_; }

  absl::StatusOr<nestor::v1::IndexInfo> CreateIndex(const std::string& name,
                                                    const nestor::v1::IndexConfig& config);
  absl::StatusOr<nestor::v1::IndexInfo> GetIndex(const std::string& name);
  absl::StatusOr<nestor::v1::ListIndexesResponse> ListIndexes();
  absl::Status DeleteIndex(const std::string& name);
  // One batched upsert (at most the server's max_batch_size vectors).
  absl::StatusOr<nestor::v1::UpsertDatapointsResponse> UpsertDatapoints(
      const std::string& index, absl::Span<const uint64_t> ids,
      absl::Span<const float> vectors, int64_t dimension);
  absl::StatusOr<nestor::v1::RemoveDatapointsResponse> RemoveDatapoints(
      const std::string& index, absl::Span<const uint64_t> ids);
  absl::StatusOr<nestor::v1::IndexInfo> BuildIndex(const std::string& name);
  // TuningService.ApplyTuning: `result`'s chosen settings become the index's query
  // defaults, swapped in while searches continue.
  absl::StatusOr<nestor::v1::ApplyTuningResponse> ApplyTuning(
      const std::string& index, const nestor::v1::TuningResult& result);
  absl::StatusOr<nestor::v1::SaveIndexResponse> SaveIndex(const std::string& name);
  absl::StatusOr<nestor::v1::FindNeighborsResponse> FindNeighbors(
      const nestor::v1::FindNeighborsRequest& request);
  // The same, parsing into `*response` (cleared first by gRPC's parse), so that a caller
  // in a loop, such as `nestor bench`, reuses one response message and its allocations.
  absl::Status FindNeighbors(const nestor::v1::FindNeighborsRequest& request,
                             nestor::v1::FindNeighborsResponse* response);
  // Starts a client-streaming bulk load into `index`. The stream's deadline is the
  // client's timeout, counted from now.
  std::unique_ptr<UpsertStream> StartUpsertStream(const std::string& index);

 private:
  NestorClient(NestorClientOptions options, std::shared_ptr<grpc::Channel> channel);
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  NestorClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<nestor::v1::IndexService::Stub> stub_;
  std::unique_ptr<nestor::v1::TuningService::Stub> tuning_stub_;
};

// Fills `datapoint` with `dimension` floats from `vector` and the given id.
void FillDatapoint(uint64_t id, const float* vector, int64_t dimension,
                   nestor::v1::Datapoint* datapoint);

}  // namespace nestor::client

#endif  // NESTOR_CLIENT_NESTOR_CLIENT_H_

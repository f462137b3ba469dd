#include "client/nestor_client.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace nestor::client {

namespace v1 = ::nestor::v1;

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode share their numbering (0..16).
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

void FillDatapoint(uint64_t id, const float* vector, int64_t dimension,
                   v1::Datapoint* datapoint) {
  datapoint->set_datapoint_id(id);
  auto* values = datapoint->mutable_feature_vector();
  values->Resize(static_cast<int>(dimension), 0.0f);
  std::copy(vector, vector + dimension, values->mutable_data());
}

namespace {

absl::Status CheckShape(absl::Span<const uint64_t> ids, absl::Span<const float> vectors,
                        int64_t dimension) {
  if (dimension <= 0 || vectors.size() != ids.size() * static_cast<size_t>(dimension)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", ids.size(), " x ", dimension, " = ",
                     ids.size() * static_cast<size_t>(dimension > 0 ? dimension : 0),
                     " floats, got ", vectors.size()));
  }
  return absl::OkStatus();
}

void FillRequest(const std::string& index, absl::Span<const uint64_t> ids,
                 absl::Span<const float> vectors, int64_t dimension,
                 v1::UpsertDatapointsRequest* request) {
  request->set_index(index);
  request->mutable_datapoints()->Reserve(static_cast<int>(ids.size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    FillDatapoint(ids[i], vectors.data() + i * dimension, dimension,
                  request->add_datapoints());
  }
}

}  // namespace

UpsertStream::UpsertStream(std::unique_ptr<grpc::ClientContext> context,
                           std::unique_ptr<v1::UpsertDatapointsResponse> response,
                           std::unique_ptr<grpc::ClientWriter<v1::UpsertDatapointsRequest>> writer,
                           std::string index)
    : context_(std::move(context)),
      response_(std::move(response)),
      writer_(std::move(writer)),
      index_(std::move(index)) {}

UpsertStream::~UpsertStream() {
  if (!finished_) {
    context_->TryCancel();
    writer_->Finish().ok();
  }
}

absl::Status UpsertStream::Write(absl::Span<const uint64_t> ids,
                                 absl::Span<const float> vectors, int64_t dimension) {
  if (finished_) return absl::FailedPreconditionError("upsert stream already finished");
  absl::Status shape = CheckShape(ids, vectors, dimension);
  if (!shape.ok()) return shape;
  v1::UpsertDatapointsRequest request;
  // The index name is repeated in every message (allowed, and robust to servers that
  // look at each message on its own).
  FillRequest(index_, ids, vectors, dimension, &request);
  if (writer_->Write(request)) return absl::OkStatus();
  // The stream is broken: the server has answered with an error (or the connection is
  // gone). Finish() says why.
  finished_ = true;
  absl::Status status = FromGrpcStatus(writer_->Finish());
  if (status.ok()) {
    return absl::UnavailableError("the server closed the upsert stream early");
  }
  return status;
}

absl::StatusOr<v1::UpsertDatapointsResponse> UpsertStream::Finish() {
  if (finished_) return absl::FailedPreconditionError("upsert stream already finished");
  finished_ = true;
  writer_->WritesDone();
  absl::Status status = FromGrpcStatus(writer_->Finish());
  if (!status.ok()) return status;
  return *response_;
}

absl::StatusOr<std::unique_ptr<NestorClient>> NestorClient::Create(
    const NestorClientOptions& options) {
  if (options.server.empty()) {
    return absl::InvalidArgumentError("server address is empty; expected HOST:PORT");
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be positive, got ", absl::FormatDuration(options.timeout)));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel =
      grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create a channel to '", options.server, "'"));
  }
  return std::unique_ptr<NestorClient>(new NestorClient(options, std::move(channel)));
}

NestorClient::NestorClient(NestorClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::IndexService::NewStub(channel_)),
      tuning_stub_(v1::TuningService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> NestorClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (options_.timeout != absl::InfiniteDuration()) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options_.timeout));
  }
  return context;
}

absl::StatusOr<v1::IndexInfo> NestorClient::CreateIndex(const std::string& name,
                                                        const v1::IndexConfig& config) {
  v1::CreateIndexRequest request;
  request.set_name(name);
  *request.mutable_config() = config;
  v1::IndexInfo response;
  auto context = NewContext();
  absl::Status status = FromGrpcStatus(stub_->CreateIndex(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::IndexInfo> NestorClient::GetIndex(const std::string& name) {
  v1::GetIndexRequest request;
  request.set_name(name);
  v1::IndexInfo response;
  auto context = NewContext();
  absl::Status status = FromGrpcStatus(stub_->GetIndex(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::ListIndexesResponse> NestorClient::ListIndexes() {
  v1::ListIndexesRequest request;
  v1::ListIndexesResponse response;
  auto context = NewContext();
  absl::Status status = FromGrpcStatus(stub_->ListIndexes(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::Status NestorClient::DeleteIndex(const std::string& name) {
  v1::DeleteIndexRequest request;
  request.set_name(name);
  v1::DeleteIndexResponse response;
  auto context = NewContext();
  return FromGrpcStatus(stub_->DeleteIndex(context.get(), request, &response));
}

absl::StatusOr<v1::UpsertDatapointsResponse> NestorClient::UpsertDatapoints(
    const std::string& index, absl::Span<const uint64_t> ids, absl::Span<const float> vectors,
    int64_t dimension) {
  absl::Status shape = CheckShape(ids, vectors, dimension);
  if (!shape.ok()) return shape;
  v1::UpsertDatapointsRequest request;
  FillRequest(index, ids, vectors, dimension, &request);
  v1::UpsertDatapointsResponse response;
  auto context = NewContext();
  absl::Status status =
      FromGrpcStatus(stub_->UpsertDatapoints(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::RemoveDatapointsResponse> NestorClient::RemoveDatapoints(
    const std::string& index, absl::Span<const uint64_t> ids) {
  v1::RemoveDatapointsRequest request;
  request.set_index(index);
  request.mutable_datapoint_ids()->Add(ids.begin(), ids.end());
  v1::RemoveDatapointsResponse response;
  auto context = NewContext();
  absl::Status status =
      FromGrpcStatus(stub_->RemoveDatapoints(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::ApplyTuningResponse> NestorClient::ApplyTuning(
    const std::string& index, const v1::TuningResult& result) {
  v1::ApplyTuningRequest request;
  request.set_index(index);
  *request.mutable_result() = result;
  v1::ApplyTuningResponse response;
  auto context = NewContext();
  absl::Status status =
      FromGrpcStatus(tuning_stub_->ApplyTuning(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::IndexInfo> NestorClient::BuildIndex(const std::string& name) {
  v1::BuildIndexRequest request;
  request.set_name(name);
  v1::IndexInfo response;
  auto context = NewContext();
  absl::Status status = FromGrpcStatus(stub_->BuildIndex(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::SaveIndexResponse> NestorClient::SaveIndex(const std::string& name) {
  v1::SaveIndexRequest request;
  request.set_name(name);
  v1::SaveIndexResponse response;
  auto context = NewContext();
  absl::Status status = FromGrpcStatus(stub_->SaveIndex(context.get(), request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::FindNeighborsResponse> NestorClient::FindNeighbors(
    const v1::FindNeighborsRequest& request) {
  v1::FindNeighborsResponse response;
  absl::Status status = FindNeighbors(request, &response);
  if (!status.ok()) return status;
  return response;
}

absl::Status NestorClient::FindNeighbors(const v1::FindNeighborsRequest& request,
                                         v1::FindNeighborsResponse* response) {
  // A stack context: no heap allocation per call beyond what gRPC itself does.
  grpc::ClientContext context;
  if (options_.timeout != absl::InfiniteDuration()) {
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.timeout));
  }
  return FromGrpcStatus(stub_->FindNeighbors(&context, request, response));
}

std::unique_ptr<UpsertStream> NestorClient::StartUpsertStream(const std::string& index) {
  auto context = NewContext();
  auto response = std::make_unique<v1::UpsertDatapointsResponse>();
  auto writer = stub_->StreamUpsertDatapoints(context.get(), response.get());
  return std::make_unique<UpsertStream>(std::move(context), std::move(response),
                                        std::move(writer), index);
}

}  // namespace nestor::client

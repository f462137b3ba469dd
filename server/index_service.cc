#include "server/index_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "server/status_util.h"
#include "server/tuned_defaults.h"

namespace nestor::server {
namespace {

constexpr int kDefaultNeighborCount = 10;
constexpr uint64_t kDefaultSeed = 1234;
constexpr int kDefaultTrainingIterations = 20;
constexpr int kDefaultMaxTrainingPointsPerPartition = 256;

absl::StatusOr<int> ToInt(const char* field, uint64_t value) {
  if (value > static_cast<uint64_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("IndexConfig.", field, " must be at most ", INT_MAX, ", got ", value));
  }
  return static_cast<int>(value);
}

v1::Metric MetricToProto(Metric metric) {
  switch (metric) {
    case Metric::kL2: return v1::METRIC_L2;
    case Metric::kInnerProduct: return v1::METRIC_INNER_PRODUCT;
    case Metric::kCosine: return v1::METRIC_COSINE;
  }
  return v1::METRIC_UNSPECIFIED;
}

v1::CodeType CodeTypeToProto(CodeType code_type) {
  switch (code_type) {
    case CodeType::kFloat: return v1::CODE_TYPE_FLOAT;
    case CodeType::kInt8: return v1::CODE_TYPE_INT8;
  }
  return v1::CODE_TYPE_UNSPECIFIED;
}

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// SearchParams::cancelled for one RPC. The engine asks between partitions (hundreds of
// times per batch, from several threads), but with the synchronous API
// grpc::ServerContext::IsCancelled() plucks the call's completion queue, a lock and a
// futex wait inside gRPC. Asking on every call made batched searches 2.4x slower; asking
// once per millisecond still cost 2-3 asks per 32-query request, about 120 us of system
// CPU per request on a 2-core VM (~50 us per ask: server sys time per request 280-330 us
// with, 160-200 us without; QPS +2-3% with 4 requests in flight). So the first ask comes
// one kCancellationPollIntervalNanos after the search starts and then at most once per
// interval: a search shorter than the interval never asks, and a cancelled one stops
// within an interval plus one partition (or one exact-search block). Deadlines are
// checked separately, on every call.
//
// Thread safety: Check() may be called concurrently.
class CancellationProbe {
 public:
  static constexpr int64_t kCancellationPollIntervalNanos = 10'000'000;  // 10 ms

  explicit CancellationProbe(grpc::ServerContext* context)
      : context_(context),
        next_poll_nanos_(absl::GetCurrentTimeNanos() + kCancellationPollIntervalNanos) {}

  bool Check() {
    if (cancelled_.load(std::memory_order_relaxed)) return true;
    const int64_t now = absl::GetCurrentTimeNanos();
    int64_t next = next_poll_nanos_.load(std::memory_order_relaxed);
    if (now < next ||
        !next_poll_nanos_.compare_exchange_strong(next, now + kCancellationPollIntervalNanos)) {
      return false;  // polled recently, or another thread is polling now
    }
    if (context_->IsCancelled()) cancelled_.store(true, std::memory_order_relaxed);
    return cancelled_.load(std::memory_order_relaxed);
  }

 private:
  grpc::ServerContext* const context_;
  std::atomic<int64_t> next_poll_nanos_;
  std::atomic<bool> cancelled_{false};
};

absl::Status EmptyNameError(const char* field) {
  return absl::InvalidArgumentError(absl::StrCat(field, " (index name) must not be empty"));
}

// The search settings of one query after the tuned defaults are filled in (0 = the
// engine's default), as FindNeighborsRequest.Query documents them.
struct QuerySettings {
  int partitions_to_search = 0;
  int reorder_k = 0;
  int shortlist_dim = 0;
  int shortlist_size = 0;
  int64_t max_codes = 0;
};

// Each setting the query leaves at 0 takes its tuned value. The tuned max_codes goes with
// the tuned partitions_to_search: only a query that leaves both partitions_to_search and
// max_codes at 0 gets it (one that sets its own partitions_to_search has no limit unless
// it sets its own max_codes). The tuned funnel applies only
// at the full dimension (prefix_dim 0 or `dimension`: it was tuned there) and only when
// the query leaves shortlist_dim at 0; its shortlist_size is raised to k, as reorder_k is.
// shortlist_dim equal to the query's prefix dimension with shortlist_size 0 is the opt-out:
// funnel off. Values the engine refuses (a negative shortlist_dim, a shortlist_size
// without a funnel) pass through unchanged, so that Index::Search names them.
QuerySettings ResolveQuerySettings(const v1::FindNeighborsRequest::Query& query, int k,
                                   int dimension, const TunedDefaults& tuned) {
  QuerySettings s;
  s.partitions_to_search = query.partitions_to_search() > 0 ? query.partitions_to_search()
                                                            : tuned.partitions_to_search;
  s.reorder_k = query.reorder_k() > 0 ? query.reorder_k() : tuned.reorder_k;
  s.max_codes = query.max_codes() > 0                 ? query.max_codes()
                : query.partitions_to_search() == 0 ? tuned.max_codes
                                                    : 0;
  s.shortlist_dim = query.shortlist_dim();
  s.shortlist_size = query.shortlist_size();
  const int prefix_dim = query.prefix_dim() > 0 ? query.prefix_dim() : dimension;
  if (s.shortlist_dim == 0) {
    if (prefix_dim == dimension && tuned.shortlist_dim > 0) {
      s.shortlist_dim = tuned.shortlist_dim;
      if (s.shortlist_size == 0) s.shortlist_size = std::max(tuned.shortlist_size, k);
    }
  } else if (s.shortlist_dim == prefix_dim && s.shortlist_size == 0) {
    s.shortlist_dim = 0;  // opted out: the scan at prefix_dim, reordered with reorder_k
  }
  return s;
}

// An error of an engine call on rows gathered from a request, in the request's terms: a
// row error (index.h RowError, "<what> row R ...") names the request's item instead,
// `item(R)` ("query 17", "datapoint 3 (id 42)"); other errors pass unchanged.
absl::Status NameRow(const absl::Status& status, absl::string_view what,
                     const std::function<std::string(size_t)>& item) {
  const std::optional<size_t> row = RowErrorOf(status);
  if (!row.has_value()) return status;
  const std::string prefix = absl::StrCat(what, " row ", *row);
  if (!absl::StartsWith(status.message(), prefix)) return status;
  return absl::Status(status.code(),
                      absl::StrCat(item(*row), status.message().substr(prefix.size())));
}

// Settings that queries of one Index::Search call must share: k, partitions_to_search,
// prefix_dim, reorder_k, shortlist_dim, shortlist_size, max_codes, exact. A batch of
// identical settings is one Search call.
using QueryGroupKey = std::tuple<int, int, int, int, int, int, int64_t, bool>;

}  // namespace

absl::StatusOr<IndexOptions> IndexOptionsFromProto(const v1::IndexConfig& config) {
  IndexOptions options;
  ASSIGN_OR_RETURN(options.dimension, ToInt("dimension", config.dimension()));
  switch (config.metric()) {
    case v1::METRIC_UNSPECIFIED:
    case v1::METRIC_L2:
      options.metric = Metric::kL2;
      break;
    case v1::METRIC_INNER_PRODUCT:
      options.metric = Metric::kInnerProduct;
      break;
    case v1::METRIC_COSINE:
      options.metric = Metric::kCosine;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("IndexConfig.metric: unknown value ", static_cast<int>(config.metric()),
                       ", expected METRIC_L2, METRIC_INNER_PRODUCT or METRIC_COSINE"));
  }
  ASSIGN_OR_RETURN(options.num_partitions, ToInt("num_partitions", config.num_partitions()));
  ASSIGN_OR_RETURN(options.default_partitions_to_search,
                   ToInt("default_partitions_to_search",
                         config.default_partitions_to_search()));
  ASSIGN_OR_RETURN(options.training_iterations,
                   ToInt("training_iterations", config.training_iterations()));
  if (options.training_iterations == 0) options.training_iterations = kDefaultTrainingIterations;
  options.seed = config.seed() == 0 ? kDefaultSeed : config.seed();
  ASSIGN_OR_RETURN(options.max_training_points_per_partition,
                   ToInt("max_training_points_per_partition",
                         config.max_training_points_per_partition()));
  if (options.max_training_points_per_partition == 0) {
    options.max_training_points_per_partition = kDefaultMaxTrainingPointsPerPartition;
  }
  switch (config.code_type()) {
    case v1::CODE_TYPE_UNSPECIFIED:
      break;  // IndexOptions' default: the engine decides.
    case v1::CODE_TYPE_FLOAT:
      options.code_type = CodeType::kFloat;
      break;
    case v1::CODE_TYPE_INT8:
      options.code_type = CodeType::kInt8;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "IndexConfig.code_type: unknown value ", static_cast<int>(config.code_type()),
          ", expected CODE_TYPE_FLOAT or CODE_TYPE_INT8"));
  }
  // The engine cannot tell an explicit int8 from its default, so the wire, where
  // UNSPECIFIED exists, refuses it for an exact index (see IndexOptions.num_partitions).
  // CODE_TYPE_FLOAT is what an exact index scans and what GetIndex reports for it.
  if (options.num_partitions == 0 && config.code_type() == v1::CODE_TYPE_INT8) {
    return absl::InvalidArgumentError(
        "IndexConfig.code_type applies to partitioned indexes only (num_partitions > 0); the "
        "exact index got code_type=CODE_TYPE_INT8, expected CODE_TYPE_UNSPECIFIED or "
        "CODE_TYPE_FLOAT");
  }
  ASSIGN_OR_RETURN(options.reorder_k, ToInt("default_reorder_k", config.default_reorder_k()));
  for (int i = 0; i < config.matryoshka_dims_size(); ++i) {
    ASSIGN_OR_RETURN(const int dim, ToInt("matryoshka_dims", config.matryoshka_dims(i)));
    options.matryoshka_dims.push_back(dim);
  }
  ASSIGN_OR_RETURN(options.routing_dim, ToInt("routing_dim", config.routing_dim()));
  options.pca_rotation = config.pca_rotation();
  return options;
}

v1::IndexConfig IndexConfigToProto(const IndexOptions& options) {
  v1::IndexConfig config;
  config.set_dimension(static_cast<uint32_t>(options.dimension));
  config.set_metric(MetricToProto(options.metric));
  config.set_num_partitions(static_cast<uint32_t>(options.num_partitions));
  config.set_default_partitions_to_search(
      static_cast<uint32_t>(options.default_partitions_to_search));
  config.set_training_iterations(static_cast<uint32_t>(options.training_iterations));
  config.set_seed(options.seed);
  config.set_max_training_points_per_partition(
      static_cast<uint32_t>(options.max_training_points_per_partition));
  // Exact indexes scan no codes; they report float whatever the options' default says.
  config.set_code_type(options.num_partitions == 0 ? v1::CODE_TYPE_FLOAT
                                                   : CodeTypeToProto(options.code_type));
  config.set_default_reorder_k(static_cast<uint32_t>(options.reorder_k));
  for (int dim : options.matryoshka_dims) config.add_matryoshka_dims(static_cast<uint32_t>(dim));
  config.set_routing_dim(static_cast<uint32_t>(options.routing_dim));
  config.set_pca_rotation(options.pca_rotation);
  return config;
}

v1::IndexInfo MakeIndexInfo(const std::string& name, const Index& index,
                            const TunedDefaults& tuned) {
  const IndexStats stats = index.stats();
  v1::IndexInfo info;
  info.set_name(name);
  *info.mutable_config() = IndexConfigToProto(index.options());
  info.set_vector_count(stats.vector_count);
  info.set_built(stats.built);
  info.set_memory_bytes(stats.memory_bytes);
  info.set_build_seconds(stats.build_seconds);
  info.set_kind(stats.kind);
  info.set_code_type(stats.code_type);
  info.set_simd_path(stats.simd_path);
  info.set_bytes_per_vector(BytesPerVector(stats));
  info.set_tuned_partitions_to_search(static_cast<uint32_t>(tuned.partitions_to_search));
  info.set_tuned_reorder_k(static_cast<uint32_t>(tuned.reorder_k));
  info.set_tuned_shortlist_dim(static_cast<uint32_t>(tuned.shortlist_dim));
  info.set_tuned_shortlist_size(static_cast<uint32_t>(tuned.shortlist_size));
  info.set_tuned_max_codes(static_cast<uint64_t>(tuned.max_codes));
  return info;
}

IndexServiceImpl::IndexServiceImpl(IndexRegistry* registry, ServerMetrics* metrics,
                                   const IndexServiceOptions& options)
    : registry_(registry), metrics_(metrics), options_(options) {}

TunedDefaults IndexServiceImpl::Tuned(const Index& index) const {
  return options_.tuned_defaults != nullptr ? options_.tuned_defaults->Get(&index)
                                            : TunedDefaults{};
}

template <typename Body>
grpc::Status IndexServiceImpl::Instrument(const char* method, Body&& body) {
  const absl::Time start = absl::Now();
  absl::Status status;
  try {  // Bad input never crashes the process, nor does an allocation failure.
    status = body();
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat(method, " failed: ", e.what()));
  }
  if (metrics_ != nullptr) metrics_->RecordRequest(method, status.code(), absl::Now() - start);
  return ToGrpcStatus(status);
}

void IndexServiceImpl::UpdateIndexMetrics(const std::string& name, const Index& index) {
  if (metrics_ == nullptr) return;
  absl::StatusOr<std::shared_ptr<Index>> current = registry_->Get(name);
  if (!current.ok() || current->get() != &index) return;  // deleted meanwhile
  metrics_->UpdateIndex(name, index.stats());
}

grpc::Status IndexServiceImpl::CreateIndex(grpc::ServerContext* context,
                                           const v1::CreateIndexRequest* request,
                                           v1::IndexInfo* response) {
  return Instrument("CreateIndex", [&]() -> absl::Status {
    RETURN_IF_ERROR(IndexRegistry::ValidateName(request->name()));
    ASSIGN_OR_RETURN(IndexOptions options, IndexOptionsFromProto(request->config()));
    ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Create(request->name(), options));
    UpdateIndexMetrics(request->name(), *index);
    *response = MakeIndexInfo(request->name(), *index, Tuned(*index));
    return absl::OkStatus();
  });
}

grpc::Status IndexServiceImpl::GetIndex(grpc::ServerContext* context,
                                        const v1::GetIndexRequest* request,
                                        v1::IndexInfo* response) {
  return Instrument("GetIndex", [&]() -> absl::Status {
    if (request->name().empty()) return EmptyNameError("GetIndexRequest.name");
    ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Get(request->name()));
    *response = MakeIndexInfo(request->name(), *index, Tuned(*index));
    return absl::OkStatus();
  });
}

grpc::Status IndexServiceImpl::ListIndexes(grpc::ServerContext* context,
                                           const v1::ListIndexesRequest* request,
                                           v1::ListIndexesResponse* response) {
  return Instrument("ListIndexes", [&]() -> absl::Status {
    for (const auto& [name, index] : registry_->List()) {
      *response->add_indexes() = MakeIndexInfo(name, *index, Tuned(*index));
    }
    return absl::OkStatus();
  });
}

grpc::Status IndexServiceImpl::DeleteIndex(grpc::ServerContext* context,
                                           const v1::DeleteIndexRequest* request,
                                           v1::DeleteIndexResponse* response) {
  return Instrument("DeleteIndex", [&]() -> absl::Status {
    if (request->name().empty()) return EmptyNameError("DeleteIndexRequest.name");
    absl::Status deleted = registry_->Delete(request->name());
    if (deleted.code() != absl::StatusCode::kNotFound && metrics_ != nullptr) {
      metrics_->RemoveIndex(request->name());
    }
    return deleted;
  });
}

absl::StatusOr<size_t> IndexServiceImpl::ApplyUpsert(
    Index* index, const v1::UpsertDatapointsRequest& request) {
  const int n = request.datapoints_size();
  const int dimension = index->dimension();
  // Validate the whole message before writing anything.
  for (int i = 0; i < n; ++i) {
    const v1::Datapoint& datapoint = request.datapoints(i);
    if (datapoint.feature_vector_size() != dimension) {
      return absl::InvalidArgumentError(absl::StrCat(
          "datapoint ", i, " (id ", datapoint.datapoint_id(), "): expected dimension ",
          dimension, ", got ", datapoint.feature_vector_size()));
    }
  }
  if (n == 0) return 0;
  std::vector<DatapointId> ids(n);
  std::vector<float> vectors(static_cast<size_t>(n) * dimension);
  for (int i = 0; i < n; ++i) {
    const v1::Datapoint& datapoint = request.datapoints(i);
    ids[i] = datapoint.datapoint_id();
    std::memcpy(vectors.data() + static_cast<size_t>(i) * dimension,
                datapoint.feature_vector().data(), sizeof(float) * dimension);
  }
  // One all-or-nothing engine call for the whole message.
  absl::Status status = index->Upsert(ids, vectors);
  if (!status.ok()) {
    return NameRow(status, "vector", [&](size_t row) {
      return row < ids.size() ? absl::StrCat("datapoint ", row, " (id ", ids[row], ")")
                              : absl::StrCat("datapoint ", row);
    });
  }
  return static_cast<size_t>(n);
}

namespace {

absl::Status CheckUpsertBatchSize(const v1::UpsertDatapointsRequest& request,
                                  int max_batch_size) {
  if (request.datapoints_size() > max_batch_size) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many datapoints in one message: max_batch_size is ", max_batch_size, ", got ",
        request.datapoints_size()));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status IndexServiceImpl::UpsertDatapoints(grpc::ServerContext* context,
                                                const v1::UpsertDatapointsRequest* request,
                                                v1::UpsertDatapointsResponse* response) {
  return Instrument("UpsertDatapoints", [&]() -> absl::Status {
    if (request->index().empty()) return EmptyNameError("UpsertDatapointsRequest.index");
    RETURN_IF_ERROR(CheckUpsertBatchSize(*request, options_.max_batch_size));
    ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Get(request->index()));
    ASSIGN_OR_RETURN(size_t written, ApplyUpsert(index.get(), *request));
    response->set_upserted_count(written);
    response->set_vector_count(index->size());
    UpdateIndexMetrics(request->index(), *index);
    return absl::OkStatus();
  });
}

absl::Status IndexServiceImpl::DoStreamUpsert(
    grpc::ServerReader<v1::UpsertDatapointsRequest>* reader,
    v1::UpsertDatapointsResponse* response) {
  std::string name;
  std::shared_ptr<Index> index;
  uint64_t written = 0;
  v1::UpsertDatapointsRequest message;
  auto with_progress = [&](const absl::Status& status) {
    if (index != nullptr) UpdateIndexMetrics(name, *index);
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), " (", written,
                                     " datapoints written before this error)"));
  };
  for (int64_t message_number = 0; reader->Read(&message); ++message_number) {
    if (index == nullptr) {
      if (message.index().empty()) {
        return EmptyNameError("UpsertDatapointsRequest.index of the first stream message");
      }
      name = message.index();
      absl::StatusOr<std::shared_ptr<Index>> found = registry_->Get(name);
      if (!found.ok()) return found.status();
      index = *std::move(found);
    } else if (!message.index().empty() && message.index() != name) {
      return with_progress(absl::InvalidArgumentError(absl::StrCat(
          "stream message ", message_number, " names index \"", message.index(),
          "\" but the stream writes to \"", name, "\"")));
    }
    absl::Status status = CheckUpsertBatchSize(message, options_.max_batch_size);
    if (status.ok()) {
      absl::StatusOr<size_t> applied = ApplyUpsert(index.get(), message);
      if (applied.ok()) {
        written += *applied;
        continue;
      }
      status = applied.status();
    }
    return with_progress(absl::Status(
        status.code(), absl::StrCat("stream message ", message_number, ": ", status.message())));
  }
  response->set_upserted_count(written);
  response->set_vector_count(index == nullptr ? 0 : index->size());
  if (index != nullptr) UpdateIndexMetrics(name, *index);
  return absl::OkStatus();
}

grpc::Status IndexServiceImpl::StreamUpsertDatapoints(
    grpc::ServerContext* context, grpc::ServerReader<v1::UpsertDatapointsRequest>* reader,
    v1::UpsertDatapointsResponse* response) {
  return Instrument("StreamUpsertDatapoints",
                    [&]() -> absl::Status { return DoStreamUpsert(reader, response); });
}

grpc::Status IndexServiceImpl::RemoveDatapoints(grpc::ServerContext* context,
                                                const v1::RemoveDatapointsRequest* request,
                                                v1::RemoveDatapointsResponse* response) {
  return Instrument("RemoveDatapoints", [&]() -> absl::Status {
    if (request->index().empty()) return EmptyNameError("RemoveDatapointsRequest.index");
    ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Get(request->index()));
    static_assert(sizeof(DatapointId) == sizeof(uint64_t));
    ASSIGN_OR_RETURN(size_t removed,
                     index->Remove(absl::MakeConstSpan(
                         reinterpret_cast<const DatapointId*>(request->datapoint_ids().data()),
                         request->datapoint_ids_size())));
    response->set_removed_count(removed);
    UpdateIndexMetrics(request->index(), *index);
    return absl::OkStatus();
  });
}

grpc::Status IndexServiceImpl::BuildIndex(grpc::ServerContext* context,
                                          const v1::BuildIndexRequest* request,
                                          v1::IndexInfo* response) {
  return Instrument("BuildIndex", [&]() -> absl::Status {
    if (request->name().empty()) return EmptyNameError("BuildIndexRequest.name");
    ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Get(request->name()));
    RETURN_IF_ERROR(index->Build());
    UpdateIndexMetrics(request->name(), *index);
    *response = MakeIndexInfo(request->name(), *index, Tuned(*index));
    return absl::OkStatus();
  });
}

grpc::Status IndexServiceImpl::SaveIndex(grpc::ServerContext* context,
                                         const v1::SaveIndexRequest* request,
                                         v1::SaveIndexResponse* response) {
  return Instrument("SaveIndex", [&]() -> absl::Status {
    if (request->name().empty()) return EmptyNameError("SaveIndexRequest.name");
    ASSIGN_OR_RETURN(std::string path, registry_->Save(request->name()));
    response->set_path(path);
    return absl::OkStatus();
  });
}

grpc::Status IndexServiceImpl::FindNeighbors(grpc::ServerContext* context,
                                             const v1::FindNeighborsRequest* request,
                                             v1::FindNeighborsResponse* response) {
  return Instrument("FindNeighbors", [&]() -> absl::Status {
    return DoFindNeighbors(context, *request, response);
  });
}

absl::Status IndexServiceImpl::DoFindNeighbors(grpc::ServerContext* context,
                                               const v1::FindNeighborsRequest& request,
                                               v1::FindNeighborsResponse* response) {
  if (request.index().empty()) return EmptyNameError("FindNeighborsRequest.index");
  const int n = request.queries_size();
  if (n > options_.max_batch_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many queries in one FindNeighbors: max_batch_size is ",
                     options_.max_batch_size, ", got ", n));
  }
  // Per-query settings, checked for the whole batch before any search.
  for (int i = 0; i < n; ++i) {
    const v1::FindNeighborsRequest::Query& query = request.queries(i);
    if (query.neighbor_count() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", i, ": neighbor_count must be >= 0 (0 means 10), got ",
          query.neighbor_count()));
    }
    if (query.neighbor_count() > options_.max_neighbor_count) {
      return absl::ResourceExhaustedError(
          absl::StrCat("query ", i, ": neighbor_count too large: max_neighbor_count is ",
                       options_.max_neighbor_count, ", got ", query.neighbor_count()));
    }
    if (query.partitions_to_search() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", i, ": partitions_to_search must be >= 0 (0 means the index default), got ",
          query.partitions_to_search()));
    }
    if (query.prefix_dim() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", i, ": prefix_dim must be >= 0 (0 means the full dimension), got ",
          query.prefix_dim()));
    }
    if (query.reorder_k() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", i, ": reorder_k must be >= 0 (0 means the index default), got ",
          query.reorder_k()));
    }
    if (query.max_codes() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query ", i, ": max_codes must be >= 0 (0 means the tuned max_codes or no limit), got ",
          query.max_codes()));
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Get(request.index()));
  const int dimension = index->dimension();
  // One read of the tuned defaults per request: a concurrent ApplyTuning is seen whole.
  const TunedDefaults tuned = Tuned(*index);
  std::map<QueryGroupKey, std::vector<int>> groups;
  for (int i = 0; i < n; ++i) {
    const v1::FindNeighborsRequest::Query& query = request.queries(i);
    if (query.datapoint().feature_vector_size() != dimension) {
      return absl::InvalidArgumentError(
          absl::StrCat("query ", i, ": expected dimension ", dimension, ", got ",
                       query.datapoint().feature_vector_size()));
    }
    const int k = query.neighbor_count() == 0 ? kDefaultNeighborCount : query.neighbor_count();
    const QuerySettings settings = ResolveQuerySettings(query, k, dimension, tuned);
    groups[{k, settings.partitions_to_search, query.prefix_dim(), settings.reorder_k,
            settings.shortlist_dim, settings.shortlist_size, settings.max_codes, query.exact()}]
        .push_back(i);
  }

  for (int i = 0; i < n; ++i) response->add_nearest_neighbors();
  SearchParams params;
  params.num_threads = options_.search_threads;
  params.deadline = DeadlineOf(*context);
  auto cancellation = std::make_shared<CancellationProbe>(context);
  params.cancelled = [cancellation] { return cancellation->Check(); };
  std::vector<float> buffer;
  for (const auto& [key, members] : groups) {
    std::tie(params.k, params.partitions_to_search, params.prefix_dim, params.reorder_k,
             params.shortlist_dim, params.shortlist_size, params.max_codes, params.exact) = key;
    absl::Span<const float> queries;
    if (members.size() == 1) {
      const auto& vector = request.queries(members[0]).datapoint().feature_vector();
      queries = absl::MakeConstSpan(vector.data(), vector.size());
    } else {
      buffer.resize(members.size() * static_cast<size_t>(dimension));
      for (size_t j = 0; j < members.size(); ++j) {
        std::memcpy(buffer.data() + j * dimension,
                    request.queries(members[j]).datapoint().feature_vector().data(),
                    sizeof(float) * dimension);
      }
      queries = buffer;
    }
    absl::StatusOr<std::vector<std::vector<Neighbor>>> searched = index->Search(queries, params);
    if (!searched.ok()) {
      // In the request's numbering: the group's row R is query members[R]; an error about
      // the group's settings is the first such query's, as the checks above name theirs.
      const absl::Status& status = searched.status();
      if (RowErrorOf(status).has_value()) {
        return NameRow(status, "query", [&](size_t row) {
          return absl::StrCat("query ", members[std::min(row, members.size() - 1)]);
        });
      }
      if (absl::IsInvalidArgument(status)) {
        return absl::InvalidArgumentError(
            absl::StrCat("query ", members[0], ": ", status.message()));
      }
      return status;
    }
    std::vector<std::vector<Neighbor>> results = *std::move(searched);
    if (metrics_ != nullptr) {
      metrics_->RecordPrefixQueries(request.index(),
                                    params.prefix_dim > 0 ? params.prefix_dim : dimension,
                                    members.size(), params.exact);
    }
    if (results.size() != members.size()) {
      return absl::InternalError(absl::StrCat("search returned ", results.size(),
                                              " result lists for ", members.size(),
                                              " queries"));
    }
    for (size_t j = 0; j < members.size(); ++j) {
      auto* out = response->mutable_nearest_neighbors(members[j])->mutable_neighbors();
      out->Reserve(static_cast<int>(results[j].size()));
      for (const Neighbor& neighbor : results[j]) {
        v1::FindNeighborsResponse::Neighbor* added = out->Add();
        added->mutable_datapoint()->set_datapoint_id(neighbor.id);
        added->set_distance(neighbor.distance);
        if (request.return_full_datapoint()) {
          absl::StatusOr<std::vector<float>> vector = index->GetVector(neighbor.id);
          // NOT_FOUND: removed since the search; the neighbour keeps only its id.
          if (vector.ok()) {
            added->mutable_datapoint()->mutable_feature_vector()->Add(vector->begin(),
                                                                      vector->end());
          }
        }
      }
    }
  }
  if (metrics_ != nullptr) metrics_->RecordQueries("FindNeighbors", n);
  return absl::OkStatus();
}

}  // namespace nestor::server

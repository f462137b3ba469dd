#include "server/tuning_service.h"

#include <climits>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "server/status_util.h"

namespace nestor::server {
namespace {

v1::Metric MetricToProto(Metric metric) {
  switch (metric) {
    case Metric::kInnerProduct: return v1::METRIC_INNER_PRODUCT;
    case Metric::kCosine: return v1::METRIC_COSINE;
    case Metric::kL2:
    default: return v1::METRIC_L2;
  }
}

v1::Metric Normalized(v1::Metric metric) {
  return metric == v1::METRIC_UNSPECIFIED ? v1::METRIC_L2 : metric;
}

v1::CodeType CodeTypeToProto(CodeType code_type) {
  return code_type == CodeType::kFloat ? v1::CODE_TYPE_FLOAT : v1::CODE_TYPE_INT8;
}

}  // namespace

absl::StatusOr<v1::ApplyTuningResponse> ApplyTuningResult(const std::shared_ptr<Index>& index,
                                                          const v1::TuningResult& result,
                                                          TunedDefaultsTable* table) {
  const IndexOptions& options = index->options();
  if (options.num_partitions == 0) {
    return absl::FailedPreconditionError(
        "an exact index has no query settings to tune (num_partitions is 0)");
  }
  if (result.dimension() != static_cast<uint32_t>(options.dimension)) {
    return absl::InvalidArgumentError(absl::StrCat("tuning result is for dimension ",
                                                   result.dimension(), ", the index has ",
                                                   options.dimension));
  }
  if (result.num_partitions() != static_cast<uint32_t>(options.num_partitions)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tuning result is for num_partitions ", result.num_partitions(), ", the index has ",
        options.num_partitions));
  }
  if (Normalized(result.metric()) != MetricToProto(options.metric)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tuning result is for metric ", v1::Metric_Name(result.metric()),
                     ", the index uses ", v1::Metric_Name(MetricToProto(options.metric))));
  }
  if (result.code_type() != v1::CODE_TYPE_UNSPECIFIED &&
      result.code_type() != CodeTypeToProto(options.code_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tuning result is for code type ", v1::CodeType_Name(result.code_type()),
        ", the index uses ", v1::CodeType_Name(CodeTypeToProto(options.code_type))));
  }
  const v1::OperatingPoint& chosen = result.chosen();
  const std::pair<const char*, uint32_t> fields[] = {
      {"partitions_to_search", chosen.partitions_to_search()},
      {"reorder_k", chosen.reorder_k()},
      {"shortlist_dim", chosen.shortlist_dim()},
      {"shortlist_size", chosen.shortlist_size()}};
  for (const auto& [name, value] : fields) {
    if (value > static_cast<uint32_t>(INT_MAX)) {
      return absl::InvalidArgumentError(
          absl::StrCat("chosen.", name, " must be at most ", INT_MAX, ", got ", value));
    }
  }
  if (chosen.max_codes() > static_cast<uint64_t>(kMaxTunedMaxCodes)) {
    return absl::InvalidArgumentError(absl::StrCat("chosen.max_codes must be in 0..",
                                                   kMaxTunedMaxCodes, " (0 = no limit), got ",
                                                   chosen.max_codes()));
  }
  TunedDefaults tuned;
  tuned.partitions_to_search = static_cast<int>(chosen.partitions_to_search());
  tuned.reorder_k = static_cast<int>(chosen.reorder_k());
  tuned.shortlist_dim = static_cast<int>(chosen.shortlist_dim());
  tuned.shortlist_size = static_cast<int>(chosen.shortlist_size());
  tuned.max_codes = static_cast<int64_t>(chosen.max_codes());
  if (absl::Status valid = ValidateTunedDefaults(options, tuned); !valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat("chosen.", valid.message()));
  }
  const TunedDefaults previous = table->Set(index, tuned);
  v1::ApplyTuningResponse response;
  response.set_previous_partitions_to_search(previous.partitions_to_search);
  response.set_previous_reorder_k(previous.reorder_k);
  response.set_previous_shortlist_dim(previous.shortlist_dim);
  response.set_previous_shortlist_size(previous.shortlist_size);
  response.set_previous_max_codes(static_cast<uint64_t>(previous.max_codes));
  response.set_partitions_to_search(tuned.partitions_to_search);
  response.set_reorder_k(tuned.reorder_k);
  response.set_shortlist_dim(tuned.shortlist_dim);
  response.set_shortlist_size(tuned.shortlist_size);
  response.set_max_codes(static_cast<uint64_t>(tuned.max_codes));
  return response;
}

absl::Status ApplyTuningFiles(const std::vector<std::string>& specs,
                              const IndexRegistry& registry, TunedDefaultsTable* table) {
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tuning_file expects NAME=PATH, got \"", spec, "\""));
    }
    const std::string name = spec.substr(0, eq);
    const std::string path = spec.substr(eq + 1);
    auto fail = [&](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat("--tuning_file ", spec, ": ", s.message()));
    };
    absl::StatusOr<std::shared_ptr<Index>> index = registry.Get(name);
    if (!index.ok()) return fail(index.status());
    absl::StatusOr<v1::TuningResult> result = ReadTuningResult(path);
    if (!result.ok()) return fail(result.status());
    absl::StatusOr<v1::ApplyTuningResponse> applied = ApplyTuningResult(*index, *result, table);
    if (!applied.ok()) return fail(applied.status());
    std::cerr << "nestor-server: index " << name << " tuned from " << path
              << ": partitions_to_search=" << applied->partitions_to_search()
              << " reorder_k=" << applied->reorder_k()
              << " shortlist_dim=" << applied->shortlist_dim()
              << " shortlist_size=" << applied->shortlist_size()
              << " max_codes=" << applied->max_codes() << std::endl;
  }
  return absl::OkStatus();
}

grpc::Status TuningServiceImpl::ApplyTuning(grpc::ServerContext* context,
                                            const v1::ApplyTuningRequest* request,
                                            v1::ApplyTuningResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = [&]() -> absl::Status {
    if (request->index().empty()) {
      return absl::InvalidArgumentError("ApplyTuningRequest.index (index name) must not be empty");
    }
    ASSIGN_OR_RETURN(std::shared_ptr<Index> index, registry_->Get(request->index()));
    ASSIGN_OR_RETURN(*response, ApplyTuningResult(index, request->result(), table_));
    return absl::OkStatus();
  }();
  if (metrics_ != nullptr) metrics_->RecordRequest("ApplyTuning", status.code(), absl::Now() - start);
  return ToGrpcStatus(status);
}

}  // namespace nestor::server

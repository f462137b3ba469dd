// `nestor`: the command line of the Nestor vector-search service. Talks to
// nestor-server over gRPC (proto/nestor.proto) through client/nestor_client.h.
//
//   nestor create NAME --dimension D [--metric l2|ip|cosine] [--num_partitions N]
//                      [--code_type float|int8] [--reorder_k R]
//                      [--matryoshka_dims 32,64,...] [--routing_dim D] [--pca_rotation]
//   nestor load NAME FILE [--create ...]       stream vectors from .npy/.fvecs/.bvecs/idx
//   nestor build NAME | stats [NAME] | save NAME | delete NAME
//   nestor search NAME --vector "..." | --queries FILE [--row R] [--reorder_k R]
//                      [--prefix_dim d] [--shortlist_dim s] [--shortlist_size n]
//                      [--max_codes N]
//   nestor bench NAME --queries FILE (--base FILE | --ground_truth FILE.ivecs)
//                     [--batch B] [--concurrency C] [--reorder_k R] [--max_codes N]
//
// Every error prints "nestor CMD: error: CODE_NAME: message" on stderr and exits 1 (a
// failure to start nestor-tune for `nestor tune` prints "error: nestor tune: ...").
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/datasets.h"
#include "client/ground_truth.h"
#include "client/latency_stats.h"
#include "client/nestor_client.h"
#include "client/progress.h"
#include "client/request_load.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "proto/nestor.pb.h"
#include "proto/tuning_result_file.h"

namespace nestor::client {
namespace {

// For 64-bit unsigned flags: CLI11 converts "-1" to 2^64 - 1 without complaint, and
// CLI::NonNegativeNumber's message prints the whole double range. Refused: exit 2.
CLI::Validator NonNegativeInteger() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        return !value.empty() && value[0] == '-' ? "must be >= 0, got " + value
                                                 : std::string();
      },
      "NONNEGATIVE");
}

// Most client threads `nestor bench --concurrency` starts.
constexpr int kMaxConcurrency = 1024;

namespace v1 = ::nestor::v1;
using json = nlohmann::json;

const std::map<std::string, v1::Metric> kMetricNames = {
    {"l2", v1::METRIC_L2}, {"ip", v1::METRIC_INNER_PRODUCT}, {"cosine", v1::METRIC_COSINE}};

const std::map<std::string, v1::CodeType> kCodeTypeNames = {
    {"float", v1::CODE_TYPE_FLOAT}, {"int8", v1::CODE_TYPE_INT8}};

std::string MetricName(v1::Metric metric) {
  switch (metric) {
    case v1::METRIC_UNSPECIFIED:
    case v1::METRIC_L2:
      return "l2";
    case v1::METRIC_INNER_PRODUCT:
      return "ip";
    case v1::METRIC_COSINE:
      return "cosine";
    default:
      return absl::StrCat("metric#", static_cast<int>(metric));
  }
}

GroundTruthMetric ToGroundTruthMetric(v1::Metric metric) {
  switch (metric) {
    case v1::METRIC_INNER_PRODUCT:
      return GroundTruthMetric::kInnerProduct;
    case v1::METRIC_COSINE:
      return GroundTruthMetric::kCosine;
    default:
      return GroundTruthMetric::kL2;
  }
}

double Seconds(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

// Options shared by every subcommand.
struct GlobalOptions {
  std::string server = "127.0.0.1:50051";
  int64_t timeout_ms = 0;
  bool progress = false;
};

// Options of all subcommands (CLI11 binds them to fields).
struct CommandOptions {
  std::string name;
  std::string file;
  // remove
  std::string ids;
  // create / load --create
  uint32_t dimension = 0;
  std::string metric;
  uint32_t num_partitions = 0;
  uint32_t partitions_to_search_default = 0;
  uint32_t training_iterations = 0;
  uint64_t seed = 0;
  std::string code_type;
  uint32_t reorder_k_default = 0;
  std::vector<uint32_t> matryoshka_dims;
  uint32_t routing_dim = 0;
  bool pca_rotation = false;
  // load
  int64_t limit = 0;
  int64_t batch = 1000;
  uint64_t id_offset = 0;
  bool create = false;
  // search / bench
  std::string vector;
  std::string queries;
  int64_t row = 0;
  int k = 10;
  int partitions_to_search = 0;
  int prefix_dim = 0;
  int reorder_k = 0;
  int shortlist_dim = 0;
  int shortlist_size = 0;
  int64_t max_codes = 0;
  bool exact = false;
  bool json_output = false;
  std::string base;
  int64_t base_limit = 0;
  std::string ground_truth;
  bool server_ground_truth = false;
  int64_t bench_batch = 1;
  int concurrency = 1;
  int runs = 1;
  std::string json_path;
};

absl::StatusOr<std::unique_ptr<NestorClient>> Connect(const GlobalOptions& global) {
  NestorClientOptions options;
  options.server = global.server;
  if (global.timeout_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout_ms must be >= 0 (0 = no deadline), got ", global.timeout_ms));
  }
  if (global.timeout_ms > 0) options.timeout = absl::Milliseconds(global.timeout_ms);
  return NestorClient::Create(options);
}

absl::StatusOr<v1::IndexConfig> MakeConfig(const CommandOptions& o, uint32_t dimension) {
  // The server refuses these too, under their IndexConfig names (default_*,
  // CODE_TYPE_INT8); said here with the flags as the user typed them.
  if (o.num_partitions == 0) {
    struct Given {
      std::string flag;      // as typed, with its value
      std::string expected;  // what an exact index takes instead
    };
    std::vector<Given> given;
    if (o.partitions_to_search_default != 0) {
      given.push_back({absl::StrCat("--partitions_to_search ", o.partitions_to_search_default),
                       "0 or unset"});
    }
    if (o.reorder_k_default != 0) {
      given.push_back({absl::StrCat("--reorder_k ", o.reorder_k_default), "0 or unset"});
    }
    if (o.code_type == "int8") given.push_back({"--code_type int8", "float or unset"});
    if (o.routing_dim != 0) {
      given.push_back({absl::StrCat("--routing_dim ", o.routing_dim), "0 or unset"});
    }
    if (!o.matryoshka_dims.empty()) {
      given.push_back({absl::StrCat("--matryoshka_dims ", absl::StrJoin(o.matryoshka_dims, ",")),
                       "unset (the exact index serves every prefix dimension)"});
    }
    if (o.pca_rotation) given.push_back({"--pca_rotation", "unset"});
    if (!given.empty()) {
      const Given& first = given.front();
      return absl::InvalidArgumentError(absl::StrCat(
          first.flag.substr(0, first.flag.find(' ')),
          " applies to partitioned indexes only (--num_partitions > 0); the exact index "
          "(--num_partitions 0) got ",
          first.flag, ", expected ", first.expected));
    }
  }
  v1::IndexConfig config;
  config.set_dimension(dimension);
  config.set_metric(o.metric.empty() ? v1::METRIC_L2 : kMetricNames.at(o.metric));
  config.set_num_partitions(o.num_partitions);
  config.set_default_partitions_to_search(o.partitions_to_search_default);
  config.set_training_iterations(o.training_iterations);
  config.set_seed(o.seed);
  if (!o.code_type.empty()) config.set_code_type(kCodeTypeNames.at(o.code_type));
  config.set_default_reorder_k(o.reorder_k_default);
  for (uint32_t dim : o.matryoshka_dims) config.add_matryoshka_dims(dim);
  config.set_routing_dim(o.routing_dim);
  config.set_pca_rotation(o.pca_rotation);
  return config;
}

// The settings the server uses for a query with the given overrides (0 = none),
// mirroring server and engine (proto FindNeighborsRequest.Query): the query's own value,
// else the tuned default, else the index default (max(1, num_partitions / 16); reorder_k
// 4k), and reorder_k at least k; reorder_k is 0 for indexes without int8 codes. The tuned
// funnel applies to a query at the full dimension that leaves shortlist_dim at 0;
// shortlist_dim equal to the query's prefix dimension with shortlist_size 0 is funnel off.
// The tuned max_codes applies only with the tuned partitions_to_search (a query leaving
// both partitions_to_search and max_codes at 0).
struct EffectiveSettings {
  int partitions_to_search = 0;
  int reorder_k = 0;
  int shortlist_dim = 0;   // 0 = funnel off
  int shortlist_size = 0;  // with the funnel: >= k
  int64_t max_codes = 0;   // 0 = no limit
};
EffectiveSettings Effective(const v1::IndexInfo& info, int partitions_to_search, int reorder_k,
                            int k, int prefix_dim = 0, int shortlist_dim = 0,
                            int shortlist_size = 0, int64_t max_codes = 0) {
  const v1::IndexConfig& c = info.config();
  EffectiveSettings e;
  if (c.num_partitions() == 0) return e;
  const int p = partitions_to_search > 0             ? partitions_to_search
                : info.tuned_partitions_to_search() > 0 ? info.tuned_partitions_to_search()
                : c.default_partitions_to_search() > 0 ? c.default_partitions_to_search()
                                                        : std::max<int>(1, c.num_partitions() / 16);
  e.partitions_to_search = std::min<int>(p, c.num_partitions());
  e.max_codes = max_codes > 0                ? max_codes
                : partitions_to_search == 0 ? static_cast<int64_t>(info.tuned_max_codes())
                                            : 0;
  const int dimension = static_cast<int>(c.dimension());
  const int prefix = prefix_dim > 0 ? prefix_dim : dimension;
  if (shortlist_dim == 0 && prefix == dimension && info.tuned_shortlist_dim() > 0) {
    e.shortlist_dim = static_cast<int>(info.tuned_shortlist_dim());
    e.shortlist_size = shortlist_size > 0
                           ? shortlist_size
                           : std::max<int>(k, static_cast<int>(info.tuned_shortlist_size()));
  } else if (shortlist_dim > 0 && !(shortlist_dim == prefix && shortlist_size == 0)) {
    e.shortlist_dim = shortlist_dim;
    e.shortlist_size = shortlist_size > 0 ? shortlist_size : 10 * k;
  }
  if (info.code_type() == "int8") {
    const int r = reorder_k > 0                 ? reorder_k
                  : info.tuned_reorder_k() > 0    ? info.tuned_reorder_k()
                  : c.default_reorder_k() > 0     ? c.default_reorder_k()
                                                  : 4 * k;
    e.reorder_k = std::max(k, r);
  }
  return e;
}

// A partitioned index's query defaults as a query leaving them unset gets them:
// "partitions_to_search=P reorder_k=R [shortlist_dim=D shortlist_size=S] [max_codes=M]
// [(tuned)]".
std::string DescribeQueryDefaults(const v1::IndexInfo& info) {
  const v1::IndexConfig& c = info.config();
  const EffectiveSettings e = Effective(info, 0, 0, 10);
  std::string text = absl::StrCat("partitions_to_search=", e.partitions_to_search);
  if (info.code_type() == "int8") {
    absl::StrAppend(&text, " reorder_k=",
                    info.tuned_reorder_k() > 0 || c.default_reorder_k() > 0
                        ? absl::StrCat(e.reorder_k)
                        : std::string("4k"));
  }
  if (info.tuned_shortlist_dim() > 0) {
    absl::StrAppend(&text, " shortlist_dim=", info.tuned_shortlist_dim(),
                    " shortlist_size=", info.tuned_shortlist_size());
  }
  if (info.tuned_max_codes() > 0) absl::StrAppend(&text, " max_codes=", info.tuned_max_codes());
  if (info.tuned_partitions_to_search() > 0 || info.tuned_reorder_k() > 0 ||
      info.tuned_shortlist_dim() > 0 || info.tuned_max_codes() > 0) {
    absl::StrAppend(&text, " (tuned)");
  }
  return text;
}

std::string DescribeIndex(const v1::IndexInfo& info) {
  const v1::IndexConfig& c = info.config();
  std::string partitions;
  if (c.num_partitions() > 0) {
    partitions = absl::StrCat(" num_partitions=", c.num_partitions(), " ",
                              DescribeQueryDefaults(info));
    if (c.matryoshka_dims_size() > 0) {
      absl::StrAppend(&partitions, " matryoshka_dims=", absl::StrJoin(c.matryoshka_dims(), ","));
    }
    if (c.routing_dim() > 0) absl::StrAppend(&partitions, " routing_dim=", c.routing_dim());
    if (c.pca_rotation()) absl::StrAppend(&partitions, " pca_rotation=true");
  }
  return absl::StrFormat(
      "%s: kind=%s code_type=%s dimension=%d metric=%s%s vectors=%d built=%s memory_bytes=%d "
      "bytes_per_vector=%.1f build_seconds=%.3f simd_path=%s",
      info.name(), info.kind().empty() ? "?" : info.kind(),
      info.code_type().empty() ? "?" : info.code_type(), c.dimension(), MetricName(c.metric()),
      partitions, info.vector_count(), info.built() ? "true" : "false", info.memory_bytes(),
      info.bytes_per_vector(), info.build_seconds(),
      info.simd_path().empty() ? "?" : info.simd_path());
}

json IndexToJson(const v1::IndexInfo& info) {
  const v1::IndexConfig& c = info.config();
  return json{{"name", info.name()},
              {"kind", info.kind()},
              {"dimension", c.dimension()},
              {"metric", MetricName(c.metric())},
              {"num_partitions", c.num_partitions()},
              {"default_partitions_to_search", c.default_partitions_to_search()},
              // What a query that leaves it at 0 searches: tuned, else the default, else
              // max(1, num_partitions / 16), as the text form shows.
              {"partitions_to_search", Effective(info, 0, 0, /*k=*/10).partitions_to_search},
              {"code_type", info.code_type()},
              {"default_reorder_k", c.default_reorder_k()},
              {"tuned_partitions_to_search", info.tuned_partitions_to_search()},
              {"matryoshka_dims", std::vector<uint32_t>(c.matryoshka_dims().begin(),
                                                        c.matryoshka_dims().end())},
              {"routing_dim", c.routing_dim()},
              {"pca_rotation", c.pca_rotation()},
              {"tuned_reorder_k", info.tuned_reorder_k()},
              {"tuned_shortlist_dim", info.tuned_shortlist_dim()},
              {"tuned_shortlist_size", info.tuned_shortlist_size()},
              {"tuned_max_codes", info.tuned_max_codes()},
              {"vector_count", info.vector_count()},
              {"built", info.built()},
              {"memory_bytes", info.memory_bytes()},
              {"bytes_per_vector", info.bytes_per_vector()},
              {"build_seconds", info.build_seconds()},
              {"simd_path", info.simd_path()}};
}

absl::Status RunCreate(const GlobalOptions& g, const CommandOptions& o) {
  ASSIGN_OR_RETURN(auto client, Connect(g));
  ASSIGN_OR_RETURN(v1::IndexConfig config, MakeConfig(o, o.dimension));
  ASSIGN_OR_RETURN(v1::IndexInfo info, client->CreateIndex(o.name, config));
  std::printf("created %s\n", DescribeIndex(info).c_str());
  return absl::OkStatus();
}

// Streams `data` into index o.name (ids o.id_offset + row) in messages of o.batch rows,
// with a progress bar, and prints the count and rate.
absl::Status StreamRows(const GlobalOptions& g, const CommandOptions& o, const FloatMatrix& data,
                        NestorClient* client) {
  const absl::Time start = absl::Now();
  std::unique_ptr<UpsertStream> stream = client->StartUpsertStream(o.name);
  ProgressOptions progress_options;
  progress_options.force = g.progress;
  progress_options.unit = "vectors";
  ProgressBar bar(absl::StrCat("load ", o.name), data.rows, progress_options);
  std::vector<uint64_t> ids;
  for (int64_t r0 = 0; r0 < data.rows; r0 += o.batch) {
    const int64_t n = std::min(o.batch, data.rows - r0);
    ids.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[i] = o.id_offset + static_cast<uint64_t>(r0 + i);
    absl::Status status = stream->Write(
        ids, absl::MakeConstSpan(data.row(r0), static_cast<size_t>(n * data.cols)), data.cols);
    if (!status.ok()) {
      bar.Finish();
      return absl::Status(status.code(),
                          absl::StrCat(status.message(), " (while writing rows ", r0, "..",
                                       r0 + n - 1, " of ", o.file, ")"));
    }
    bar.Add(n);
  }
  ASSIGN_OR_RETURN(v1::UpsertDatapointsResponse response, stream->Finish());
  bar.Finish();
  const double seconds = Seconds(start);
  std::printf("loaded %llu vectors into '%s' in %.2f s (%.0f vectors/s); the index holds %llu\n",
              static_cast<unsigned long long>(response.upserted_count()), o.name.c_str(), seconds,
              seconds > 0 ? response.upserted_count() / seconds : 0.0,
              static_cast<unsigned long long>(response.vector_count()));
  return absl::OkStatus();
}

absl::Status RunLoad(const GlobalOptions& g, const CommandOptions& o) {
  if (o.batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--batch must be >= 1, got ", o.batch));
  }
  if (o.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--limit must be >= 0 (0 = all rows), got ", o.limit));
  }
  absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(FloatMatrix data, LoadDataset(o.file, o.limit));
  std::printf("read %lld x %lld vectors from %s in %.2f s\n", static_cast<long long>(data.rows),
              static_cast<long long>(data.cols), o.file.c_str(), Seconds(start));
  std::fflush(stdout);
  if (data.rows > 0 && o.id_offset > std::numeric_limits<uint64_t>::max() -
                                          static_cast<uint64_t>(data.rows - 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--id_offset ", o.id_offset, " + ", data.rows, " rows passes the largest id ",
        std::numeric_limits<uint64_t>::max(), "; ids would wrap around to 0"));
  }
  ASSIGN_OR_RETURN(auto client, Connect(g));
  if (!o.create) return StreamRows(g, o, data, client.get());
  ASSIGN_OR_RETURN(v1::IndexConfig config, MakeConfig(o, static_cast<uint32_t>(data.cols)));
  ASSIGN_OR_RETURN(v1::IndexInfo info, client->CreateIndex(o.name, config));
  std::printf("created %s\n", DescribeIndex(info).c_str());
  std::fflush(stdout);
  absl::Status loaded = StreamRows(g, o, data, client.get());
  if (loaded.ok()) return loaded;
  // The stream applies each message as it arrives: do not leave a half-loaded index
  // behind that this command created.
  const absl::Status deleted = client->DeleteIndex(o.name);
  return absl::Status(
      loaded.code(),
      absl::StrCat(loaded.message(),
                   deleted.ok() ? absl::StrCat("; index '", o.name,
                                               "', created by this command, was deleted again")
                                : absl::StrCat("; deleting index '", o.name,
                                               "' again failed too: ", deleted.ToString())));
}

absl::Status RunBuild(const GlobalOptions& g, const CommandOptions& o) {
  ASSIGN_OR_RETURN(auto client, Connect(g));
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(v1::IndexInfo info, client->BuildIndex(o.name));
  std::printf("built '%s' in %.2f s (server build_seconds=%.3f)\n%s\n", o.name.c_str(),
              Seconds(start), info.build_seconds(), DescribeIndex(info).c_str());
  return absl::OkStatus();
}

absl::Status RunStats(const GlobalOptions& g, const CommandOptions& o) {
  ASSIGN_OR_RETURN(auto client, Connect(g));
  std::vector<v1::IndexInfo> infos;
  if (!o.name.empty()) {
    ASSIGN_OR_RETURN(v1::IndexInfo info, client->GetIndex(o.name));
    infos.push_back(info);
  } else {
    ASSIGN_OR_RETURN(v1::ListIndexesResponse list, client->ListIndexes());
    infos.assign(list.indexes().begin(), list.indexes().end());
  }
  if (o.json_output) {
    json out = json::array();
    for (const auto& info : infos) out.push_back(IndexToJson(info));
    std::printf("%s\n", (o.name.empty() ? out : out[0]).dump(2).c_str());
    return absl::OkStatus();
  }
  if (infos.empty()) std::printf("no indexes\n");
  for (const auto& info : infos) std::printf("%s\n", DescribeIndex(info).c_str());
  return absl::OkStatus();
}

absl::Status RunSave(const GlobalOptions& g, const CommandOptions& o) {
  ASSIGN_OR_RETURN(auto client, Connect(g));
  ASSIGN_OR_RETURN(v1::SaveIndexResponse response, client->SaveIndex(o.name));
  std::printf("saved '%s' to %s\n", o.name.c_str(), response.path().c_str());
  return absl::OkStatus();
}

absl::Status RunDelete(const GlobalOptions& g, const CommandOptions& o) {
  ASSIGN_OR_RETURN(auto client, Connect(g));
  RETURN_IF_ERROR(client->DeleteIndex(o.name));
  std::printf("deleted '%s'\n", o.name.c_str());
  return absl::OkStatus();
}

absl::Status RunRemove(const GlobalOptions& g, const CommandOptions& o) {
  std::vector<uint64_t> ids;
  for (absl::string_view part : absl::StrSplit(o.ids, ',')) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--ids: '", part, "' is not a datapoint id; expected e.g. \"3,17,42\""));
    }
    ids.push_back(id);
  }
  ASSIGN_OR_RETURN(auto client, Connect(g));
  ASSIGN_OR_RETURN(v1::RemoveDatapointsResponse response, client->RemoveDatapoints(o.name, ids));
  ASSIGN_OR_RETURN(v1::IndexInfo info, client->GetIndex(o.name));
  std::printf("removed %llu of %zu ids from '%s' (ids it did not hold are skipped); it holds "
              "%llu vectors\n",
              static_cast<unsigned long long>(response.removed_count()), ids.size(),
              o.name.c_str(), static_cast<unsigned long long>(info.vector_count()));
  return absl::OkStatus();
}

absl::Status RunApplyTuning(const GlobalOptions& g, const CommandOptions& o) {
  ASSIGN_OR_RETURN(v1::TuningResult result, ReadTuningResult(o.file));
  ASSIGN_OR_RETURN(auto client, Connect(g));
  ASSIGN_OR_RETURN(v1::IndexInfo before, client->GetIndex(o.name));
  RETURN_IF_ERROR(client->ApplyTuning(o.name, result).status());
  ASSIGN_OR_RETURN(v1::IndexInfo after, client->GetIndex(o.name));
  std::printf("'%s' query defaults: %s (were %s)\n", o.name.c_str(),
              DescribeQueryDefaults(after).c_str(), DescribeQueryDefaults(before).c_str());
  return absl::OkStatus();
}

// Comma-separated (spaces around the commas allowed), or whitespace-separated when the
// text has no comma. An empty field between commas is an error, not skipped: "0.1,,0.3"
// would otherwise shift every later coordinate.
absl::StatusOr<std::vector<float>> ParseVector(const std::string& text) {
  std::vector<std::string> parts;
  if (absl::StrContains(text, ',')) {
    parts = absl::StrSplit(text, ',');
  } else {
    parts = absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  }
  std::vector<float> values;
  for (size_t i = 0; i < parts.size(); ++i) {
    const absl::string_view part = absl::StripAsciiWhitespace(parts[i]);
    if (part.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--vector: value ", i + 1, " of ", parts.size(),
          " is empty; expected e.g. \"0.1,0.2,0.3\""));
    }
    float value;
    if (!absl::SimpleAtof(part, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--vector: '", part, "' is not a number; expected e.g. \"0.1,0.2,0.3\""));
    }
    // A finite literal that overflowed (1e40), not an explicit inf/nan the server refuses.
    const std::string lower = absl::AsciiStrToLower(part);
    if (!std::isfinite(value) && !absl::StrContains(lower, "inf") &&
        !absl::StrContains(lower, "nan")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--vector: value ", i + 1, " '", part, "' is out of the float range (about 3.4e38)"));
    }
    values.push_back(value);
  }
  if (values.empty()) return absl::InvalidArgumentError("--vector is empty");
  return values;
}

void AddQuery(const float* vector, int64_t dimension, const CommandOptions& o,
              v1::FindNeighborsRequest* request) {
  auto* query = request->add_queries();
  FillDatapoint(0, vector, dimension, query->mutable_datapoint());
  query->set_neighbor_count(o.k);
  query->set_partitions_to_search(o.partitions_to_search);
  query->set_prefix_dim(o.prefix_dim);
  query->set_reorder_k(o.reorder_k);
  query->set_shortlist_dim(o.shortlist_dim);
  query->set_shortlist_size(o.shortlist_size);
  query->set_max_codes(o.max_codes);
  query->set_exact(o.exact);
}

// Exact neighbour ids (k per query, row-major; short lists padded with -1) of every query
// from the server itself (FindNeighbors with Query.exact), in requests of `batch`.
absl::StatusOr<std::vector<int64_t>> ServerGroundTruth(NestorClient& client,
                                                       const FloatMatrix& queries,
                                                       const CommandOptions& o,
                                                       int64_t batch,
                                                       const GlobalOptions& g) {
  CommandOptions exact = o;
  exact.exact = true;
  std::vector<int64_t> truth(static_cast<size_t>(queries.rows * o.k), -1);
  ProgressOptions progress_options;
  progress_options.force = g.progress;
  progress_options.unit = "queries";
  ProgressBar bar(absl::StrCat("ground truth ", o.name), queries.rows, progress_options);
  v1::FindNeighborsResponse response;
  for (int64_t r0 = 0; r0 < queries.rows; r0 += batch) {
    const int64_t n = std::min(batch, queries.rows - r0);
    v1::FindNeighborsRequest request;
    request.set_index(o.name);
    for (int64_t i = 0; i < n; ++i) AddQuery(queries.row(r0 + i), queries.cols, exact, &request);
    RETURN_IF_ERROR(client.FindNeighbors(request, &response));
    if (response.nearest_neighbors_size() != n) {
      return absl::InternalError(absl::StrCat("the server answered ",
                                              response.nearest_neighbors_size(),
                                              " result lists for ", n, " queries"));
    }
    for (int64_t i = 0; i < n; ++i) {
      const auto& neighbors = response.nearest_neighbors(i).neighbors();
      for (int j = 0; j < std::min(neighbors.size(), o.k); ++j) {
        truth[(r0 + i) * o.k + j] = static_cast<int64_t>(neighbors[j].datapoint().datapoint_id());
      }
    }
    bar.Add(n);
  }
  return truth;
}

absl::Status RunSearch(const GlobalOptions& g, const CommandOptions& o) {
  if (o.k < 1) return absl::InvalidArgumentError(absl::StrCat("-k must be >= 1, got ", o.k));
  std::vector<float> vector;
  if (!o.vector.empty()) {
    ASSIGN_OR_RETURN(vector, ParseVector(o.vector));
  } else {
    ASSIGN_OR_RETURN(FloatMatrix queries, LoadDataset(o.queries, o.row + 1));
    if (o.row < 0 || o.row >= queries.rows) {
      return absl::OutOfRangeError(absl::StrCat("--row ", o.row, " is outside 0..",
                                                queries.rows - 1, " of ", o.queries));
    }
    vector.assign(queries.row(o.row), queries.row(o.row) + queries.cols);
  }
  ASSIGN_OR_RETURN(auto client, Connect(g));
  v1::FindNeighborsRequest request;
  request.set_index(o.name);
  AddQuery(vector.data(), static_cast<int64_t>(vector.size()), o, &request);
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(v1::FindNeighborsResponse response, client->FindNeighbors(request));
  const double ms = Seconds(start) * 1e3;
  if (response.nearest_neighbors_size() != 1) {
    return absl::InternalError(absl::StrCat("the server answered ",
                                            response.nearest_neighbors_size(),
                                            " result lists for 1 query"));
  }
  const auto& neighbors = response.nearest_neighbors(0).neighbors();
  // The proto's `distance` is the metric's own score: name it (for inner product and
  // cosine a larger score is nearer).
  ASSIGN_OR_RETURN(v1::IndexInfo info, client->GetIndex(o.name));
  const char* score = info.config().metric() == v1::METRIC_INNER_PRODUCT ? "inner_product"
                      : info.config().metric() == v1::METRIC_COSINE      ? "cosine_similarity"
                                                                          : "squared_l2";
  if (o.json_output) {
    json out = json::array();
    for (const auto& n : neighbors) {
      out.push_back({{"id", n.datapoint().datapoint_id()}, {"distance", n.distance()}});
    }
    std::printf("%s\n", json{{"index", o.name},
                             {"latency_ms", ms},
                             {"score", score},
                             {"neighbors", out}}
                             .dump(2)
                             .c_str());
    return absl::OkStatus();
  }
  std::printf("rank\tid\t%s\n", score);
  for (int i = 0; i < neighbors.size(); ++i) {
    std::printf("%d\t%llu\t%.6g\n", i + 1,
                static_cast<unsigned long long>(neighbors[i].datapoint().datapoint_id()),
                neighbors[i].distance());
  }
  std::printf("%d neighbours in %.3f ms\n", neighbors.size(), ms);
  return absl::OkStatus();
}

absl::Status RunBench(const GlobalOptions& g, const CommandOptions& o) {
  if (o.k < 1) return absl::InvalidArgumentError(absl::StrCat("-k must be >= 1, got ", o.k));
  if (o.bench_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--batch must be >= 1, got ", o.bench_batch));
  }
  if (o.concurrency < 1 || o.concurrency > kMaxConcurrency) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--concurrency must be in 1..", kMaxConcurrency, " (client threads), got ",
        o.concurrency));
  }
  if (o.runs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--runs must be >= 1, got ", o.runs));
  }
  if (o.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--limit must be >= 0 (0 = all queries), got ", o.limit));
  }
  if (!o.base.empty() + !o.ground_truth.empty() + o.server_ground_truth != 1) {
    return absl::InvalidArgumentError(
        "bench needs exactly one of --base FILE (exact neighbours computed here), "
        "--ground_truth FILE.ivecs or --server_ground_truth (exact searches on the server)");
  }
  if (o.base.empty() && o.base_limit != 0) {
    return absl::InvalidArgumentError(
        "--base_limit limits the rows read from --base; it has no effect without --base");
  }
  if (o.base.empty() && o.id_offset != 0) {
    return absl::InvalidArgumentError(
        "--id_offset maps --base rows to ids; it has no effect without --base");
  }
  if (o.server_ground_truth && !o.metric.empty()) {
    return absl::InvalidArgumentError(
        "--metric sets the metric of --base ground truth; --server_ground_truth uses the "
        "index's own metric");
  }
  if (!o.json_path.empty()) {
    // Fail before minutes of benchmarking, not after: open (and create) the file now.
    std::ofstream probe(o.json_path, std::ios::app);
    if (!probe) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--json ", o.json_path, " cannot be written (does its directory exist?)"));
    }
  }
  ASSIGN_OR_RETURN(auto client, Connect(g));
  ASSIGN_OR_RETURN(v1::IndexInfo info, client->GetIndex(o.name));
  if (info.vector_count() == 0) {
    // Every recall would be 0 against empty ground truth, a number that means nothing.
    return absl::FailedPreconditionError(absl::StrCat(
        "index '", o.name, "' holds 0 vectors; load some first (nestor load ", o.name,
        " FILE), then build it if it is partitioned"));
  }

  absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(FloatMatrix queries, LoadDataset(o.queries, o.limit));
  std::printf("read %lld queries of dimension %lld from %s in %.2f s\n",
              static_cast<long long>(queries.rows), static_cast<long long>(queries.cols),
              o.queries.c_str(), Seconds(start));
  if (queries.cols != info.config().dimension()) {
    return absl::InvalidArgumentError(absl::StrCat("queries have dimension ", queries.cols,
                                                   ", index '", o.name, "' has ",
                                                   info.config().dimension()));
  }

  if (!o.metric.empty() && kMetricNames.at(o.metric) != info.config().metric()) {
    std::fprintf(stderr,
                 "warning: --metric %s differs from index '%s''s metric; recall is measured "
                 "against %s neighbours, which the index does not search for\n",
                 o.metric.c_str(), o.name.c_str(), o.metric.c_str());
  }
  // One request with the first batch before the (possibly long) ground truth: settings the
  // server refuses (k, batch size, partitions_to_search, funnel...) fail now, with the
  // server's code and message, not after the exact search.
  if (queries.rows > 0) {
    v1::FindNeighborsRequest first;
    first.set_index(o.name);
    for (int64_t i = 0; i < std::min<int64_t>(o.bench_batch, queries.rows); ++i) {
      AddQuery(queries.row(i), queries.cols, o, &first);
    }
    v1::FindNeighborsResponse unused;
    RETURN_IF_ERROR(client->FindNeighbors(first, &unused));
  }

  // Exact neighbour ids per query, truth_cols per row.
  std::vector<int64_t> truth;
  int64_t truth_cols = 0;
  start = absl::Now();
  if (!o.ground_truth.empty()) {
    absl::StatusOr<DatasetFormat> format = FormatFromPath(o.ground_truth);
    if (!format.ok() || *format != DatasetFormat::kIvecs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--ground_truth ", o.ground_truth,
          ": expected an .ivecs file (int32 neighbour ids, one row per query)"));
    }
    ASSIGN_OR_RETURN(IntMatrix gt, LoadIvecs(o.ground_truth, queries.rows));
    if (gt.rows < queries.rows) {
      return absl::InvalidArgumentError(absl::StrCat(o.ground_truth, " has ", gt.rows,
                                                     " rows, fewer than the ", queries.rows,
                                                     " queries"));
    }
    if (gt.cols < o.k) {
      return absl::InvalidArgumentError(absl::StrCat(o.ground_truth, " has ", gt.cols,
                                                     " neighbours per query, fewer than k=", o.k));
    }
    truth.assign(gt.data.begin(), gt.data.end());
    truth_cols = gt.cols;
    std::printf("read ground truth %lld x %lld from %s\n", static_cast<long long>(gt.rows),
                static_cast<long long>(gt.cols), o.ground_truth.c_str());
  } else if (o.server_ground_truth) {
    // Batches of at least 32 let the server spread the scans over its search threads.
    int64_t gt_batch = std::max<int64_t>(o.bench_batch, 32);
    absl::StatusOr<std::vector<int64_t>> exact = ServerGroundTruth(*client, queries, o, gt_batch, g);
    if (absl::IsResourceExhausted(exact.status()) && gt_batch > o.bench_batch) {
      gt_batch = o.bench_batch;  // the server's max_batch_size is below 32
      exact = ServerGroundTruth(*client, queries, o, gt_batch, g);
    }
    if (!exact.ok()) return exact.status();
    truth = *std::move(exact);
    truth_cols = o.k;
    std::printf("exact ground truth (k=%d%s) from exact searches on the server, %lld queries "
                "per request, in %.2f s\n",
                o.k, o.prefix_dim > 0 ? absl::StrCat(", prefix_dim=", o.prefix_dim).c_str() : "",
                static_cast<long long>(gt_batch), Seconds(start));
  } else {
    const int d = static_cast<int>(info.config().dimension());
    if (info.config().pca_rotation() && o.prefix_dim > 0 && o.prefix_dim < d) {
      // The index's prefixes are of PCA-rotated vectors, which this client does not have.
      return absl::FailedPreconditionError(absl::StrCat(
          "index '", o.name, "' has pca_rotation, so prefix_dim ", o.prefix_dim,
          " means its first ", o.prefix_dim, " principal components; --base computes exact "
          "neighbours on the raw first coordinates, which would make recall meaningless. "
          "Use --server_ground_truth (exact searches over the index's rotated vectors), "
          "give --ground_truth FILE.ivecs computed on the rotated prefixes, or drop "
          "--prefix_dim (full-dimension scores are rotation-invariant)"));
    }
    ASSIGN_OR_RETURN(FloatMatrix base, LoadDataset(o.base, o.base_limit));
    if (static_cast<uint64_t>(base.rows) != info.vector_count()) {
      std::fprintf(stderr,
                   "nestor bench: warning: --base has %lld rows but index '%s' holds %llu "
                   "vectors; recall is only meaningful when the index holds exactly the "
                   "--base rows (ids --id_offset + row)\n",
                   static_cast<long long>(base.rows), o.name.c_str(),
                   static_cast<unsigned long long>(info.vector_count()));
    }
    v1::Metric metric =
        o.metric.empty() ? info.config().metric() : kMetricNames.at(o.metric);
    GroundTruthOptions gt_options;
    gt_options.metric = ToGroundTruthMetric(metric);
    gt_options.k = o.k;
    gt_options.prefix_dim = o.prefix_dim;
    ASSIGN_OR_RETURN(Neighbors exact, ExactNeighbors(base, queries, gt_options));
    truth = std::move(exact.ids);
    for (int64_t& id : truth) id += static_cast<int64_t>(o.id_offset);
    truth_cols = exact.k;
    std::printf("exact ground truth (%s, k=%d%s) over %lld x %lld base vectors by BLAS in %.2f s\n",
                MetricName(metric).c_str(), exact.k,
                o.prefix_dim > 0 ? absl::StrCat(", prefix_dim=", o.prefix_dim).c_str() : "",
                static_cast<long long>(base.rows), static_cast<long long>(base.cols),
                Seconds(start));
  }
  std::fflush(stdout);

  // Every request is built before the clock starts, so the timed loop only sends,
  // waits and copies ids out: `concurrency` threads take batches of `bench_batch` in
  // order, each reusing one response message.
  const int64_t num_batches = (queries.rows + o.bench_batch - 1) / o.bench_batch;
  // More threads than requests would only idle.
  const int in_flight = static_cast<int>(std::min<int64_t>(o.concurrency, num_batches));
  std::vector<v1::FindNeighborsRequest> requests(static_cast<size_t>(num_batches));
  for (int64_t b = 0; b < num_batches; ++b) {
    const int64_t r0 = b * o.bench_batch;
    const int64_t n = std::min(o.bench_batch, queries.rows - r0);
    v1::FindNeighborsRequest& request = requests[b];
    request.set_index(o.name);
    request.mutable_queries()->Reserve(static_cast<int>(n));
    for (int64_t i = 0; i < n; ++i) AddQuery(queries.row(r0 + i), queries.cols, o, &request);
  }
  ProgressOptions progress_options;
  progress_options.force = g.progress;
  progress_options.unit = "queries";
  ProgressBar bar(absl::StrCat("bench ", o.name), queries.rows * o.runs, progress_options);
  std::atomic<int64_t> done{0};
  // The progress bar is drawn by its own thread while the passes run.
  std::thread progress_thread;
  std::atomic<bool> stop_progress{false};
  if (bar.enabled()) {
    progress_thread = std::thread([&]() {
      int64_t shown = 0;
      while (!stop_progress.load()) {
        const int64_t now_done = done.load();
        bar.Add(now_done - shown);
        shown = now_done;
        absl::SleepFor(absl::Milliseconds(100));
      }
      bar.Add(done.load() - shown);
    });
  }
  // `runs` timed passes over the query set; the pass of median wall time is reported.
  // Recall comes from the first pass's ids (a search is deterministic), so later passes
  // keep only their timings.
  std::vector<LoadPass> passes;
  std::vector<std::vector<int64_t>> results;
  absl::Status pass_error;
  for (int run = 0; run < o.runs; ++run) {
    absl::StatusOr<LoadPass> pass = SendRequests(*client, requests, in_flight, &done);
    if (!pass.ok()) {
      pass_error = pass.status();
      break;
    }
    if (run == 0) results = std::move(pass->ids);
    pass->ids.clear();
    passes.push_back(*std::move(pass));
  }
  stop_progress.store(true);
  if (progress_thread.joinable()) progress_thread.join();
  bar.Finish();
  if (!pass_error.ok()) return pass_error;
  std::sort(passes.begin(), passes.end(), [](const LoadPass& a, const LoadPass& b) {
    return a.wall_seconds < b.wall_seconds;
  });
  LoadPass& median = passes[passes.size() / 2];
  const double wall_seconds = median.wall_seconds;
  std::vector<double> latencies_ms = std::move(median.latencies_ms);

  const double recall = RecallAtK(results, truth, truth_cols, o.k);
  const double qps = wall_seconds > 0 ? queries.rows / wall_seconds : 0;
  const LatencySummary lat = Summarize(latencies_ms);
  const v1::IndexConfig& c = info.config();
  const EffectiveSettings effective =
      Effective(info, o.partitions_to_search, o.reorder_k, o.k, o.prefix_dim, o.shortlist_dim,
                o.shortlist_size, o.max_codes);
  const int effective_nprobe = effective.partitions_to_search;
  const bool int8_codes = effective.reorder_k > 0;
  const int effective_reorder_k = effective.reorder_k;
  std::printf(
      "index '%s': kind=%s code_type=%s simd_path=%s vectors=%llu num_partitions=%u "
      "partitions_to_search=%d%s%s%s%s\n",
      o.name.c_str(), info.kind().c_str(), info.code_type().c_str(), info.simd_path().c_str(),
      static_cast<unsigned long long>(info.vector_count()), c.num_partitions(),
      c.num_partitions() > 0 ? effective_nprobe : 0,
      int8_codes ? absl::StrCat(" reorder_k=", effective_reorder_k).c_str() : "",
      o.prefix_dim > 0 ? absl::StrCat(" prefix_dim=", o.prefix_dim).c_str() : "",
      effective.shortlist_dim > 0
          ? absl::StrCat(" shortlist_dim=", effective.shortlist_dim,
                         " shortlist_size=", effective.shortlist_size)
                .c_str()
          : "",
      effective.max_codes > 0 ? absl::StrCat(" max_codes=", effective.max_codes).c_str() : "");
  std::printf("%lld queries, k=%d, batch=%lld, concurrency=%d: %lld requests in %.2f s%s\n",
              static_cast<long long>(queries.rows), o.k, static_cast<long long>(o.bench_batch),
              in_flight, static_cast<long long>(num_batches), wall_seconds,
              o.runs > 1 ? absl::StrCat(" (median of ", o.runs, " runs)").c_str() : "");
  std::printf("latency per request (ms): mean=%.3f p50=%.3f p95=%.3f p99=%.3f max=%.3f\n",
              lat.mean, lat.p50, lat.p95, lat.p99, lat.max);
  if (!o.json_path.empty()) {
    json out = {{"index", o.name},
                {"queries", queries.rows},
                {"k", o.k},
                {"batch", o.bench_batch},
                {"concurrency", in_flight},
                {"runs", o.runs},
                {"num_partitions", c.num_partitions()},
                {"partitions_to_search", c.num_partitions() > 0 ? effective_nprobe : 0},
                {"prefix_dim", o.prefix_dim},
                {"code_type", info.code_type()},
                {"reorder_k", effective_reorder_k},
                {"shortlist_dim", effective.shortlist_dim},
                {"shortlist_size", effective.shortlist_size},
                {"max_codes", effective.max_codes},
                {"simd_path", info.simd_path()},
                {"recall", recall},
                {"qps", qps},
                {"wall_seconds", wall_seconds},
                {"latency_ms",
                 {{"mean", lat.mean}, {"p50", lat.p50}, {"p95", lat.p95}, {"p99", lat.p99},
                  {"max", lat.max}}}};
    std::ofstream file(o.json_path);
    file << out.dump(2) << "\n";
    if (!file) {
      return absl::PermissionDeniedError(absl::StrCat("cannot write ", o.json_path));
    }
    std::printf("wrote %s\n", o.json_path.c_str());
  }
  std::printf("recall@%d=%.4f qps=%.0f p50_ms=%.3f p99_ms=%.3f\n", o.k, recall, qps, lat.p50,
              lat.p99);
  return absl::OkStatus();
}

int ReportError(const std::string& command, const absl::Status& status,
                const GlobalOptions& global) {
  std::fflush(stdout);
  std::fprintf(stderr, "nestor %s: error: %s: %s\n", command.c_str(),
               absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  if (status.code() == absl::StatusCode::kUnavailable) {
    std::fprintf(stderr, "  (is nestor-server running at %s? set --server or NESTOR_SERVER)\n",
                 global.server.c_str());
  }
  if (status.code() == absl::StatusCode::kDeadlineExceeded && global.timeout_ms > 0) {
    std::fprintf(stderr,
                 "  (each RPC gets --timeout_ms %lld ms; raise it, or 0 for no deadline)\n",
                 static_cast<long long>(global.timeout_ms));
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition &&
      status.message().find("call BuildIndex") != absl::string_view::npos) {
    std::fprintf(stderr, "  (run `nestor build NAME` first)\n");
  }
  if (status.code() == absl::StatusCode::kResourceExhausted &&
      status.message().find("max_batch_size") != absl::string_view::npos) {
    std::fprintf(stderr,
                 "  (a server limit: lower --batch, or start nestor-server with a larger "
                 "--max_batch_size)\n");
  }
  if (status.code() == absl::StatusCode::kResourceExhausted &&
      status.message().find("max_neighbor_count") != absl::string_view::npos) {
    std::fprintf(stderr,
                 "  (a server limit: lower -k, or start nestor-server with a larger "
                 "--max_neighbor_count)\n");
  }
  if (status.code() == absl::StatusCode::kResourceExhausted &&
      status.message().find("Threadpool") != absl::string_view::npos) {
    std::fprintf(stderr,
                 "  (more requests in flight than the server's --grpc_threads: lower "
                 "--concurrency or raise --grpc_threads)\n");
  }
  return 1;
}

// `nestor tune ...` runs the offline autotuner, nestor-tune (tools/), which links the
// engine; the client stays proto-only by exec'ing it instead of linking it. Looked up
// next to this binary, then in ../tools/ (the build tree), then on PATH. Returns only
// when the exec failed.
int ExecTune(int argc, char** argv, int tune_at, bool progress) {
  // argv[0] is what its --help prints after "Usage:": the command the user typed.
  std::vector<std::string> args = {"nestor tune"};
  for (int i = tune_at + 1; i < argc; ++i) args.emplace_back(argv[i]);
  if (progress) args.emplace_back("--progress");
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len > 0) {
    const std::string exe(self, static_cast<size_t>(len));
    const std::string dir = exe.substr(0, exe.rfind('/'));
    for (const std::string& candidate : {dir + "/nestor-tune", dir + "/../tools/nestor-tune"}) {
      if (access(candidate.c_str(), X_OK) == 0) execv(candidate.c_str(), c_args.data());
    }
  }
  execvp("nestor-tune", c_args.data());
  std::cerr << "error: nestor tune: cannot run nestor-tune (not next to nestor, in "
               "../tools/, or on PATH)"
            << std::endl;
  return 1;
}

int Main(int argc, char** argv) {
  // The first positional argument is the subcommand (--server and --timeout_ms take a
  // value).
  bool tune_progress = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--server" || arg == "--timeout_ms") {
      ++i;
      continue;
    }
    if (arg == "--progress") tune_progress = true;
    if (!arg.empty() && arg[0] == '-') continue;
    if (arg == "tune") return ExecTune(argc, argv, i, tune_progress);
    break;
  }
  CLI::App app{
      "nestor: command line of the Nestor vector-search service (gRPC client of "
      "nestor-server).\nErrors print 'nestor CMD: error: CODE_NAME: message' on stderr and "
      "exit 1; usage errors exit 2.",
      "nestor"};
  app.require_subcommand(1);
  // --server, --timeout_ms and --progress may also follow the subcommand.
  app.fallthrough();
  GlobalOptions global;
  CommandOptions o;
  app.add_option("--server", global.server, "Server address HOST:PORT")
      ->envname("NESTOR_SERVER")
      ->capture_default_str();
  app.add_option("--timeout_ms", global.timeout_ms,
                 "Deadline of each RPC in milliseconds; 0 = no deadline")
      ->capture_default_str();
  app.add_flag("--progress", global.progress,
               "Draw progress bars on stderr even when it is not a terminal");
  const std::vector<std::string> metric_names = {"l2", "ip", "cosine"};
  const std::vector<std::string> code_type_names = {"float", "int8"};
  auto add_index_config = [&](CLI::App* cmd) {
    cmd->add_option("--metric", o.metric,
                    "Distance: l2 (squared Euclidean), ip (inner product) or cosine "
                    "[default: l2]")
        ->check(CLI::IsMember(metric_names));
    cmd->add_option("--num_partitions", o.num_partitions,
                    "k-means partitions; 0 = exact (brute-force) index")
        ->capture_default_str();
    cmd->add_option("--partitions_to_search", o.partitions_to_search_default,
                    "Default partitions scanned per query; 0 = max(1, num_partitions/16) "
                    "(partitioned indexes only)")
        ->capture_default_str();
    cmd->add_option("--training_iterations", o.training_iterations,
                    "k-means iterations at build, at most 1000; 0 = server default (20)")
        ->capture_default_str();
    cmd->add_option("--seed", o.seed, "k-means seed; 0 = server default (1234)")
        ->capture_default_str();
    cmd->add_option("--code_type", o.code_type,
                    "Codes scanned inside partitions: float (exact scan) or int8 (scalar-"
                    "quantized scan, then exact reorder) [default: the server's, int8]")
        ->check(CLI::IsMember(code_type_names));
    cmd->add_option("--reorder_k", o.reorder_k_default,
                    "int8 codes: candidates per query re-scored exactly when a query does "
                    "not say; 0 = 4 x k (partitioned indexes only)")
        ->capture_default_str();
    cmd->add_option("--matryoshka_dims", o.matryoshka_dims,
                    "Matryoshka ladder: prefix dimensions queries may use (ascending, "
                    "comma-separated; the dimension is always allowed); empty = any "
                    "(partitioned indexes only: an exact index serves every prefix)")
        ->delimiter(',');
    cmd->add_option("--routing_dim", o.routing_dim,
                    "Prefix the partitions are trained and routed on; 0 = the dimension "
                    "(partitioned indexes only)")
        ->capture_default_str();
    cmd->add_flag("--pca_rotation", o.pca_rotation,
                  "Learn a PCA rotation at build so prefixes are the leading principal "
                  "components (for embeddings not trained as Matryoshka)");
  };

  auto* create = app.add_subcommand("create", "Create an index");
  create->add_option("name", o.name, "Index name: 1..64 of [A-Za-z0-9_-]")->required();
  create->add_option("--dimension", o.dimension, "Floats per vector (1..65536)")->required();
  add_index_config(create);

  auto* load = app.add_subcommand(
      "load", "Stream vectors from a file into an index (StreamUpsertDatapoints)");
  load->add_option("name", o.name, "Index name")->required();
  load->add_option("file", o.file,
                   "Vectors: .npy (f4/f8/u1/i4), .fvecs, .bvecs, idx (.idx, *-ubyte); "
                   "optionally .gz")
      ->required();
  load->add_option("--limit", o.limit, "Load only the first N rows; 0 = all")
      ->capture_default_str();
  load->add_option("--batch", o.batch,
                   "Vectors per stream message (at most the server's max_batch_size)")
      ->capture_default_str();
  load->add_option("--id_offset", o.id_offset, "Id of the first row; row r gets id_offset + r")
      ->check(NonNegativeInteger())
      ->capture_default_str();
  load->add_flag("--create", o.create,
                 "Create the index first, with the file's dimension and the options below "
                 "(fails with ALREADY_EXISTS if it exists)");
  add_index_config(load);

  auto* build = app.add_subcommand(
      "build", "Train the partitions and assign every vector (BuildIndex); prints seconds");
  build->add_option("name", o.name, "Index name")->required();

  auto* stats = app.add_subcommand("stats", "Show one index, or all indexes");
  stats->add_option("name", o.name, "Index name; omitted = all indexes");
  stats->add_flag("--json", o.json_output, "Print JSON");

  auto* save = app.add_subcommand("save", "Write a snapshot of an index to the server's data_dir");
  save->add_option("name", o.name, "Index name")->required();

  auto* del = app.add_subcommand("delete", "Delete an index");
  del->add_option("name", o.name, "Index name")->required();

  auto* remove = app.add_subcommand("remove", "Remove datapoints from an index by id");
  remove->add_option("name", o.name, "Index name")->required();
  remove->add_option("--ids", o.ids, "Datapoint ids, comma-separated, e.g. 3,17,42")->required();

  auto* apply_tuning = app.add_subcommand(
      "apply-tuning",
      "Make a `nestor tune` result the live index's query defaults, while searches continue "
      "(kept in its snapshot)");
  apply_tuning->add_option("name", o.name, "Index name (partitioned)")->required();
  apply_tuning->add_option("file", o.file, "TuningResult file written by nestor tune (text or JSON)")
      ->required();

  auto add_query_options = [&](CLI::App* cmd) {
    cmd->add_option("-k,--neighbor_count", o.k, "Neighbours per query (>= 1)")->capture_default_str();
    cmd->add_option("--partitions_to_search", o.partitions_to_search,
                    "Partitions scanned per query; 0 = the index default")
        ->capture_default_str();
    cmd->add_option("--prefix_dim", o.prefix_dim,
                    "Score on the first d coordinates (Matryoshka prefix); 0 = all")
        ->capture_default_str();
    cmd->add_option("--reorder_k", o.reorder_k,
                    "int8 codes: candidates per query re-scored exactly; 0 = the index "
                    "default")
        ->capture_default_str();
    cmd->add_option("--shortlist_dim", o.shortlist_dim,
                    "Funnel: shortlist on the codes of the first s coordinates, rerank "
                    "exactly at prefix_dim; 0 = the index's tuned funnel at the full "
                    "dimension, else off; = prefix_dim (with --shortlist_size 0) = off")
        ->capture_default_str();
    cmd->add_option("--shortlist_size", o.shortlist_size,
                    "Funnel: candidates the shortlist keeps (>= k); 0 = the tuned size, "
                    "else 10 x k")
        ->capture_default_str();
    cmd->add_option("--max_codes", o.max_codes,
                    "Stop opening partitions (nearest first) once those opened hold N "
                    "vectors; the nearest is always scanned, --partitions_to_search still "
                    "caps. 0 = the index's tuned max_codes when --partitions_to_search is 0, "
                    "else no limit (partitioned indexes only: checked, then ignored by an "
                    "exact index)")
        ->capture_default_str();
  };
  auto* search = app.add_subcommand("search", "Find the nearest neighbours of one vector");
  search->add_option("name", o.name, "Index name")->required();
  auto* vector_opt = search->add_option("--vector", o.vector,
                                        "The query as comma-separated floats, e.g. \"0.1,0.2\"");
  auto* queries_opt =
      search->add_option("--queries", o.queries, "Take the query from this vector file");
  vector_opt->excludes(queries_opt);
  search->add_option("--row", o.row, "Row of --queries to use (0-based)")->capture_default_str();
  add_query_options(search);
  search->add_flag("--exact", o.exact,
                   "Exact search: score every vector of the index at prefix_dim (brute "
                   "force); partitions_to_search, reorder_k, max_codes and the funnel are "
                   "not used");
  search->add_flag("--json", o.json_output, "Print JSON");

  // Listed for --help only; Main() hands `tune` to nestor-tune before parsing.
  app.add_subcommand("tune",
                     "Offline autotuner: runs nestor-tune (see `nestor tune --help`); writes a "
                     "TuningResult for `nestor apply-tuning NAME FILE` or nestor-server --tuning_file "
                     "NAME=PATH")
      ->allow_extras();
  auto* bench = app.add_subcommand(
      "bench",
      "Run a query set through FindNeighbors; report recall@k, QPS and latency. The last "
      "line reads 'recall@K=R qps=Q p50_ms=A p99_ms=B'");
  bench->add_option("name", o.name, "Index name")->required();
  bench->add_option("--queries", o.queries, "Query vectors file (any loadable format)")
      ->required();
  bench->add_option("--base", o.base,
                    "Base vectors file (the one loaded); exact neighbours are computed from "
                    "it locally with BLAS");
  bench->add_option("--base_limit", o.base_limit,
                    "Use only the first N base rows (match load --limit); 0 = all")
      ->capture_default_str();
  bench->add_option("--ground_truth", o.ground_truth,
                    "Exact neighbour ids, .ivecs, one row per query (instead of --base)");
  bench->add_flag("--server_ground_truth", o.server_ground_truth,
                  "Ground truth from exact searches on the server (Query.exact: every vector "
                  "of the index scored), instead of --base: no base file needed, the index's "
                  "current contents, and right for pca_rotation prefixes. Costs a full scan "
                  "per query, before the timed runs");
  bench->add_option("--id_offset", o.id_offset, "Id of base row 0 (match load --id_offset)")
      ->check(NonNegativeInteger())
      ->capture_default_str();
  bench->add_option("--limit", o.limit, "Use only the first N queries; 0 = all")
      ->capture_default_str();
  bench->add_option("--batch", o.bench_batch, "Queries per FindNeighbors request")
      ->capture_default_str();
  bench->add_option("--concurrency", o.concurrency,
                    "Requests in flight (client threads, 1..1024; at most one per request)")
      ->capture_default_str();
  bench->add_option("--runs", o.runs,
                    "Time the whole query set N times and report the run of median wall "
                    "time (QPS and latency)")
      ->capture_default_str();
  bench->add_option("--metric", o.metric,
                    "Metric of the exact ground truth: l2, ip or cosine [default: the index's]")
      ->check(CLI::IsMember(metric_names));
  bench->add_option("--json", o.json_path, "Also write the results as JSON to this path");
  add_query_options(bench);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; its codes (105, 109, ...) become one usage-error code, 2,
    // as nestor tune (nestor-tune) exits.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (search->parsed() && o.vector.empty() && o.queries.empty()) {
    return ReportError("search", absl::InvalidArgumentError(
                           "give a non-empty --vector \"x,y,...\" or --queries FILE"),
                       global);
  }
  struct Command {
    CLI::App* app;
    absl::Status (*run)(const GlobalOptions&, const CommandOptions&);
  };
  const Command commands[] = {{create, RunCreate}, {load, RunLoad},     {build, RunBuild},
                              {stats, RunStats},   {save, RunSave},     {del, RunDelete},
                              {remove, RunRemove}, {apply_tuning, RunApplyTuning},
                              {search, RunSearch}, {bench, RunBench}};
  for (const Command& command : commands) {
    if (!command.app->parsed()) continue;
    absl::Status status = command.run(global, o);
    if (!status.ok()) return ReportError(command.app->get_name(), status, global);
    return 0;
  }
  return 2;
}

}  // namespace
}  // namespace nestor::client

int main(int argc, char** argv) { return nestor::client::Main(argc, argv); }

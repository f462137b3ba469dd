#include "server/config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace nestor::server {
namespace {

constexpr uint32_t kMaxPort = 65535;
constexpr uint32_t kMaxLimit = 1000000;
constexpr uint32_t kMaxThreads = 1024;
constexpr uint64_t kMinMessageBytes = 1024;
constexpr uint64_t kMaxMessageBytes = 2147483647;  // gRPC takes an int

// Collects text-format parse errors into one message.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {}
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

ServerConfig DefaultServerConfig() {
  ServerConfig config;
  config.set_grpc_port(kDefaultGrpcPort);
  config.set_metrics_port(kDefaultMetricsPort);
  FillServerConfigDefaults(&config);
  return config;
}

void FillServerConfigDefaults(ServerConfig* config) {
  if (config->listen_address().empty()) config->set_listen_address(kDefaultListenAddress);
  if (config->data_dir().empty()) config->set_data_dir(kDefaultDataDir);
  if (config->max_batch_size() == 0) config->set_max_batch_size(kDefaultMaxBatchSize);
  if (config->max_neighbor_count() == 0) {
    config->set_max_neighbor_count(kDefaultMaxNeighborCount);
  }
  if (config->max_message_bytes() == 0) {
    config->set_max_message_bytes(kDefaultMaxMessageBytes);
  }
  if (config->grpc_threads() == 0) {
    // Requests mostly wait on the network, so allow several per core before refusing.
    config->set_grpc_threads(std::max(8u, 4 * std::thread::hardware_concurrency()));
  }
  if (config->search_threads() == 0) config->set_search_threads(1);
}

absl::Status ValidateServerConfig(const ServerConfig& config) {
  auto range_error = [](const char* field, uint64_t lo, uint64_t hi, uint64_t got) {
    return absl::InvalidArgumentError(
        absl::StrCat("ServerConfig.", field, " must be in ", lo, "..", hi, ", got ", got));
  };
  if (config.listen_address().empty()) {
    return absl::InvalidArgumentError("ServerConfig.listen_address must not be empty");
  }
  if (absl::StrContains(config.listen_address(), ':')) {
    // Both listeners (gRPC and the metrics HTTP server) are IPv4 only.
    return absl::InvalidArgumentError(absl::StrCat(
        "ServerConfig.listen_address '", config.listen_address(),
        "' looks like an IPv6 address or has a port; expected an IPv4 address or host name "
        "without a port, such as 127.0.0.1 or 0.0.0.0 (IPv6 is not supported)"));
  }
  if (config.data_dir().empty()) {
    return absl::InvalidArgumentError("ServerConfig.data_dir must not be empty");
  }
  if (config.grpc_port() > kMaxPort) {
    return range_error("grpc_port", 0, kMaxPort, config.grpc_port());
  }
  if (config.metrics_port() > kMaxPort) {
    return range_error("metrics_port", 0, kMaxPort, config.metrics_port());
  }
  if (config.grpc_port() != 0 && config.grpc_port() == config.metrics_port()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ServerConfig.grpc_port and metrics_port must differ, both are ",
        config.grpc_port()));
  }
  if (config.max_batch_size() < 1 || config.max_batch_size() > kMaxLimit) {
    return range_error("max_batch_size", 1, kMaxLimit, config.max_batch_size());
  }
  if (config.max_neighbor_count() < 1 || config.max_neighbor_count() > kMaxLimit) {
    return range_error("max_neighbor_count", 1, kMaxLimit, config.max_neighbor_count());
  }
  if (config.max_message_bytes() < kMinMessageBytes ||
      config.max_message_bytes() > kMaxMessageBytes) {
    return range_error("max_message_bytes", kMinMessageBytes, kMaxMessageBytes,
                       config.max_message_bytes());
  }
  if (config.grpc_threads() < 1 || config.grpc_threads() > kMaxThreads) {
    return range_error("grpc_threads", 1, kMaxThreads, config.grpc_threads());
  }
  if (config.search_threads() < 1 || config.search_threads() > kMaxThreads) {
    return range_error("search_threads", 1, kMaxThreads, config.search_threads());
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> LoadServerConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read config file ", path, ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  ServerConfig config = DefaultServerConfig();
  ErrorCollector errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  // Merge keeps the defaults of fields the file does not mention; a field the file
  // sets to 0 (e.g. grpc_port: 0, "pick a free port") stays 0.
  if (!parser.MergeFromString(text.str(), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, " is not a text-format ServerConfig: ",
                     errors.Joined()));
  }
  return config;
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CLI::App app{
      "nestor-server: serves Nestor vector indexes over gRPC (nestor.v1.IndexService), "
      "with the gRPC health and reflection services and Prometheus metrics.\n"
      "Settings come from --config (text-format nestor.v1.ServerConfig), then flags."};
  std::string config_path;
  std::string ready_file;
  // Flags override the file only when given (app.count), so these start at zero.
  std::string listen_address, data_dir;
  uint32_t grpc_port = 0, metrics_port = 0, max_batch_size = 0, max_neighbor_count = 0,
           grpc_threads = 0, search_threads = 0;
  uint64_t max_message_bytes = 0;
  std::vector<std::string> tuning_files;

  app.add_option("--config", config_path,
                 "Text-format nestor.v1.ServerConfig file; flags override its fields")
      ->check(CLI::ExistingFile);
  app.add_option("--listen_address", listen_address,
                 "Address both servers bind (default 127.0.0.1)");
  app.add_option("--grpc_port", grpc_port,
                 "gRPC port; 0 picks a free port (default 50051)")
      ->check(CLI::Range(0u, kMaxPort));
  app.add_option("--metrics_port", metrics_port,
                 "Prometheus /metrics HTTP port; 0 picks a free port (default 9100)")
      ->check(CLI::Range(0u, kMaxPort));
  app.add_option("--data_dir", data_dir,
                 "Directory with one snapshot sub-directory per index; loaded at start, "
                 "written at shutdown (default ./nestor-data)");
  app.add_option("--max_batch_size", max_batch_size,
                 "Most queries per FindNeighbors and datapoints per upsert message, in "
                 "items (default 1024)");
  app.add_option("--max_neighbor_count", max_neighbor_count,
                 "Most neighbours per query (k), in items (default 1000)");
  app.add_option("--max_message_bytes", max_message_bytes,
                 "Largest gRPC message sent or received, in bytes (default 67108864 = "
                 "64 MiB)");
  app.add_option("--grpc_threads", grpc_threads,
                 "RPCs handled at once, in threads; RPCs in flight beyond it may be refused "
                 "with RESOURCE_EXHAUSTED (default 0 = max(8, 4 x cores))");
  app.add_option("--search_threads", search_threads,
                 "Threads one batched search may use (default 0 = 1, so gRPC threads x "
                 "search threads do not oversubscribe the cores)");
  app.add_option("--tuning_file", tuning_files,
                 "NAME=PATH: apply the TuningResult at PATH (written by `nestor tune`) to "
                 "index NAME as its query defaults at start, replacing those saved in its "
                 "snapshot; repeatable, added to the config file's tuning_files");
  app.add_option("--ready_file", ready_file,
                 "Once serving, atomically write this file with the bound ports as two "
                 "lines: grpc_port=N and metrics_port=M (default: none)");

  CommandLine result;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    result.exit_code = 0;
    return result;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help();
    result.exit_code = 0;
    return result;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }

  ServerConfig config = DefaultServerConfig();
  if (!config_path.empty()) {
    absl::StatusOr<ServerConfig> from_file = LoadServerConfigFile(config_path);
    if (!from_file.ok()) return from_file.status();
    config = *std::move(from_file);
  }
  if (app.count("--listen_address") > 0) config.set_listen_address(listen_address);
  if (app.count("--grpc_port") > 0) config.set_grpc_port(grpc_port);
  if (app.count("--metrics_port") > 0) config.set_metrics_port(metrics_port);
  if (app.count("--data_dir") > 0) config.set_data_dir(data_dir);
  if (app.count("--max_batch_size") > 0) config.set_max_batch_size(max_batch_size);
  if (app.count("--max_neighbor_count") > 0) config.set_max_neighbor_count(max_neighbor_count);
  if (app.count("--max_message_bytes") > 0) config.set_max_message_bytes(max_message_bytes);
  if (app.count("--grpc_threads") > 0) config.set_grpc_threads(grpc_threads);
  if (app.count("--search_threads") > 0) config.set_search_threads(search_threads);
  for (const std::string& spec : tuning_files) config.add_tuning_files(spec);
  FillServerConfigDefaults(&config);
  absl::Status valid = ValidateServerConfig(config);
  if (!valid.ok()) return valid;

  result.config = std::move(config);
  result.ready_file = std::move(ready_file);
  return result;
}

absl::Status WriteReadyFile(const std::string& path, int grpc_port, int metrics_port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << "grpc_port=" << grpc_port << "\n" << "metrics_port=" << metrics_port << "\n";
    out.flush();
    if (!out) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace nestor::server

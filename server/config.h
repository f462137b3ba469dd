// Server configuration: proto nestor.v1.ServerConfig, read from a text-format file
// (--config) and overridden by command-line flags.
#ifndef NESTOR_SERVER_CONFIG_H_
#define NESTOR_SERVER_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/nestor.pb.h"

namespace nestor::server {

using ServerConfig = ::nestor::v1::ServerConfig;

inline constexpr char kDefaultListenAddress[] = "127.0.0.1";
inline constexpr uint32_t kDefaultGrpcPort = 50051;
inline constexpr uint32_t kDefaultMetricsPort = 9100;
inline constexpr char kDefaultDataDir[] = "./nestor-data";
inline constexpr uint32_t kDefaultMaxBatchSize = 1024;
inline constexpr uint32_t kDefaultMaxNeighborCount = 1000;
inline constexpr uint64_t kDefaultMaxMessageBytes = 64ull << 20;  // 64 MiB

// Every field at its documented default, ports included (50051 and 9100). The config
// file and the flags start from this.
ServerConfig DefaultServerConfig();

// Replaces zero-valued fields with their defaults (see proto comments), except the two
// ports: in a config built in code, port 0 means "pick a free port". grpc_threads 0
// becomes the number of cores, search_threads 0 becomes 1.
void FillServerConfigDefaults(ServerConfig* config);

// INVALID_ARGUMENT naming the field and its allowed range: ports <= 65535, non-empty
// listen_address and data_dir, max_batch_size and max_neighbor_count in 1..1,000,000,
// max_message_bytes in 1 KiB..2 GiB-1, grpc_threads and search_threads in 1..1024.
// Expects defaults to be filled in.
absl::Status ValidateServerConfig(const ServerConfig& config);

// Parses a text-format ServerConfig file merged over DefaultServerConfig().
// NOT_FOUND if the file cannot be read; INVALID_ARGUMENT (with line and column) if it
// does not parse.
absl::StatusOr<ServerConfig> LoadServerConfigFile(const std::string& path);

// The command line of nestor-server.
struct CommandLine {
  // File, then flags, then defaults filled in; validated.
  ServerConfig config;
  // --ready_file: written once serving; empty for none.
  std::string ready_file;
  // Set when the process should exit now with this code (--help printed: 0).
  std::optional<int> exit_code;
};

// Parses flags (CLI11). --help prints every flag with its default and unit to stdout and
// sets exit_code = 0. Errors: INVALID_ARGUMENT for unknown flags or bad values,
// NOT_FOUND for a missing --config file, or ValidateServerConfig's errors.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// Writes `path` atomically (temporary file in the same directory, then rename) with
// exactly two lines: "grpc_port=N" and "metrics_port=M". INTERNAL on I/O errors.
absl::Status WriteReadyFile(const std::string& path, int grpc_port, int metrics_port);

}  // namespace nestor::server

#endif  // NESTOR_SERVER_CONFIG_H_

#include "server/config.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace nestor::server {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nestor_config_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<CommandLine> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "nestor-server");
    std::vector<const char*> argv;
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, DefaultsMatchTheProtoComments) {
  const ServerConfig config = DefaultServerConfig();
  EXPECT_EQ(config.listen_address(), "127.0.0.1");
  EXPECT_EQ(config.grpc_port(), 50051u);
  EXPECT_EQ(config.metrics_port(), 9100u);
  EXPECT_EQ(config.data_dir(), "./nestor-data");
  EXPECT_EQ(config.max_batch_size(), 1024u);
  EXPECT_EQ(config.max_neighbor_count(), 1000u);
  EXPECT_EQ(config.max_message_bytes(), 64u << 20);
  EXPECT_EQ(config.grpc_threads(), std::max(8u, 4 * std::thread::hardware_concurrency()));
  EXPECT_EQ(config.search_threads(), 1u);
  EXPECT_THAT(ValidateServerConfig(config), IsOk());
}

TEST_F(ConfigTest, NoFlagsGivesDefaults) {
  absl::StatusOr<CommandLine> parsed = Parse({});
  ASSERT_THAT(parsed, IsOk());
  EXPECT_FALSE(parsed->exit_code.has_value());
  EXPECT_EQ(parsed->config.SerializeAsString(), DefaultServerConfig().SerializeAsString());
  EXPECT_TRUE(parsed->ready_file.empty());
}

TEST_F(ConfigTest, FlagsOverrideTheFileWhichOverridesDefaults) {
  const std::string path = WriteFile("server.textproto",
                                     "grpc_port: 0\n"
                                     "max_batch_size: 64\n"
                                     "data_dir: \"/tmp/from-file\"\n");
  absl::StatusOr<CommandLine> parsed =
      Parse({"--config", path, "--data_dir", "/tmp/from-flag", "--search_threads", "2",
             "--ready_file", "/tmp/ready"});
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->config.grpc_port(), 0u);         // file: 0 = pick a free port
  EXPECT_EQ(parsed->config.metrics_port(), 9100u);   // default
  EXPECT_EQ(parsed->config.max_batch_size(), 64u);   // file
  EXPECT_EQ(parsed->config.data_dir(), "/tmp/from-flag");  // flag beats file
  EXPECT_EQ(parsed->config.search_threads(), 2u);
  EXPECT_EQ(parsed->ready_file, "/tmp/ready");
}

TEST_F(ConfigTest, MalformedFileIsInvalidArgumentWithLine) {
  const std::string path = WriteFile("bad.textproto", "grpc_port: 1\nno_such_field: 3\n");
  EXPECT_THAT(Parse({"--config", path}),
              StatusIs(absl::StatusCode::kInvalidArgument, "line 2"));
}

TEST_F(ConfigTest, MissingFileIsRejected) {
  EXPECT_FALSE(Parse({"--config", (dir_ / "absent").string()}).ok());
  EXPECT_THAT(LoadServerConfigFile((dir_ / "absent").string()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ConfigTest, OutOfRangeValuesAreInvalidArgumentNamingTheField) {
  EXPECT_THAT(Parse({"--grpc_port", "70000"}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse({"--max_message_bytes", "10"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_message_bytes"));
  EXPECT_THAT(Parse({"--search_threads", "5000"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "search_threads"));
  EXPECT_THAT(Parse({"--grpc_port", "7000", "--metrics_port", "7000"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "differ"));
  EXPECT_THAT(Parse({"--no_such_flag", "1"}), StatusIs(absl::StatusCode::kInvalidArgument));
  // IPv6 (either listener) and an address with a port are refused up front, not by the
  // metrics server's bind failure.
  for (const char* address : {"::1", "[::1]", "127.0.0.1:9000"}) {
    EXPECT_THAT(Parse({"--listen_address", address}),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("ServerConfig.listen_address '", address,
                                      "' looks like an IPv6 address or has a port")));
  }
  EXPECT_THAT(Parse({"--listen_address", "0.0.0.0"}), IsOk());
}

TEST_F(ConfigTest, HelpDocumentsEveryFlagAndExitsZero) {
  std::stringstream captured;
  std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
  absl::StatusOr<CommandLine> parsed = Parse({"--help"});
  std::cout.rdbuf(old);
  ASSERT_THAT(parsed, IsOk());
  ASSERT_TRUE(parsed->exit_code.has_value());
  EXPECT_EQ(*parsed->exit_code, 0);
  for (const char* flag :
       {"--config", "--listen_address", "--grpc_port", "--metrics_port", "--data_dir",
        "--max_batch_size", "--max_neighbor_count", "--max_message_bytes", "--grpc_threads",
        "--search_threads", "--ready_file"}) {
    EXPECT_THAT(captured.str(), ::testing::HasSubstr(flag));
  }
  EXPECT_THAT(captured.str(), ::testing::HasSubstr("bytes"));
}

TEST_F(ConfigTest, ReadyFileHasExactlyTwoLines) {
  const std::string path = (dir_ / "ready").string();
  ASSERT_THAT(WriteReadyFile(path, 1234, 5678), IsOk());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "grpc_port=1234\nmetrics_port=5678\n");
  // No temporary file is left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace nestor::server

// End to end: the real `nestor` binary against the real `nestor-server` binary on an
// ephemeral loopback port, with a temporary data directory. Each test starts its own
// server and stops it with SIGTERM (the server also dies with the test process, through
// PR_SET_PDEATHSIG), so no server outlives the test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/test_files.h"

namespace nestor::client {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Forks and execs `argv`; stdout / stderr go to the given files. `extra_env` entries
// ("NAME=value") are added to the environment. The child dies with this process.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, const std::vector<std::string>& extra_env = {}) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(out, 1);
  dup2(err, 2);
  for (const std::string& e : extra_env) putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nestor_cli_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    StartServer();
  }

  void TearDown() override {
    StopServer();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Starts nestor-server on dir_/data with `extra_flags` and waits for its ready file.
  void StartServer(const std::vector<std::string>& extra_flags = {}) {
    const std::string ready = (dir_ / "ready").string();
    fs::remove(ready);
    std::vector<std::string> argv = {NESTOR_SERVER_BINARY, "--listen_address", "127.0.0.1",
                                     "--grpc_port", "0", "--metrics_port", "0", "--data_dir",
                                     (dir_ / "data").string(), "--ready_file", ready};
    argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
    server_pid_ = Spawn(argv, (dir_ / "server.out").string(), (dir_ / "server.err").string());
    ASSERT_GT(server_pid_, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      if (waitpid(server_pid_, &status, WNOHANG) == server_pid_) {
        server_pid_ = -1;
        FAIL() << "nestor-server exited early:\n" << ReadFile((dir_ / "server.err").string());
      }
      int grpc_port = 0;
      int metrics_port = 0;
      for (absl::string_view line : absl::StrSplit(ReadFile(ready), '\n')) {
        std::vector<std::string> kv = absl::StrSplit(line, '=');
        if (kv.size() != 2) continue;
        if (kv[0] == "grpc_port") absl::SimpleAtoi(kv[1], &grpc_port);
        if (kv[0] == "metrics_port") absl::SimpleAtoi(kv[1], &metrics_port);
      }
      if (grpc_port > 0 && metrics_port > 0) {
        server_ = "127.0.0.1:" + std::to_string(grpc_port);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "no ready file after 60 s:\n" << ReadFile((dir_ / "server.err").string());
  }

  // Stops the server with SIGTERM (it saves every index) and expects a clean exit.
  void StopServer() {
    if (server_pid_ > 0) {
      kill(server_pid_, SIGTERM);
      int status = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      pid_t done = 0;
      while ((done = waitpid(server_pid_, &status, WNOHANG)) == 0 &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (done == 0) {
        kill(server_pid_, SIGKILL);
        waitpid(server_pid_, &status, 0);
        ADD_FAILURE() << "nestor-server did not exit within 30 s of SIGTERM";
      } else {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "nestor-server exit status " << status << ":\n"
            << ReadFile((dir_ / "server.err").string());
      }
      server_pid_ = -1;
    }
  }

  // Runs `nestor --server <this test's server> args...`.
  RunResult Nestor(const std::vector<std::string>& args, bool with_server_flag = true,
                   const std::vector<std::string>& extra_env = {}) {
    std::vector<std::string> argv = {NESTOR_CLI_BINARY};
    if (with_server_flag) {
      argv.push_back("--server");
      argv.push_back(server_);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string out = (dir_ / "cli.out").string();
    const std::string err = (dir_ / "cli.err").string();
    const pid_t pid = Spawn(argv, out, err, extra_env);
    int status = 0;
    waitpid(pid, &status, 0);
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = ReadFile(out);
    result.err = ReadFile(err);
    return result;
  }

  // rows × dim Gaussian vectors written as .fvecs under the test directory.
  std::string WriteFvecs(const std::string& name, int rows, int dim, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    std::vector<std::vector<float>> data(rows, std::vector<float>(dim));
    for (auto& row : data) {
      for (float& v : row) v = normal(rng);
    }
    const std::string path = (dir_ / name).string();
    testing::WriteBytes(path, testing::VecsBytes<float>(data));
    return path;
  }

  static std::string LastLine(const std::string& text) {
    std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
    return lines.empty() ? "" : lines.back();
  }

  fs::path dir_;
  pid_t server_pid_ = -1;
  std::string server_;
};

TEST_F(CliTest, CreateLoadBuildSearchStatsBench) {
  const std::string base = WriteFvecs("base.fvecs", 500, 8, 1);
  const std::string queries = WriteFvecs("queries.fvecs", 40, 8, 2);

  RunResult r = Nestor({"create", "vecs", "--dimension", "8", "--metric", "l2",
                        "--num_partitions", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created vecs"));

  r = Nestor({"load", "vecs", base, "--batch", "64"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("loaded 500 vectors into 'vecs'"));
  EXPECT_THAT(r.out, HasSubstr("the index holds 500"));

  r = Nestor({"build", "vecs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("built 'vecs' in"));

  // Row 3 of the base is its own nearest neighbour, at distance 0.
  r = Nestor({"search", "vecs", "--queries", base, "--row", "3", "-k", "5",
              "--partitions_to_search", "8", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json search = nlohmann::json::parse(r.out);
  ASSERT_EQ(search["neighbors"].size(), 5u);
  EXPECT_EQ(search["neighbors"][0]["id"], 3);
  EXPECT_FLOAT_EQ(search["neighbors"][0]["distance"].get<float>(), 0.0f);
  EXPECT_EQ(search["score"], "squared_l2");  // what `distance` holds for this metric

  r = Nestor({"search", "vecs", "--vector", "0,0,0,0,0,0,0,0", "-k", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 neighbours"));
  EXPECT_THAT(r.out, StartsWith("rank\tid\tsquared_l2\n"));

  r = Nestor({"stats", "vecs", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json stats = nlohmann::json::parse(r.out);
  EXPECT_EQ(stats["vector_count"], 500);
  EXPECT_EQ(stats["built"], true);
  EXPECT_EQ(stats["dimension"], 8);
  EXPECT_EQ(stats["num_partitions"], 8);
  // No default set: the config says 0, a query searches max(1, 8 / 16) = 1 partition.
  EXPECT_EQ(stats["default_partitions_to_search"], 0);
  EXPECT_EQ(stats["partitions_to_search"], 1);

  // The server address may come from NESTOR_SERVER instead of --server.
  r = Nestor({"stats"}, /*with_server_flag=*/false, {"NESTOR_SERVER=" + server_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("vecs: kind="));

  // Scanning every partition is exact: recall@10 is 1.
  const std::string json_path = (dir_ / "bench.json").string();
  r = Nestor({"bench", "vecs", "--queries", queries, "--base", base, "-k", "10",
              "--partitions_to_search", "8", "--batch", "4", "--concurrency", "2", "--json",
              json_path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LastLine(r.out), StartsWith("recall@10=1.0000 qps="));
  EXPECT_THAT(LastLine(r.out), HasSubstr(" p50_ms="));
  EXPECT_THAT(LastLine(r.out), HasSubstr(" p99_ms="));
  nlohmann::json bench = nlohmann::json::parse(ReadFile(json_path));
  EXPECT_DOUBLE_EQ(bench["recall"].get<double>(), 1.0);
  EXPECT_EQ(bench["queries"], 40);

  r = Nestor({"delete", "vecs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Nestor({"stats", "vecs"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, Int8CodesWithFullReorderBenchAtRecallOne) {
  const std::string base = WriteFvecs("base.fvecs", 500, 8, 5);
  const std::string queries = WriteFvecs("queries.fvecs", 40, 8, 6);
  RunResult r = Nestor({"create", "q8", "--dimension", "8", "--num_partitions", "8",
                        "--code_type", "int8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("code_type=int8"));
  r = Nestor({"load", "q8", base});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Nestor({"build", "q8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Nestor({"stats", "q8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("code_type=int8"));
  EXPECT_THAT(r.out, HasSubstr("simd_path="));
  EXPECT_THAT(r.out, HasSubstr("bytes_per_vector="));
  EXPECT_THAT(r.out, HasSubstr("build_seconds="));
  r = Nestor({"stats", "q8", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json stats = nlohmann::json::parse(r.out);
  EXPECT_EQ(stats["code_type"], "int8");
  EXPECT_THAT(stats["simd_path"].get<std::string>(),
              ::testing::AnyOf("avx512", "avx2", "portable"));
  EXPECT_DOUBLE_EQ(stats["bytes_per_vector"].get<double>(),
                   stats["memory_bytes"].get<double>() / 500);
  EXPECT_GE(stats["build_seconds"].get<double>(), 0.0);

  // Every partition scanned and every vector re-scored: exact, in batches and one by one.
  for (const char* batch : {"1", "8"}) {
    r = Nestor({"bench", "q8", "--queries", queries, "--base", base, "--partitions_to_search",
                "8", "--reorder_k", "500", "--batch", batch, "--runs", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("code_type=int8"));
    EXPECT_THAT(r.out, HasSubstr("reorder_k=500"));
    EXPECT_THAT(r.out, HasSubstr("(median of 2 runs)"));
    EXPECT_THAT(LastLine(r.out), StartsWith("recall@10=1.0000 qps=")) << "batch " << batch;
  }
  r = Nestor({"search", "q8", "--queries", base, "--row", "7", "-k", "1",
              "--partitions_to_search", "8", "--reorder_k", "500", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["neighbors"][0]["id"], 7);

  r = Nestor({"search", "q8", "--vector", "0,0,0,0,0,0,0,0", "--reorder_k", "-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.err, HasSubstr("reorder_k"));

  // load --create takes the same flags; the reorder default is kept in the config.
  r = Nestor({"load", "q8b", base, "--create", "--num_partitions", "4", "--code_type", "int8",
              "--reorder_k", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Nestor({"stats", "q8b", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  stats = nlohmann::json::parse(r.out);
  EXPECT_EQ(stats["code_type"], "int8");
  EXPECT_EQ(stats["default_reorder_k"], 50);

  r = Nestor({"create", "bad", "--dimension", "8", "--code_type", "int4"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1);  // a usage error from the flag parser
}

TEST_F(CliTest, LoadWithCreateMakesAnExactIndexWithRecallOne) {
  const std::string base = WriteFvecs("base.fvecs", 300, 6, 3);
  RunResult r = Nestor({"load", "flat", base, "--create", "--metric", "cosine"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created flat"));
  r = Nestor({"bench", "flat", "--queries", base, "--limit", "25", "--base", base});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LastLine(r.out), StartsWith("recall@10=1.0000 qps="));
  // A row is its own nearest neighbour at cosine similarity 1, printed under that name.
  r = Nestor({"search", "flat", "--queries", base, "--row", "7", "-k", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("rank\tid\tcosine_similarity\n1\t7\t1\n"));
}

// Settings the server refuses fail on a first request, before the exact ground truth is
// computed; a negative --limit is refused; a --metric unlike the index's gets a warning.
TEST_F(CliTest, BenchRefusesBadSettingsBeforeComputingGroundTruth) {
  const std::string base = WriteFvecs("base.fvecs", 200, 8, 5);
  const std::string queries = WriteFvecs("queries.fvecs", 20, 8, 6);
  ASSERT_EQ(Nestor({"load", "early", base, "--create"}).exit_code, 0);

  // The server's max_neighbor_count is 1000 by default.
  RunResult r = Nestor({"bench", "early", "--queries", queries, "--base", base, "-k", "2000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(r.err, HasSubstr("got 2000"));
  EXPECT_THAT(r.err, HasSubstr("(a server limit: lower -k, or start nestor-server with a "
                               "larger --max_neighbor_count)"));
  EXPECT_THAT(r.out, Not(HasSubstr("exact ground truth")));

  r = Nestor({"bench", "early", "--queries", queries, "--base", base, "--limit", "-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --limit must be >= 0 (0 = all queries), got -1"));
  r = Nestor({"load", "early", base, "--limit", "-3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --limit must be >= 0 (0 = all rows), got -3"));

  // An L2 index benchmarked against inner-product neighbours: it runs, with a warning.
  r = Nestor({"bench", "early", "--queries", queries, "--base", base, "--metric", "ip"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: --metric ip differs from index 'early''s metric"));
  r = Nestor({"bench", "early", "--queries", queries, "--base", base, "--metric", "l2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("warning")));
  EXPECT_THAT(LastLine(r.out), StartsWith("recall@10=1.0000 qps="));
}

// Flag values that used to crash, wrap ids around or score against the wrong ground
// truth are refused or warned about.
TEST_F(CliTest, BenchAndLoadRefuseValuesThatWouldMisleadOrCrash) {
  const std::string base = WriteFvecs("base.fvecs", 60, 4, 7);
  const std::string queries = WriteFvecs("queries.fvecs", 10, 4, 8);
  ASSERT_EQ(Nestor({"load", "small", base, "--create"}).exit_code, 0);

  // More client threads than requests: one per request; absurd counts are refused
  // (100,000 threads used to abort the client with std::system_error).
  RunResult r = Nestor({"bench", "small", "--queries", queries, "--base", base,
                        "--concurrency", "100000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --concurrency must be in 1..1024"));
  r = Nestor({"bench", "small", "--queries", queries, "--base", base, "--concurrency", "50",
              "--batch", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("concurrency=5: 5 requests"));  // 10 queries in pairs
  EXPECT_THAT(LastLine(r.out), StartsWith("recall@10=1.0000 qps="));

  // Ground truth must be .ivecs, not whatever file was at hand.
  r = Nestor({"bench", "small", "--queries", queries, "--ground_truth", base});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --ground_truth " + base +
                               ": expected an .ivecs file"));
  // --base_limit means nothing without --base.
  r = Nestor({"bench", "small", "--queries", queries, "--server_ground_truth", "--base_limit",
              "5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--base_limit limits the rows read from --base"));
  r = Nestor({"bench", "small", "--queries", queries, "--server_ground_truth", "--id_offset",
              "5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--id_offset maps --base rows to ids"));
  // Ground truth over fewer rows than the index holds: it runs, with a warning.
  r = Nestor({"bench", "small", "--queries", queries, "--base", base, "--base_limit", "30"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: --base has 30 rows but index 'small' holds 60 vectors"));

  // Ids may not wrap around past 2^64 - 1, nor be negative.
  r = Nestor({"load", "small", base, "--id_offset", "18446744073709551600"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --id_offset 18446744073709551600 + 60 rows "
                               "passes the largest id"));
  r = Nestor({"load", "small", base, "--id_offset", "-5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--id_offset: must be >= 0, got -5"));
  EXPECT_THAT(r.err, Not(HasSubstr("1797693")));  // not the whole double range
  r = Nestor({"bench", "small", "--queries", queries, "--base", base, "--id_offset", "-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--id_offset: must be >= 0, got -1"));
  r = Nestor({"stats", "small"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("vectors=60 "));  // nothing was written by the refusals
}

// load --create whose load fails leaves no half-loaded index behind.
TEST_F(CliTest, FailedLoadWithCreateDeletesTheIndexItCreated) {
  std::vector<std::vector<float>> rows(30, std::vector<float>(4, 1.0f));
  for (int r = 0; r < 30; ++r) rows[r][0] = static_cast<float>(r);
  rows[25][2] = std::numeric_limits<float>::quiet_NaN();  // in the third message of 10
  const std::string path = (dir_ / "nan.fvecs").string();
  testing::WriteBytes(path, testing::VecsBytes<float>(rows));
  RunResult r = Nestor({"load", "half", path, "--create", "--batch", "10"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.err, HasSubstr("not finite"));
  EXPECT_THAT(r.err, HasSubstr("index 'half', created by this command, was deleted again"));
  r = Nestor({"stats", "half"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  // Without --create the index is the user's: the messages before the bad one stay.
  ASSERT_EQ(Nestor({"create", "mine", "--dimension", "4"}).exit_code, 0);
  r = Nestor({"load", "mine", path, "--batch", "10"});
  EXPECT_EQ(r.exit_code, 1);
  r = Nestor({"stats", "mine"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("vectors=20 "));
}

TEST_F(CliTest, LoadingAFileOfTheWrongDimensionFailsWithInvalidArgument) {
  const std::string wrong = WriteFvecs("wrong.fvecs", 20, 5, 4);
  RunResult r = Nestor({"create", "vecs", "--dimension", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Nestor({"load", "vecs", wrong});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  // A rejected request changes nothing.
  r = Nestor({"stats", "vecs", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["vector_count"], 0);
  // Benchmarking the empty index is refused, not scored at recall 0.
  const std::string queries = WriteFvecs("queries8.fvecs", 5, 8, 6);
  r = Nestor({"bench", "vecs", "--queries", queries, "--server_ground_truth"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION: index 'vecs' holds 0 vectors; load some "
                               "first"));
  // A partitioned index loaded but not built: the server's refusal, plus the command to run.
  ASSERT_EQ(Nestor({"create", "unbuilt", "--dimension", "8", "--num_partitions", "2"}).exit_code,
            0);
  ASSERT_EQ(Nestor({"load", "unbuilt", queries}).exit_code, 0);
  r = Nestor({"search", "unbuilt", "--queries", queries, "--exact"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION: index holds 5 vectors but is not built"));
  EXPECT_THAT(r.err, HasSubstr("(run `nestor build NAME` first)"));
}

// With pca_rotation, prefix_dim d means the first d principal components; the client
// cannot compute exact neighbours of rotated prefixes from --base, so it refuses rather
// than report a meaningless recall and points to --server_ground_truth, which can.
// Full-dimension bench (rotation-invariant) still works.
TEST_F(CliTest, BenchRefusesRawGroundTruthForRotatedPrefixes) {
  const std::string base = WriteFvecs("rot_base.fvecs", 500, 8, 3);
  const std::string queries = WriteFvecs("rot_queries.fvecs", 20, 8, 4);
  RunResult r = Nestor({"create", "rot", "--dimension", "8", "--num_partitions", "4",
                        "--matryoshka_dims", "4,8", "--pca_rotation"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Nestor({"load", "rot", base}).exit_code, 0);
  ASSERT_EQ(Nestor({"build", "rot"}).exit_code, 0);
  r = Nestor({"stats", "rot"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("matryoshka_dims=4,8"));
  EXPECT_THAT(r.out, HasSubstr("pca_rotation=true"));

  r = Nestor({"bench", "rot", "--queries", queries, "--base", base, "--prefix_dim", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION: index 'rot' has pca_rotation"));

  EXPECT_THAT(r.err, HasSubstr("Use --server_ground_truth"));

  r = Nestor({"bench", "rot", "--queries", queries, "--base", base, "--partitions_to_search",
              "4", "--reorder_k", "500"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LastLine(r.out), HasSubstr("recall@10=1.0000"));

  // --server_ground_truth: exact searches over the rotated vectors. Every partition with
  // every candidate re-scored is exact at the rotated prefix too (recall 1); one partition
  // with the smallest reorder_k is not.
  r = Nestor({"bench", "rot", "--queries", queries, "--server_ground_truth", "--prefix_dim",
              "4", "--partitions_to_search", "4", "--reorder_k", "500"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("from exact searches on the server"));
  EXPECT_THAT(LastLine(r.out), HasSubstr("recall@10=1.0000"));
  r = Nestor({"bench", "rot", "--queries", queries, "--server_ground_truth", "--prefix_dim",
              "4", "--partitions_to_search", "1", "--reorder_k", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LastLine(r.out), Not(HasSubstr("recall@10=1.0000")));

  // search --exact answers what the exhaustive settings answer.
  r = Nestor({"search", "rot", "--queries", queries, "--row", "3", "--prefix_dim", "4",
              "--exact", "--partitions_to_search", "1", "--reorder_k", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  RunResult full = Nestor({"search", "rot", "--queries", queries, "--row", "3", "--prefix_dim",
                           "4", "--partitions_to_search", "4", "--reorder_k", "500"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  // The ids column (distances may differ in the last printed digit: BLAS against the
  // scan's kernel).
  auto ids = [](const std::string& out) {
    std::vector<std::string> column;
    for (const absl::string_view line : absl::StrSplit(out, '\n')) {
      const std::vector<std::string> cells = absl::StrSplit(line, '\t');
      if (cells.size() == 3 && cells[0] != "rank") column.push_back(cells[1]);
    }
    return column;
  };
  EXPECT_THAT(ids(r.out), SizeIs(10));
  EXPECT_EQ(ids(r.out), ids(full.out));

  // One source of ground truth, and --metric only with --base.
  r = Nestor({"bench", "rot", "--queries", queries, "--server_ground_truth", "--base", base});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: bench needs exactly one of"));
  r = Nestor({"bench", "rot", "--queries", queries, "--server_ground_truth", "--metric", "ip"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--server_ground_truth uses the index's own metric"));
}

// A tune result applied to the live index (no restart), and datapoints removed by id.
TEST_F(CliTest, ApplyTuningAndRemoveOnALiveIndex) {
  const std::string base = WriteFvecs("base.fvecs", 200, 8, 9);
  ASSERT_EQ(Nestor({"create", "live", "--dimension", "8", "--num_partitions", "8",
                    "--code_type", "int8"}).exit_code, 0);
  ASSERT_EQ(Nestor({"load", "live", base}).exit_code, 0);
  ASSERT_EQ(Nestor({"build", "live"}).exit_code, 0);
  const std::string tuning = (dir_ / "live.textproto").string();
  testing::WriteBytes(tuning,
                      "dimension: 8 metric: METRIC_L2 code_type: CODE_TYPE_INT8 "
                      "num_partitions: 8\nchosen { partitions_to_search: 3 reorder_k: 20 }\n");
  RunResult r = Nestor({"apply-tuning", "live", tuning});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("'live' query defaults: partitions_to_search=3 reorder_k=20 "
                               "(tuned) (were partitions_to_search=1 reorder_k=4k)"));
  r = Nestor({"stats", "live"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=20 (tuned)"));
  // A result for another shape is refused and changes nothing.
  const std::string other = (dir_ / "other.textproto").string();
  testing::WriteBytes(other,
                      "dimension: 16 metric: METRIC_L2 code_type: CODE_TYPE_INT8 "
                      "num_partitions: 8\nchosen { partitions_to_search: 5 }\n");
  r = Nestor({"apply-tuning", "live", other});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: tuning result is for dimension 16"));
  r = Nestor({"apply-tuning", "live", (dir_ / "missing.textproto").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(Nestor({"stats", "live"}).out, HasSubstr("partitions_to_search=3 reorder_k=20 (tuned)"));

  // Remove: ids the index does not hold are skipped.
  r = Nestor({"remove", "live", "--ids", "0, 1,999"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("removed 2 of 3 ids from 'live'"));
  EXPECT_THAT(r.out, HasSubstr("it holds 198 vectors"));
  r = Nestor({"search", "live", "--queries", base, "--row", "0", "-k", "200", "--exact"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("198 neighbours"));
  EXPECT_THAT(r.out, Not(::testing::ContainsRegex("\n[0-9]+\t[01]\t")));  // ids 0 and 1
  r = Nestor({"remove", "live", "--ids", "3,x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --ids: 'x' is not a datapoint id"));
}

TEST_F(CliTest, StatsAndBenchShowATunedFunnelThatSurvivesSigterm) {
  const std::string base = WriteFvecs("base.fvecs", 500, 8, 5);
  const std::string queries = WriteFvecs("queries.fvecs", 20, 8, 6);
  RunResult r = Nestor({"create", "mrl", "--dimension", "8", "--num_partitions", "8",
                        "--code_type", "int8", "--matryoshka_dims", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Nestor({"load", "mrl", base}).exit_code, 0);
  ASSERT_EQ(Nestor({"build", "mrl"}).exit_code, 0);
  const std::string tuning = (dir_ / "funnel.textproto").string();
  testing::WriteBytes(tuning,
                      "dimension: 8 metric: METRIC_L2 code_type: CODE_TYPE_INT8 "
                      "num_partitions: 8\n"
                      "chosen { partitions_to_search: 3 shortlist_dim: 4 shortlist_size: 30 }\n");
  StopServer();
  StartServer({"--tuning_file", "mrl=" + tuning});
  // The server's log says what the tuning file set.
  EXPECT_THAT(ReadFile((dir_ / "server.err").string()),
              HasSubstr("nestor-server: index mrl tuned from " + tuning +
                        ": partitions_to_search=3 reorder_k=0 shortlist_dim=4 "
                        "shortlist_size=30"));
  for (int restart = 0; restart < 2; ++restart) {
    r = Nestor({"stats", "mrl"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=4k shortlist_dim=4 "
                                 "shortlist_size=30 (tuned)"))
        << "restart " << restart;
    r = Nestor({"stats", "mrl", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json stats = nlohmann::json::parse(r.out);
    EXPECT_EQ(stats["tuned_partitions_to_search"], 3);
    EXPECT_EQ(stats["tuned_reorder_k"], 0);
    EXPECT_EQ(stats["tuned_shortlist_dim"], 4);
    EXPECT_EQ(stats["tuned_shortlist_size"], 30);
    // bench names the settings its queries get: the tuned funnel, or none when opted out.
    r = Nestor({"bench", "mrl", "--queries", queries, "--base", base});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=40 shortlist_dim=4 "
                                 "shortlist_size=30\n"));
    r = Nestor({"bench", "mrl", "--queries", queries, "--base", base, "--shortlist_dim", "8"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=40\n"));
    // SIGTERM saves the tuned funnel with the index; a start without --tuning_file
    // restores it.
    StopServer();
    StartServer();
  }
}

// --max_codes on search and bench; a tuned max_codes in apply-tuning, stats and bench, where
// it goes with the tuned partitions_to_search only.
TEST_F(CliTest, MaxCodesFlagAndTunedMaxCodes) {
  const std::string base = WriteFvecs("base.fvecs", 200, 8, 9);
  const std::string queries = WriteFvecs("queries.fvecs", 20, 8, 10);
  ASSERT_EQ(Nestor({"create", "live", "--dimension", "8", "--num_partitions", "8",
                    "--code_type", "int8"}).exit_code, 0);
  ASSERT_EQ(Nestor({"load", "live", base}).exit_code, 0);
  ASSERT_EQ(Nestor({"build", "live"}).exit_code, 0);
  // Row 5 lies in its nearest partition, the one partition max_codes 1 opens.
  RunResult r = Nestor({"search", "live", "--queries", base, "--row", "5", "-k", "1",
                        "--partitions_to_search", "8", "--max_codes", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["neighbors"][0]["id"], 5);
  r = Nestor({"search", "live", "--vector", "0,0,0,0,0,0,0,0", "--max_codes", "-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: query 0: max_codes must be >= 0"));
  r = Nestor({"search", "live", "--vector", "0,0,0,0,0,0,0,0", "--max_codes", "many"});
  EXPECT_EQ(r.exit_code, 2);  // a usage error from the flag parser
  const std::string bench_json = (dir_ / "bench.json").string();
  r = Nestor({"bench", "live", "--queries", queries, "--base", base, "--partitions_to_search",
              "4", "--max_codes", "30", "--json", bench_json});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions_to_search=4 reorder_k=40 max_codes=30\n"));
  EXPECT_EQ(nlohmann::json::parse(ReadFile(bench_json))["max_codes"], 30);

  const std::string tuning = (dir_ / "live.textproto").string();
  testing::WriteBytes(tuning,
                      "dimension: 8 metric: METRIC_L2 code_type: CODE_TYPE_INT8 "
                      "num_partitions: 8\n"
                      "chosen { partitions_to_search: 3 reorder_k: 20 max_codes: 50 }\n");
  r = Nestor({"apply-tuning", "live", tuning});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("'live' query defaults: partitions_to_search=3 reorder_k=20 "
                               "max_codes=50 (tuned) (were partitions_to_search=1 "
                               "reorder_k=4k)"));
  r = Nestor({"stats", "live"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=20 max_codes=50 (tuned)"));
  r = Nestor({"stats", "live", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["tuned_max_codes"], 50);
  // bench names the max_codes its queries get: the tuned one with the tuned partitions,
  // none with their own partitions_to_search, their own when given.
  r = Nestor({"bench", "live", "--queries", queries, "--base", base});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=20 max_codes=50\n"));
  r = Nestor({"bench", "live", "--queries", queries, "--base", base, "--partitions_to_search",
              "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=20\n"));
  r = Nestor({"bench", "live", "--queries", queries, "--base", base, "--max_codes", "70"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("partitions_to_search=3 reorder_k=20 max_codes=70\n"));

  // An exact index checks --max_codes and ignores it, as --reorder_k.
  ASSERT_EQ(Nestor({"load", "flat", base, "--create"}).exit_code, 0);
  r = Nestor({"search", "flat", "--queries", base, "--row", "7", "-k", "1", "--max_codes", "1",
              "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["neighbors"][0]["id"], 7);
  r = Nestor({"search", "flat", "--vector", "0,0,0,0,0,0,0,0", "--max_codes", "-5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: query 0: max_codes must be >= 0"));
}

// A peer that accepts TCP connections (the kernel completes them from the backlog) but
// never speaks HTTP/2: every RPC to it runs into its deadline.
TEST_F(CliTest, DeadlineExceededNamesTheTimeoutFlag) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string silent = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  RunResult r = Nestor({"--server", silent, "--timeout_ms", "300", "stats"},
                       /*with_server_flag=*/false);
  close(listener);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_THAT(r.err, HasSubstr("(each RPC gets --timeout_ms 300 ms; raise it, or 0 for no "
                               "deadline)"));
}

// `nestor tune` runs nestor-tune under the name the user typed, so its help reads as a
// subcommand's.
// Usage errors exit 2 whatever CLI11's own code (109 for an unknown flag); --help exits 0.
TEST_F(CliTest, UsageErrorsExitTwo) {
  RunResult r = Nestor({"search", "x", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--bogus"));
  r = Nestor({"create"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(Nestor({"search", "--help"}).exit_code, 0);
}

TEST_F(CliTest, TuneHelpNamesTheSubcommand) {
  RunResult r = Nestor({"tune", "--help"}, /*with_server_flag=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Usage: nestor tune [OPTIONS]"));
  EXPECT_THAT(r.out, HasSubstr("--target_recall"));
}

TEST_F(CliTest, ErrorsNameTheirCodeAndExitNonZero) {
  RunResult r = Nestor({"search", "missing", "--vector", "1,2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  r = Nestor({"create", "dup", "--dimension", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Nestor({"create", "dup", "--dimension", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("ALREADY_EXISTS"));

  r = Nestor({"load", "dup", (dir_ / "no-such-file.fvecs").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  // Partitioned-only flags on an exact index are named as typed, and nothing is created.
  r = Nestor({"create", "flat", "--dimension", "4", "--partitions_to_search", "3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --partitions_to_search applies to "
                               "partitioned indexes only (--num_partitions > 0); the exact "
                               "index (--num_partitions 0) got --partitions_to_search 3, "
                               "expected 0"));
  r = Nestor({"create", "flat", "--dimension", "4", "--reorder_k", "40"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("got --reorder_k 40, expected 0"));
  for (const auto& [flags, said] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--code_type", "int8"}, "got --code_type int8, expected float or unset"},
           {{"--routing_dim", "2"}, "got --routing_dim 2, expected 0 or unset"},
           {{"--matryoshka_dims", "2,3"}, "got --matryoshka_dims 2,3, expected unset"},
           {{"--pca_rotation"}, "got --pca_rotation, expected unset"}}) {
    std::vector<std::string> args = {"create", "flat", "--dimension", "4"};
    args.insert(args.end(), flags.begin(), flags.end());
    r = Nestor(args);
    EXPECT_EQ(r.exit_code, 1) << flags[0];
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("INVALID_ARGUMENT: ", flags[0],
                                              " applies to partitioned indexes only")));
    EXPECT_THAT(r.err, HasSubstr(said));
  }
  EXPECT_EQ(Nestor({"stats", "flat"}).exit_code, 1);
  // An exact index takes --code_type float (its only kind of scan).
  r = Nestor({"create", "flat", "--dimension", "4", "--code_type", "float"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = Nestor({"search", "dup", "--vector", "1,2,x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  // An empty field is refused, not skipped (which shifted the coordinates after it).
  r = Nestor({"search", "dup", "--vector", "1,2,1e40,3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--vector: value 3 '1e40' is out of the float range"));
  r = Nestor({"search", "dup", "--vector", "1,,2,3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --vector: value 2 of 4 is empty"));
  // Spaces around commas, or spaces alone, separate values too.
  EXPECT_EQ(Nestor({"search", "dup", "--vector", "1, 2, 3, 4"}).exit_code, 0);
  EXPECT_EQ(Nestor({"search", "dup", "--vector", "1 2 3 4"}).exit_code, 0);

  r = Nestor({"--server", "127.0.0.1:1", "stats"}, /*with_server_flag=*/false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  // The global flags may also follow the subcommand.
  r = Nestor({"stats", "--server", "127.0.0.1:1"}, /*with_server_flag=*/false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr("is nestor-server running at 127.0.0.1:1?"));
  r = Nestor({"stats", "dup", "--json"}, /*with_server_flag=*/false,
             {"NESTOR_SERVER=" + server_});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Nestor({"create", "x", "--dimension", "4", "--metric", "hamming"});
  EXPECT_NE(r.exit_code, 0);

  r = Nestor({"search", "dup", "--vector", "1,2,3,4", "-k", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: -k must be >= 1, got 0"));

  // An unwritable --json fails before any benchmarking, naming the path.
  const std::string json = (dir_ / "no-such-dir" / "out.json").string();
  r = Nestor({"bench", "dup", "--queries", (dir_ / "no-such-file.fvecs").string(), "--base",
              (dir_ / "no-such-file.fvecs").string(), "--json", json});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: --json " + json));
}

}  // namespace
}  // namespace nestor::client

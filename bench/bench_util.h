// Small helpers shared by nestor-bench's modes (bench/nestor_bench.cc, tune_bench.cc,
// grpc_bench.cc).
#ifndef NESTOR_BENCH_BENCH_UTIL_H_
#define NESTOR_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"

namespace nestor::bench {

using Clock = std::chrono::steady_clock;

// Wall seconds from `start` to now.
inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Writes `value` to `path` as indented JSON; false (with a message on stderr) when the
// file cannot be written.
inline bool WriteJsonFile(const std::string& path, const nlohmann::json& value) {
  std::ofstream file(path);
  file << value.dump(2) << "\n";
  if (!file) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

// The Fashion-MNIST options every mode takes: --queries (the first N of the 10,000 test
// queries, 1..10000; `help` says what they are used for) and --data_dir (the idx.gz
// folder).
inline void AddFashionMnistOptions(CLI::App& app, const std::string& help,
                                   int64_t* num_queries, std::string* data_dir) {
  app.add_option("--queries", *num_queries, help)
      ->check(CLI::Range(int64_t{1}, int64_t{10000}))
      ->capture_default_str();
  app.add_option("--data_dir", *data_dir, "folder with the Fashion-MNIST idx.gz files")
      ->capture_default_str();
}

}  // namespace nestor::bench

#endif  // NESTOR_BENCH_BENCH_UTIL_H_

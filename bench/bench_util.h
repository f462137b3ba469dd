// Small helpers shared by nestor-bench's modes (bench/nestor_bench.cc, tune_bench.cc,
// grpc_bench.cc).
#ifndef NESTOR_BENCH_BENCH_UTIL_H_
#define NESTOR_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

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

}  // namespace nestor::bench

#endif  // NESTOR_BENCH_BENCH_UTIL_H_

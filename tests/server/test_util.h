// Data shared by the server suites.
#ifndef NESTOR_TESTS_SERVER_TEST_UTIL_H_
#define NESTOR_TESTS_SERVER_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <vector>

namespace nestor::server {

// n × dim standard-normal floats, row-major, reproducible from `seed`.
inline std::vector<float> RandomVectors(int n, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(static_cast<size_t>(n) * dim);
  for (float& x : out) x = normal(rng);
  return out;
}

}  // namespace nestor::server

#endif  // NESTOR_TESTS_SERVER_TEST_UTIL_H_

#include "index/distance.h"

namespace nestor {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NESTOR_KERNEL_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NESTOR_KERNEL_CLONES
#endif

namespace {
// Independent partial sums: lets the compiler keep one vector register (or several) of
// accumulators without reassociating a single serial sum (no -ffast-math needed).
constexpr int kLanes = 16;
}  // namespace

NESTOR_KERNEL_CLONES
float Dot(const float* a, const float* b, int d) {
  float acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float tail = 0.0f;
  for (; i < d; ++i) tail += a[i] * b[i];
  float sum = 0.0f;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum + tail;
}

NESTOR_KERNEL_CLONES
float L2Sqr(const float* a, const float* b, int d) {
  float acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= d; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float diff = a[i + j] - b[i + j];
      acc[j] += diff * diff;
    }
  }
  float tail = 0.0f;
  for (; i < d; ++i) {
    const float diff = a[i] - b[i];
    tail += diff * diff;
  }
  float sum = 0.0f;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum + tail;
}

}  // namespace nestor

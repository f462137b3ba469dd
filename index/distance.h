// Scalar distance kernels used by the partition scans and by validation.
//
// Written as plain loops with independent accumulators so that the compiler vectorizes
// them; on x86-64 with GCC they are compiled for several instruction sets
// (x86-64-v4 / v3 / baseline) and the best one is picked at load time (ifunc), so no
// global -march is needed. Hand-written SIMD kernels may replace these later.
#ifndef NESTOR_INDEX_DISTANCE_H_
#define NESTOR_INDEX_DISTANCE_H_

#include <cstddef>

namespace nestor {

// Dot product of the first `d` coordinates of `a` and `b` (d >= 0).
float Dot(const float* a, const float* b, int d);

// Squared Euclidean distance of the first `d` coordinates of `a` and `b` (d >= 0).
float L2Sqr(const float* a, const float* b, int d);

// Squared norm of the first `d` coordinates of `a`: Dot(a, a, d).
inline float SquaredNorm(const float* a, int d) { return Dot(a, a, d); }

}  // namespace nestor

#endif  // NESTOR_INDEX_DISTANCE_H_

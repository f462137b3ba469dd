// Scalar distance kernels used by the partition scans and by validation.
//
// They call the float kernels of the active SIMD path (index/kernels/simd.h: AVX-512,
// AVX2 or portable C++, picked once at run time; NESTOR_SIMD forces a lower one), so no
// global -march is needed and every caller scores with the same arithmetic.
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

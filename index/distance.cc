#include "index/distance.h"

#include "index/kernels/simd.h"

namespace nestor {

// The kernels of the active SIMD path (index/kernels/simd.h), resolved once. The
// hand-written AVX-512 / AVX2 kernels keep two independent vector accumulators, which
// the compiler's auto-vectorized 16-lane loop (one register, one serial FMA chain) did
// not; NESTOR_SIMD=portable selects the plain-C++ loops.
float Dot(const float* a, const float* b, int d) {
  static const kernels::FloatKernelFn fn = kernels::DotFor(kernels::ActivePath());
  return fn(a, b, d);
}

float L2Sqr(const float* a, const float* b, int d) {
  static const kernels::FloatKernelFn fn = kernels::L2SqrFor(kernels::ActivePath());
  return fn(a, b, d);
}

}  // namespace nestor

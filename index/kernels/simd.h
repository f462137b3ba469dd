// SIMD kernels chosen once at run time: AVX-512 (F+BW), AVX2 (+FMA) or portable C++.
//
// Each path is compiled with a per-function `__attribute__((target(...)))`, never a
// global -march, so one binary runs on any x86-64 CPU (and the portable path on any CPU).
// The active path is picked on first use with __builtin_cpu_supports; the environment
// variable NESTOR_SIMD=portable|avx2|avx512 forces a lower path (a request above what the
// CPU supports is clamped down to the best supported one).
#ifndef NESTOR_INDEX_KERNELS_SIMD_H_
#define NESTOR_INDEX_KERNELS_SIMD_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nestor::kernels {

enum class SimdPath : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// "portable", "avx2", "avx512".
const char* SimdPathName(SimdPath path);
// The best path this CPU supports.
SimdPath BestSupportedPath();
// Paths this CPU supports, portable first.
std::vector<SimdPath> SupportedPaths();
// The path in use: BestSupportedPath() clamped by NESTOR_SIMD (read once).
SimdPath ActivePath();
inline const char* ActivePathName() { return SimdPathName(ActivePath()); }

// Integer dot product sum_j codes[j] * query[j] of `n` >= 0 entries: unsigned 8-bit
// codes times signed 16-bit query weights, accumulated in int32. The caller keeps
// n * 255 * max|query| below 2^31 (see MaxQueryWeight), so every path returns the same
// integer, bit for bit.
using DotU8I16Fn = int32_t (*)(const uint8_t* codes, const int16_t* query, int n);
// The kernel of `path` (must be supported by the CPU) or of the active path.
DotU8I16Fn DotU8I16For(SimdPath path);
int32_t DotU8I16(const uint8_t* codes, const int16_t* query, int n);

// Scores `count` code rows spaced `stride` bytes apart against one query of `n` weights:
// out[r] = DotU8I16(codes + r * stride, query, n). Requires n % 64 == 0 and 64-byte
// aligned rows for the wide paths' aligned loads to be fastest (not for correctness).
using DotU8I16BatchFn = void (*)(const uint8_t* codes, size_t stride, size_t count,
                                 const int16_t* query, int n, int32_t* out);
DotU8I16BatchFn DotU8I16BatchFor(SimdPath path);
void DotU8I16Batch(const uint8_t* codes, size_t stride, size_t count, const int16_t* query,
                   int n, int32_t* out);

// Scores `count` code rows spaced `stride` bytes apart against `num_queries` queries of
// `n` weights each (queries[i] points at query i's weights):
//   out[i * count + r] = DotU8I16(codes + r * stride, queries[i], n),
// bit for bit on every path. The wide paths load each code row once per block of queries
// (a small integer GEMM), so a partition's codes are read once for all the queries that
// probe it. Same alignment notes as DotU8I16Batch.
using DotU8I16MultiFn = void (*)(const uint8_t* codes, size_t stride, size_t count,
                                 const int16_t* const* queries, size_t num_queries, int n,
                                 int32_t* out);
DotU8I16MultiFn DotU8I16MultiFor(SimdPath path);
void DotU8I16Multi(const uint8_t* codes, size_t stride, size_t count,
                   const int16_t* const* queries, size_t num_queries, int n, int32_t* out);

// Largest |query weight| that keeps DotU8I16 of `n` entries inside int32.
inline int MaxQueryWeight(int n) {
  const int64_t bound = (int64_t{1} << 31) - 1;
  const int64_t w = bound / (int64_t{255} * (n > 0 ? n : 1));
  return static_cast<int>(w < 32767 ? w : 32767);
}

// Float kernels of `path` (the index/distance.h functions use the active path).
using FloatKernelFn = float (*)(const float* a, const float* b, int d);
FloatKernelFn DotFor(SimdPath path);
FloatKernelFn L2SqrFor(SimdPath path);

// Squared L2 distances from `q` to 4 (or 8) rows of `d` floats: out[r] =
// L2SqrFor(path)(q, rows[r], d), bit for bit (same accumulation order). The AVX-512 path
// interleaves the rows' loads so their cache misses overlap (the exact reorder's
// scattered rows); the others call L2SqrFor(path) row by row.
using L2SqrRowsFn = void (*)(const float* q, const float* const* rows, int d, float* out);
L2SqrRowsFn L2SqrRows4For(SimdPath path);
L2SqrRowsFn L2SqrRows8For(SimdPath path);
// The active path's L2SqrRows4For / L2SqrRows8For.
void L2SqrRows4(const float* q, const float* const* rows, int d, float* out);
void L2SqrRows8(const float* q, const float* const* rows, int d, float* out);

// Dot products of `num_queries` queries (rows of `queries`, `ldq` floats apart) with
// `count` rows (`ldr` floats apart) over the first `d` coordinates:
//   out[i * count + c] = DotFor(path)(queries + i * ldq, rows + c * ldr, d),
// bit for bit (same accumulation order), several queries x rows per pass so each load
// serves several products. Scores a batch's queries against all centroids.
using DotRowsFn = void (*)(const float* queries, size_t ldq, size_t num_queries,
                           const float* rows, size_t ldr, size_t count, int d, float* out);
DotRowsFn DotRowsFor(SimdPath path);
void DotRows(const float* queries, size_t ldq, size_t num_queries, const float* rows,
             size_t ldr, size_t count, int d, float* out);

// Dot products of `num_queries` queries (rows of `queries`, `ldq` floats apart) with
// `count` vectors stored as columns: row j of `columns` (`ldc` >= count floats apart)
// holds coordinate j of every vector, so
//   out[i * count + c] = sum_{j < d} queries[i * ldq + j] * columns[j * ldc + c],
// accumulated with one fused multiply-add per term in j order on every path and for any
// num_queries (the same bits everywhere). Scores queries against all centroids with
// vertical adds only, no horizontal sum per centroid (a GEMV/GEMM with the centroid matrix
// transposed).
using DotColumnsFn = void (*)(const float* queries, size_t ldq, size_t num_queries, int d,
                              const float* columns, size_t ldc, size_t count, float* out);
DotColumnsFn DotColumnsFor(SimdPath path);
void DotColumns(const float* queries, size_t ldq, size_t num_queries, int d,
                const float* columns, size_t ldc, size_t count, float* out);

}  // namespace nestor::kernels

#endif  // NESTOR_INDEX_KERNELS_SIMD_H_

#include "index/kernels/simd.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NESTOR_X86 1
// GCC 12's AVX-512 headers build casts and extracts from _mm256_undefined_*(), which
// -Wuninitialized reports inside every caller; the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#else
#define NESTOR_X86 0
#endif

namespace nestor::kernels {
namespace {

// ------------------------------------------------------------------------ portable
int32_t DotU8I16Portable(const uint8_t* codes, const int16_t* query, int n) {
  int32_t sum = 0;
  for (int j = 0; j < n; ++j) sum += static_cast<int32_t>(codes[j]) * query[j];
  return sum;
}

void DotU8I16BatchPortable(const uint8_t* codes, size_t stride, size_t count,
                           const int16_t* query, int n, int32_t* out) {
  for (size_t r = 0; r < count; ++r) out[r] = DotU8I16Portable(codes + r * stride, query, n);
}

void DotU8I16MultiPortable(const uint8_t* codes, size_t stride, size_t count,
                           const int16_t* const* queries, size_t num_queries, int n,
                           int32_t* out) {
  for (size_t i = 0; i < num_queries; ++i) {
    DotU8I16BatchPortable(codes, stride, count, queries[i], n, out + i * count);
  }
}

constexpr int kLanes = 16;

float DotPortable(const float* a, const float* b, int d) {
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

float L2SqrPortable(const float* a, const float* b, int d) {
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

// out[i * count + c] = sum_j queries[i * ldq + j] * columns[j * ldc + c], one fused
// multiply-add per term in j order.
void DotColumnsPortable(const float* queries, size_t ldq, size_t num_queries, int d,
                        const float* columns, size_t ldc, size_t count, float* out) {
  for (size_t i = 0; i < num_queries; ++i) {
    const float* q = queries + i * ldq;
    float* o = out + i * count;
    for (size_t c = 0; c < count; ++c) o[c] = 0.0f;
    for (int j = 0; j < d; ++j) {
      const float* row = columns + static_cast<size_t>(j) * ldc;
      for (size_t c = 0; c < count; ++c) o[c] = std::fma(q[j], row[c], o[c]);
    }
  }
}

#if NESTOR_X86
// -------------------------------------------------------------------------- AVX2
#define NESTOR_AVX2 __attribute__((target("avx2,fma")))

NESTOR_AVX2 inline int32_t HSum256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

NESTOR_AVX2 int32_t DotU8I16Avx2(const uint8_t* codes, const int16_t* query, int n) {
  __m256i acc0 = _mm256_setzero_si256();
  __m256i acc1 = _mm256_setzero_si256();
  int j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + j));
    const __m256i lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(c));
    const __m256i hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(c, 1));
    acc0 = _mm256_add_epi32(
        acc0, _mm256_madd_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + j))));
    acc1 = _mm256_add_epi32(
        acc1,
        _mm256_madd_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + j + 16))));
  }
  for (; j + 16 <= n; j += 16) {
    const __m256i lo =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + j)));
    acc0 = _mm256_add_epi32(
        acc0, _mm256_madd_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + j))));
  }
  int32_t sum = HSum256(_mm256_add_epi32(acc0, acc1));
  for (; j < n; ++j) sum += static_cast<int32_t>(codes[j]) * query[j];
  return sum;
}

// Rows ahead whose first n code bytes the batch kernels prefetch. A scan of a short
// prefix (the funnel's shortlist_dim bytes of each 832-byte row) strides across pages,
// where the hardware prefetchers stop, and stalls on DRAM once per few rows without it.
constexpr size_t kPrefetchRows = 8;

// Prefetches the first n bytes of the 4 code rows starting at `rows`.
inline void PrefetchCodeRows4(const uint8_t* rows, size_t stride, int n) {
  const char* base = reinterpret_cast<const char*>(rows);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < n; j += 64) _mm_prefetch(base + i * stride + j, _MM_HINT_T0);
  }
}

NESTOR_AVX2 void DotU8I16BatchAvx2(const uint8_t* codes, size_t stride, size_t count,
                                   const int16_t* query, int n, int32_t* out) {
  for (size_t r = 0; r < count; ++r) {
    if (r % 4 == 0 && r + kPrefetchRows + 4 <= count) {
      PrefetchCodeRows4(codes + (r + kPrefetchRows) * stride, stride, n);
    }
    out[r] = DotU8I16Avx2(codes + r * stride, query, n);
  }
}

// Two rows x two queries per pass: each code load (and its widening) serves two queries.
NESTOR_AVX2 void DotU8I16MultiAvx2(const uint8_t* codes, size_t stride, size_t count,
                                   const int16_t* const* queries, size_t num_queries, int n,
                                   int32_t* out) {
  size_t i = 0;
  if (n % 16 == 0) {
    for (; i + 2 <= num_queries; i += 2) {
      const int16_t* q0 = queries[i];
      const int16_t* q1 = queries[i + 1];
      int32_t* o0 = out + i * count;
      int32_t* o1 = o0 + count;
      size_t r = 0;
      for (; r + 2 <= count; r += 2) {
        const uint8_t* c0 = codes + r * stride;
        const uint8_t* c1 = c0 + stride;
        __m256i a00 = _mm256_setzero_si256(), a01 = _mm256_setzero_si256();
        __m256i a10 = _mm256_setzero_si256(), a11 = _mm256_setzero_si256();
        for (int j = 0; j < n; j += 16) {
          const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0 + j));
          const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1 + j));
          const __m256i x0 =
              _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c0 + j)));
          const __m256i x1 =
              _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c1 + j)));
          a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(x0, w0));
          a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(x1, w0));
          a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(x0, w1));
          a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(x1, w1));
        }
        o0[r] = HSum256(a00);
        o0[r + 1] = HSum256(a01);
        o1[r] = HSum256(a10);
        o1[r + 1] = HSum256(a11);
      }
      for (; r < count; ++r) {
        o0[r] = DotU8I16Avx2(codes + r * stride, q0, n);
        o1[r] = DotU8I16Avx2(codes + r * stride, q1, n);
      }
    }
  }
  for (; i < num_queries; ++i) {
    DotU8I16BatchAvx2(codes, stride, count, queries[i], n, out + i * count);
  }
}

NESTOR_AVX2 inline float HSum256f(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

NESTOR_AVX2 float DotAvx2(const float* a, const float* b, int d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float sum = HSum256f(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

NESTOR_AVX2 float L2SqrAvx2(const float* a, const float* b, int d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  float sum = HSum256f(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) {
    const float diff = a[i] - b[i];
    sum += diff * diff;
  }
  return sum;
}

// ------------------------------------------------------------------------ AVX-512
// DotColumns with AVX2, query by query: four vectors of 8 columns per pass, then 8 at a
// time, the last columns element-wise (the same fused multiply-adds in the same order as
// every path).
NESTOR_AVX2 void DotColumnsAvx2(const float* queries, size_t ldq, size_t num_queries, int d,
                                const float* columns, size_t ldc, size_t count, float* out) {
  for (size_t i = 0; i < num_queries; ++i) {
    const float* q = queries + i * ldq;
    float* o = out + i * count;
    size_t c = 0;
    for (; c + 32 <= count; c += 32) {
      __m256 acc[4];
      for (int t = 0; t < 4; ++t) acc[t] = _mm256_setzero_ps();
      for (int j = 0; j < d; ++j) {
        const __m256 qj = _mm256_set1_ps(q[j]);
        const float* row = columns + static_cast<size_t>(j) * ldc + c;
        for (int t = 0; t < 4; ++t) {
          acc[t] = _mm256_fmadd_ps(qj, _mm256_loadu_ps(row + 8 * t), acc[t]);
        }
      }
      for (int t = 0; t < 4; ++t) _mm256_storeu_ps(o + c + 8 * t, acc[t]);
    }
    for (; c + 8 <= count; c += 8) {
      __m256 acc = _mm256_setzero_ps();
      for (int j = 0; j < d; ++j) {
        acc = _mm256_fmadd_ps(_mm256_set1_ps(q[j]),
                              _mm256_loadu_ps(columns + static_cast<size_t>(j) * ldc + c), acc);
      }
      _mm256_storeu_ps(o + c, acc);
    }
    if (c < count) DotColumnsPortable(q, ldq, 1, d, columns + c, ldc, count - c, o + c);
  }
}

#define NESTOR_AVX512 __attribute__((target("avx512f,avx512bw")))

// Horizontal sums (GCC 12's _mm512_reduce_add_* warn about an undefined register).
NESTOR_AVX512 inline int32_t HSum512(__m512i v) {
  const __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_maskz_extracti64x4_epi64(0xFF, v, 1));
  return HSum256(s);
}
NESTOR_AVX512 inline float HSum512f(__m512 v) {
  const __m512 folded = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
  const __m256 s = _mm512_castps512_ps256(folded);
  return HSum256f(s);
}

NESTOR_AVX512 int32_t DotU8I16Avx512(const uint8_t* codes, const int16_t* query, int n) {
  __m512i acc0 = _mm512_setzero_si512();
  __m512i acc1 = _mm512_setzero_si512();
  int j = 0;
  for (; j + 64 <= n; j += 64) {
    const __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + j)));
    const __m512i c1 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + j + 32)));
    acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c0, _mm512_loadu_si512(query + j)));
    acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(c1, _mm512_loadu_si512(query + j + 32)));
  }
  for (; j < n; j += 32) {
    const int left = n - j;
    const __mmask32 m = left >= 32 ? ~__mmask32{0} : ((__mmask32{1} << left) - 1);
    const __m512i c = _mm512_cvtepu8_epi16(
        _mm512_castsi512_si256(_mm512_maskz_loadu_epi8(__mmask64{m}, codes + j)));
    const __m512i q = _mm512_maskz_loadu_epi16(m, query + j);
    acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c, q));
  }
  return HSum512(_mm512_add_epi32(acc0, acc1));
}

// Four rows per pass share each query load.
// Sums of four accumulators at once: returns {sum(a), sum(b), sum(c), sum(d)}.
NESTOR_AVX512 inline __m128i HSum512x4(__m512i a, __m512i b, __m512i c, __m512i d) {
  // Fold 512 -> 256 bits in each, then pair up with unpacks and add.
  const __m256i a2 = _mm256_add_epi32(_mm512_castsi512_si256(a),
                                      _mm512_maskz_extracti64x4_epi64(0xFF, a, 1));
  const __m256i b2 = _mm256_add_epi32(_mm512_castsi512_si256(b),
                                      _mm512_maskz_extracti64x4_epi64(0xFF, b, 1));
  const __m256i c2 = _mm256_add_epi32(_mm512_castsi512_si256(c),
                                      _mm512_maskz_extracti64x4_epi64(0xFF, c, 1));
  const __m256i d2 = _mm256_add_epi32(_mm512_castsi512_si256(d),
                                      _mm512_maskz_extracti64x4_epi64(0xFF, d, 1));
  // hadd twice: lanes hold partial sums of a, b, c, d per 128-bit half.
  const __m256i ab = _mm256_hadd_epi32(a2, b2);
  const __m256i cd = _mm256_hadd_epi32(c2, d2);
  const __m256i abcd = _mm256_hadd_epi32(ab, cd);
  return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

// The four-row single-query scan; ACC(acc, x, w) adds the pairwise int16 products of x
// and w to the int32 lanes of acc (madd + add, or VNNI's vpdpwssd: the same wrapping sums).
#define NESTOR_BATCH_BODY(ACC)                                                             \
  size_t r = 0;                                                                            \
  if (n % 32 == 0) {                                                                       \
    for (; r + 4 <= count; r += 4) {                                                       \
      if (r + kPrefetchRows + 4 <= count) {                                                \
        PrefetchCodeRows4(codes + (r + kPrefetchRows) * stride, stride, n);                \
      }                                                                                    \
      const uint8_t* c0 = codes + r * stride;                                              \
      const uint8_t* c1 = c0 + stride;                                                     \
      const uint8_t* c2 = c1 + stride;                                                     \
      const uint8_t* c3 = c2 + stride;                                                     \
      __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();                   \
      __m512i a2 = _mm512_setzero_si512(), a3 = _mm512_setzero_si512();                   \
      for (int j = 0; j < n; j += 32) {                                                    \
        const __m512i q = _mm512_loadu_si512(query + j);                                   \
        a0 = ACC(a0, _mm512_cvtepu8_epi16(_mm256_loadu_si256(                              \
                         reinterpret_cast<const __m256i*>(c0 + j))), q);                   \
        a1 = ACC(a1, _mm512_cvtepu8_epi16(_mm256_loadu_si256(                              \
                         reinterpret_cast<const __m256i*>(c1 + j))), q);                   \
        a2 = ACC(a2, _mm512_cvtepu8_epi16(_mm256_loadu_si256(                              \
                         reinterpret_cast<const __m256i*>(c2 + j))), q);                   \
        a3 = ACC(a3, _mm512_cvtepu8_epi16(_mm256_loadu_si256(                              \
                         reinterpret_cast<const __m256i*>(c3 + j))), q);                   \
      }                                                                                    \
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r), HSum512x4(a0, a1, a2, a3));    \
    }                                                                                      \
  }                                                                                        \
  for (; r < count; ++r) out[r] = DotU8I16Avx512(codes + r * stride, query, n);

#define NESTOR_BATCH_MADD_ADD(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
NESTOR_AVX512 void DotU8I16BatchAvx512(const uint8_t* codes, size_t stride, size_t count,
                                       const int16_t* query, int n, int32_t* out) {
  NESTOR_BATCH_BODY(NESTOR_BATCH_MADD_ADD)
}

// Four queries x four rows per pass (16 accumulators): each code row is loaded and
// widened once for four queries, each weight vector once for four rows. With AVX-512
// VNNI, vpdpwssd fuses the multiply-add and the accumulation (no saturation: the same
// wrapping int32 sums as madd + add).
template <bool kVnni>
NESTOR_AVX512 inline void MultiBlock4x4(const uint8_t* codes, size_t stride, size_t r,
                                        const int16_t* const* q, int n, int32_t* const* o);

#define NESTOR_MULTI_BODY(ACC)                                                               \
  const uint8_t* c0 = codes + r * stride;                                                    \
  const uint8_t* c1 = c0 + stride;                                                           \
  const uint8_t* c2 = c1 + stride;                                                           \
  const uint8_t* c3 = c2 + stride;                                                           \
  __m512i a[4][4];                                                                           \
  for (int x = 0; x < 4; ++x)                                                                \
    for (int y = 0; y < 4; ++y) a[x][y] = _mm512_setzero_si512();                            \
  for (int j = 0; j < n; j += 32) {                                                          \
    const __m512i x0 =                                                                       \
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0 + j)));  \
    const __m512i x1 =                                                                       \
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1 + j)));  \
    const __m512i x2 =                                                                       \
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c2 + j)));  \
    const __m512i x3 =                                                                       \
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c3 + j)));  \
    for (int y = 0; y < 4; ++y) {                                                            \
      const __m512i w = _mm512_loadu_si512(q[y] + j);                                        \
      a[y][0] = ACC(a[y][0], x0, w);                                                         \
      a[y][1] = ACC(a[y][1], x1, w);                                                         \
      a[y][2] = ACC(a[y][2], x2, w);                                                         \
      a[y][3] = ACC(a[y][3], x3, w);                                                         \
    }                                                                                        \
  }                                                                                          \
  for (int y = 0; y < 4; ++y) {                                                              \
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o[y] + r),                                   \
                     HSum512x4(a[y][0], a[y][1], a[y][2], a[y][3]));                         \
  }

#define NESTOR_MADD_ADD(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
template <>
NESTOR_AVX512 inline void MultiBlock4x4<false>(const uint8_t* codes, size_t stride, size_t r,
                                               const int16_t* const* q, int n,
                                               int32_t* const* o) {
  NESTOR_MULTI_BODY(NESTOR_MADD_ADD)
}

#define NESTOR_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define NESTOR_DPWSSD(acc, x, w) _mm512_dpwssd_epi32(acc, x, w)
NESTOR_AVX512VNNI void DotU8I16BatchAvx512Vnni(const uint8_t* codes, size_t stride,
                                               size_t count, const int16_t* query, int n,
                                               int32_t* out) {
  NESTOR_BATCH_BODY(NESTOR_DPWSSD)
}

template <>
NESTOR_AVX512VNNI inline void MultiBlock4x4<true>(const uint8_t* codes, size_t stride,
                                                   size_t r, const int16_t* const* q, int n,
                                                   int32_t* const* o) {
  NESTOR_MULTI_BODY(NESTOR_DPWSSD)
}

template <bool kVnni>
NESTOR_AVX512 void DotU8I16MultiAvx512Impl(const uint8_t* codes, size_t stride, size_t count,
                                           const int16_t* const* queries, size_t num_queries,
                                           int n, int32_t* out) {
  size_t i = 0;
  if (n % 32 == 0) {
    for (; i + 4 <= num_queries; i += 4) {
      int32_t* o[4] = {out + i * count, out + (i + 1) * count, out + (i + 2) * count,
                       out + (i + 3) * count};
      const int16_t* q[4] = {queries[i], queries[i + 1], queries[i + 2], queries[i + 3]};
      size_t r = 0;
      for (; r + 4 <= count; r += 4) {
        // The first group of queries brings the rows in; later groups find them cached.
        if (i == 0 && r + kPrefetchRows + 4 <= count) {
          PrefetchCodeRows4(codes + (r + kPrefetchRows) * stride, stride, n);
        }
        MultiBlock4x4<kVnni>(codes, stride, r, q, n, o);
      }
      for (; r < count; ++r) {
        for (int y = 0; y < 4; ++y) o[y][r] = DotU8I16Avx512(codes + r * stride, q[y], n);
      }
    }
  }
  for (; i < num_queries; ++i) {
    if constexpr (kVnni) {
      DotU8I16BatchAvx512Vnni(codes, stride, count, queries[i], n, out + i * count);
    } else {
      DotU8I16BatchAvx512(codes, stride, count, queries[i], n, out + i * count);
    }
  }
}

NESTOR_AVX512 void DotU8I16MultiAvx512(const uint8_t* codes, size_t stride, size_t count,
                                       const int16_t* const* queries, size_t num_queries, int n,
                                       int32_t* out) {
  DotU8I16MultiAvx512Impl<false>(codes, stride, count, queries, num_queries, n, out);
}
NESTOR_AVX512VNNI void DotU8I16MultiAvx512Vnni(const uint8_t* codes, size_t stride,
                                               size_t count, const int16_t* const* queries,
                                               size_t num_queries, int n, int32_t* out) {
  DotU8I16MultiAvx512Impl<true>(codes, stride, count, queries, num_queries, n, out);
}

NESTOR_AVX512 float DotAvx512(const float* a, const float* b, int d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  if (i < d) {
    const int left = d - i;
    const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, a + i), _mm512_maskz_loadu_ps(m0, b + i), acc0);
    if (left > 16) {
      const __mmask16 m1 = __mmask16((1u << (left - 16)) - 1);
      acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, a + i + 16),
                             _mm512_maskz_loadu_ps(m1, b + i + 16), acc1);
    }
  }
  return HSum512f(_mm512_add_ps(acc0, acc1));
}

NESTOR_AVX512 float L2SqrAvx512(const float* a, const float* b, int d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    acc1 = _mm512_fmadd_ps(d1, d1, acc1);
  }
  if (i < d) {
    const int left = d - i;
    const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __m512 d0 =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m0, a + i), _mm512_maskz_loadu_ps(m0, b + i));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    if (left > 16) {
      const __mmask16 m1 = __mmask16((1u << (left - 16)) - 1);
      const __m512 d1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m1, a + i + 16),
                                      _mm512_maskz_loadu_ps(m1, b + i + 16));
      acc1 = _mm512_fmadd_ps(d1, d1, acc1);
    }
  }
  return HSum512f(_mm512_add_ps(acc0, acc1));
}
// Two queries x four rows, two accumulators per product exactly as DotAvx512 (lanes
// [i, i+16) into acc0, [i+16, i+32) into acc1, the same masked tail, the same final sum).
NESTOR_AVX512 void DotRowsAvx512(const float* queries, size_t ldq, size_t num_queries,
                                 const float* rows, size_t ldr, size_t count, int d,
                                 float* out) {
  const int body = d / 32 * 32;
  const int left = d - body;
  const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  const __mmask16 m1 = left > 16 ? __mmask16((1u << (left - 16)) - 1) : __mmask16(0);
  size_t i = 0;
  for (; i + 2 <= num_queries; i += 2) {
    const float* q0 = queries + i * ldq;
    const float* q1 = q0 + ldq;
    size_t c = 0;
    for (; c + 4 <= count; c += 4) {
      const float* r[4] = {rows + c * ldr, rows + (c + 1) * ldr, rows + (c + 2) * ldr,
                           rows + (c + 3) * ldr};
      __m512 a0[2][4], a1[2][4];
      for (int x = 0; x < 2; ++x)
        for (int y = 0; y < 4; ++y) a0[x][y] = a1[x][y] = _mm512_setzero_ps();
      for (int j = 0; j < body; j += 32) {
        const __m512 q00 = _mm512_loadu_ps(q0 + j), q01 = _mm512_loadu_ps(q0 + j + 16);
        const __m512 q10 = _mm512_loadu_ps(q1 + j), q11 = _mm512_loadu_ps(q1 + j + 16);
        for (int y = 0; y < 4; ++y) {
          const __m512 x0 = _mm512_loadu_ps(r[y] + j), x1 = _mm512_loadu_ps(r[y] + j + 16);
          a0[0][y] = _mm512_fmadd_ps(q00, x0, a0[0][y]);
          a1[0][y] = _mm512_fmadd_ps(q01, x1, a1[0][y]);
          a0[1][y] = _mm512_fmadd_ps(q10, x0, a0[1][y]);
          a1[1][y] = _mm512_fmadd_ps(q11, x1, a1[1][y]);
        }
      }
      if (left > 0) {
        const __m512 q00 = _mm512_maskz_loadu_ps(m0, q0 + body);
        const __m512 q10 = _mm512_maskz_loadu_ps(m0, q1 + body);
        for (int y = 0; y < 4; ++y) {
          const __m512 x0 = _mm512_maskz_loadu_ps(m0, r[y] + body);
          a0[0][y] = _mm512_fmadd_ps(q00, x0, a0[0][y]);
          a0[1][y] = _mm512_fmadd_ps(q10, x0, a0[1][y]);
        }
        if (left > 16) {
          const __m512 q01 = _mm512_maskz_loadu_ps(m1, q0 + body + 16);
          const __m512 q11 = _mm512_maskz_loadu_ps(m1, q1 + body + 16);
          for (int y = 0; y < 4; ++y) {
            const __m512 x1 = _mm512_maskz_loadu_ps(m1, r[y] + body + 16);
            a1[0][y] = _mm512_fmadd_ps(q01, x1, a1[0][y]);
            a1[1][y] = _mm512_fmadd_ps(q11, x1, a1[1][y]);
          }
        }
      }
      for (int x = 0; x < 2; ++x) {
        for (int y = 0; y < 4; ++y) {
          out[(i + x) * count + c + y] = HSum512f(_mm512_add_ps(a0[x][y], a1[x][y]));
        }
      }
    }
    for (; c < count; ++c) {
      out[i * count + c] = DotAvx512(q0, rows + c * ldr, d);
      out[(i + 1) * count + c] = DotAvx512(q1, rows + c * ldr, d);
    }
  }
  // A last single query: four rows per pass (their loads overlap), each summed exactly
  // as DotAvx512 sums it.
  for (; i < num_queries; ++i) {
    const float* q0 = queries + i * ldq;
    size_t c = 0;
    for (; c + 4 <= count; c += 4) {
      const float* r[4] = {rows + c * ldr, rows + (c + 1) * ldr, rows + (c + 2) * ldr,
                           rows + (c + 3) * ldr};
      __m512 a0[4], a1[4];
      for (int y = 0; y < 4; ++y) a0[y] = a1[y] = _mm512_setzero_ps();
      for (int j = 0; j < body; j += 32) {
        const __m512 q00 = _mm512_loadu_ps(q0 + j), q01 = _mm512_loadu_ps(q0 + j + 16);
        for (int y = 0; y < 4; ++y) {
          a0[y] = _mm512_fmadd_ps(q00, _mm512_loadu_ps(r[y] + j), a0[y]);
          a1[y] = _mm512_fmadd_ps(q01, _mm512_loadu_ps(r[y] + j + 16), a1[y]);
        }
      }
      if (left > 0) {
        const __m512 q00 = _mm512_maskz_loadu_ps(m0, q0 + body);
        for (int y = 0; y < 4; ++y) {
          a0[y] = _mm512_fmadd_ps(q00, _mm512_maskz_loadu_ps(m0, r[y] + body), a0[y]);
        }
        if (left > 16) {
          const __m512 q01 = _mm512_maskz_loadu_ps(m1, q0 + body + 16);
          for (int y = 0; y < 4; ++y) {
            a1[y] = _mm512_fmadd_ps(q01, _mm512_maskz_loadu_ps(m1, r[y] + body + 16), a1[y]);
          }
        }
      }
      for (int y = 0; y < 4; ++y) out[i * count + c + y] = HSum512f(_mm512_add_ps(a0[y], a1[y]));
    }
    for (; c < count; ++c) out[i * count + c] = DotAvx512(q0, rows + c * ldr, d);
  }
}
// R rows at once, each exactly as L2SqrAvx512 sums it (lanes [i, i+16) into acc0,
// [i+16, i+32) into acc1, the same masked tail, the same final sum): the rows' loads are
// independent, so their cache misses overlap. 2R + 2 vector registers.
template <int R>
NESTOR_AVX512 void L2SqrRowsAvx512(const float* q, const float* const* rows, int d,
                                   float* out) {
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 q0 = _mm512_loadu_ps(q + i);
    const __m512 q1 = _mm512_loadu_ps(q + i + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 d0 = _mm512_sub_ps(q0, _mm512_loadu_ps(rows[r] + i));
      const __m512 d1 = _mm512_sub_ps(q1, _mm512_loadu_ps(rows[r] + i + 16));
      acc0[r] = _mm512_fmadd_ps(d0, d0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(d1, d1, acc1[r]);
    }
  }
  if (i < d) {
    const int left = d - i;
    const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __m512 q0 = _mm512_maskz_loadu_ps(m0, q + i);
    for (int r = 0; r < R; ++r) {
      const __m512 d0 = _mm512_sub_ps(q0, _mm512_maskz_loadu_ps(m0, rows[r] + i));
      acc0[r] = _mm512_fmadd_ps(d0, d0, acc0[r]);
    }
    if (left > 16) {
      const __mmask16 m1 = __mmask16((1u << (left - 16)) - 1);
      const __m512 q1 = _mm512_maskz_loadu_ps(m1, q + i + 16);
      for (int r = 0; r < R; ++r) {
        const __m512 d1 = _mm512_sub_ps(q1, _mm512_maskz_loadu_ps(m1, rows[r] + i + 16));
        acc1[r] = _mm512_fmadd_ps(d1, d1, acc1[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = HSum512f(_mm512_add_ps(acc0[r], acc1[r]));
}

// Q queries x T vectors of 16 columns, the last vector loaded and stored under `last`:
// each loaded column segment feeds Q fused multiply-adds, each broadcast query coordinate T.
template <int Q, int T>
NESTOR_AVX512 inline void DotColumnsBlock(const float* queries, size_t ldq, int d,
                                          const float* columns, size_t ldc, float* out,
                                          size_t ldo, __mmask16 last) {
  __m512 acc[Q][T];
  for (int x = 0; x < Q; ++x)
    for (int t = 0; t < T; ++t) acc[x][t] = _mm512_setzero_ps();
  for (int j = 0; j < d; ++j) {
    const float* row = columns + static_cast<size_t>(j) * ldc;
    __m512 v[T];
    for (int t = 0; t < T; ++t) {
      v[t] = t == T - 1 ? _mm512_maskz_loadu_ps(last, row + 16 * t) : _mm512_loadu_ps(row + 16 * t);
    }
    for (int x = 0; x < Q; ++x) {
      const __m512 qj = _mm512_set1_ps(queries[x * ldq + j]);
      for (int t = 0; t < T; ++t) acc[x][t] = _mm512_fmadd_ps(qj, v[t], acc[x][t]);
    }
  }
  for (int x = 0; x < Q; ++x) {
    for (int t = 0; t < T; ++t) {
      if (t == T - 1) {
        _mm512_mask_storeu_ps(out + x * ldo + 16 * t, last, acc[x][t]);
      } else {
        _mm512_storeu_ps(out + x * ldo + 16 * t, acc[x][t]);
      }
    }
  }
}

template <int Q, int T>
NESTOR_AVX512 void DotColumnsQueries(const float* queries, size_t ldq, int d,
                                     const float* columns, size_t ldc, size_t count,
                                     float* out) {
  size_t c = 0;
  for (; c + 16 * T <= count; c += 16 * T) {
    DotColumnsBlock<Q, T>(queries, ldq, d, columns + c, ldc, out + c, count, 0xFFFF);
  }
  for (; c < count; c += 16) {
    const size_t left = std::min<size_t>(16, count - c);
    const __mmask16 m = left == 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    DotColumnsBlock<Q, 1>(queries, ldq, d, columns + c, ldc, out + c, count, m);
  }
}

// DotColumns: four queries x 64 columns per pass (16 accumulators), a lone query 128
// columns per pass.
NESTOR_AVX512 void DotColumnsAvx512(const float* queries, size_t ldq, size_t num_queries,
                                    int d, const float* columns, size_t ldc, size_t count,
                                    float* out) {
  size_t i = 0;
  for (; i + 4 <= num_queries; i += 4) {
    DotColumnsQueries<4, 4>(queries + i * ldq, ldq, d, columns, ldc, count, out + i * count);
  }
  for (; i < num_queries; ++i) {
    DotColumnsQueries<1, 8>(queries + i * ldq, ldq, d, columns, ldc, count, out + i * count);
  }
}
#endif  // NESTOR_X86

template <FloatKernelFn kDot>
void DotRowsPairwise(const float* queries, size_t ldq, size_t num_queries, const float* rows,
                     size_t ldr, size_t count, int d, float* out) {
  for (size_t i = 0; i < num_queries; ++i) {
    for (size_t c = 0; c < count; ++c) out[i * count + c] = kDot(queries + i * ldq, rows + c * ldr, d);
  }
}

SimdPath DetectBest() {
#if NESTOR_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    return SimdPath::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdPath::kAvx2;
#endif
  return SimdPath::kPortable;
}

SimdPath DetectActive() {
  SimdPath best = BestSupportedPath();
  const char* env = std::getenv("NESTOR_SIMD");
  if (env == nullptr) return best;
  SimdPath wanted = best;
  if (std::strcmp(env, "portable") == 0) wanted = SimdPath::kPortable;
  if (std::strcmp(env, "avx2") == 0) wanted = SimdPath::kAvx2;
  if (std::strcmp(env, "avx512") == 0) wanted = SimdPath::kAvx512;
  return static_cast<int>(wanted) < static_cast<int>(best) ? wanted : best;
}

}  // namespace

const char* SimdPathName(SimdPath path) {
  switch (path) {
    case SimdPath::kPortable:
      return "portable";
    case SimdPath::kAvx2:
      return "avx2";
    case SimdPath::kAvx512:
      return "avx512";
  }
  return "unknown";
}

SimdPath BestSupportedPath() {
  static const SimdPath best = DetectBest();
  return best;
}

std::vector<SimdPath> SupportedPaths() {
  std::vector<SimdPath> paths;
  for (int p = 0; p <= static_cast<int>(BestSupportedPath()); ++p) {
    paths.push_back(static_cast<SimdPath>(p));
  }
  return paths;
}

SimdPath ActivePath() {
  static const SimdPath active = DetectActive();
  return active;
}

DotU8I16Fn DotU8I16For(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) return DotU8I16Avx512;
  if (path == SimdPath::kAvx2) return DotU8I16Avx2;
#endif
  (void)path;
  return DotU8I16Portable;
}

DotU8I16BatchFn DotU8I16BatchFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) {
    return __builtin_cpu_supports("avx512vnni") ? DotU8I16BatchAvx512Vnni
                                                : DotU8I16BatchAvx512;
  }
  if (path == SimdPath::kAvx2) return DotU8I16BatchAvx2;
#endif
  (void)path;
  return DotU8I16BatchPortable;
}

DotU8I16MultiFn DotU8I16MultiFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) {
    return __builtin_cpu_supports("avx512vnni") ? DotU8I16MultiAvx512Vnni
                                                : DotU8I16MultiAvx512;
  }
  if (path == SimdPath::kAvx2) return DotU8I16MultiAvx2;
#endif
  (void)path;
  return DotU8I16MultiPortable;
}

template <int R, FloatKernelFn kL2>
void L2SqrRowsOneByOne(const float* q, const float* const* rows, int d, float* out) {
  for (int r = 0; r < R; ++r) out[r] = kL2(q, rows[r], d);
}

template <int R>
L2SqrRowsFn L2SqrRowsFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) return L2SqrRowsAvx512<R>;
  if (path == SimdPath::kAvx2) return L2SqrRowsOneByOne<R, L2SqrAvx2>;
#endif
  (void)path;
  return L2SqrRowsOneByOne<R, L2SqrPortable>;
}

L2SqrRowsFn L2SqrRows4For(SimdPath path) { return L2SqrRowsFor<4>(path); }
L2SqrRowsFn L2SqrRows8For(SimdPath path) { return L2SqrRowsFor<8>(path); }

void L2SqrRows4(const float* q, const float* const* rows, int d, float* out) {
  static const L2SqrRowsFn fn = L2SqrRows4For(ActivePath());
  fn(q, rows, d, out);
}

void L2SqrRows8(const float* q, const float* const* rows, int d, float* out) {
  static const L2SqrRowsFn fn = L2SqrRows8For(ActivePath());
  fn(q, rows, d, out);
}

DotRowsFn DotRowsFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) return DotRowsAvx512;
  if (path == SimdPath::kAvx2) return DotRowsPairwise<DotAvx2>;
#endif
  (void)path;
  return DotRowsPairwise<DotPortable>;
}

void DotRows(const float* queries, size_t ldq, size_t num_queries, const float* rows,
             size_t ldr, size_t count, int d, float* out) {
  static const DotRowsFn fn = DotRowsFor(ActivePath());
  fn(queries, ldq, num_queries, rows, ldr, count, d, out);
}

DotColumnsFn DotColumnsFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) return DotColumnsAvx512;
  if (path == SimdPath::kAvx2) return DotColumnsAvx2;
#endif
  (void)path;
  return DotColumnsPortable;
}

void DotColumns(const float* queries, size_t ldq, size_t num_queries, int d,
                const float* columns, size_t ldc, size_t count, float* out) {
  static const DotColumnsFn fn = DotColumnsFor(ActivePath());
  fn(queries, ldq, num_queries, d, columns, ldc, count, out);
}

FloatKernelFn DotFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) return DotAvx512;
  if (path == SimdPath::kAvx2) return DotAvx2;
#endif
  (void)path;
  return DotPortable;
}

FloatKernelFn L2SqrFor(SimdPath path) {
#if NESTOR_X86
  if (path == SimdPath::kAvx512) return L2SqrAvx512;
  if (path == SimdPath::kAvx2) return L2SqrAvx2;
#endif
  (void)path;
  return L2SqrPortable;
}

int32_t DotU8I16(const uint8_t* codes, const int16_t* query, int n) {
  static const DotU8I16Fn fn = DotU8I16For(ActivePath());
  return fn(codes, query, n);
}

void DotU8I16Batch(const uint8_t* codes, size_t stride, size_t count, const int16_t* query,
                   int n, int32_t* out) {
  static const DotU8I16BatchFn fn = DotU8I16BatchFor(ActivePath());
  fn(codes, stride, count, query, n, out);
}

void DotU8I16Multi(const uint8_t* codes, size_t stride, size_t count,
                   const int16_t* const* queries, size_t num_queries, int n, int32_t* out) {
  static const DotU8I16MultiFn fn = DotU8I16MultiFor(ActivePath());
  fn(codes, stride, count, queries, num_queries, n, out);
}

}  // namespace nestor::kernels

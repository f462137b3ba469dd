// Every SIMD path the CPU supports against the portable path (index/kernels/simd.h).
#include "index/kernels/simd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nestor::kernels {
namespace {

constexpr int kLengths[] = {1, 7, 63, 64, 65, 784, 1000};

// Codes 0..255 and weights spanning the full range allowed for `n` (extremes included),
// so a path that overflowed or dropped a tail element would differ.
void RandomCodes(int n, uint64_t seed, std::vector<uint8_t>* codes,
                 std::vector<int16_t>* weights) {
  std::mt19937_64 rng(seed);
  const int w = MaxQueryWeight(n);
  std::uniform_int_distribution<int> code(0, 255), weight(-w, w);
  codes->resize(n);
  weights->resize(n);
  for (int j = 0; j < n; ++j) {
    (*codes)[j] = static_cast<uint8_t>(code(rng));
    (*weights)[j] = static_cast<int16_t>(weight(rng));
  }
  (*codes)[n - 1] = 255;  // the tail counts
  (*weights)[n - 1] = static_cast<int16_t>(-w);
}

TEST(SimdKernelsTest, PathsAreNamedAndTheActiveOneIsSupported) {
  const std::vector<SimdPath> paths = SupportedPaths();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), SimdPath::kPortable);
  EXPECT_EQ(paths.back(), BestSupportedPath());
  EXPECT_LE(static_cast<int>(ActivePath()), static_cast<int>(BestSupportedPath()));
  EXPECT_STREQ(SimdPathName(SimdPath::kPortable), "portable");
  EXPECT_STREQ(SimdPathName(SimdPath::kAvx2), "avx2");
  EXPECT_STREQ(SimdPathName(SimdPath::kAvx512), "avx512");
}

TEST(SimdKernelsTest, DotU8I16IsBitIdenticalOnEverySupportedPath) {
  for (int n : kLengths) {
    std::vector<uint8_t> codes;
    std::vector<int16_t> weights;
    RandomCodes(n, 1000 + n, &codes, &weights);
    int64_t expected = 0;
    for (int j = 0; j < n; ++j) expected += int64_t{codes[j]} * weights[j];
    ASSERT_EQ(DotU8I16For(SimdPath::kPortable)(codes.data(), weights.data(), n), expected);
    for (SimdPath path : SupportedPaths()) {
      EXPECT_EQ(DotU8I16For(path)(codes.data(), weights.data(), n), expected)
          << SimdPathName(path) << " n=" << n;
    }
    EXPECT_EQ(DotU8I16(codes.data(), weights.data(), n), expected) << "active n=" << n;
  }
}

TEST(SimdKernelsTest, BatchedDotU8I16MatchesPortableOnEveryPath) {
  for (int n : kLengths) {
    const size_t stride = (n + 63) / 64 * 64;
    for (size_t count : {size_t{1}, size_t{3}, size_t{4}, size_t{9}}) {
      std::vector<uint8_t> rows(stride * count, 0);
      std::vector<int16_t> weights;
      for (size_t r = 0; r < count; ++r) {
        std::vector<uint8_t> codes;
        RandomCodes(n, 7 * n + r, &codes, &weights);
        std::copy(codes.begin(), codes.end(), rows.begin() + r * stride);
      }
      std::vector<uint8_t> unused;
      RandomCodes(n, 99 + n, &unused, &weights);
      std::vector<int32_t> expected(count), got(count);
      DotU8I16BatchFor(SimdPath::kPortable)(rows.data(), stride, count, weights.data(), n,
                                            expected.data());
      for (SimdPath path : SupportedPaths()) {
        DotU8I16BatchFor(path)(rows.data(), stride, count, weights.data(), n, got.data());
        EXPECT_EQ(got, expected) << SimdPathName(path) << " n=" << n << " count=" << count;
      }
    }
  }
}

TEST(SimdKernelsTest, MultiQueryDotU8I16MatchesPortableOnEveryPath) {
  for (int n : kLengths) {
    const size_t stride = (n + 63) / 64 * 64;
    for (size_t count : {size_t{1}, size_t{4}, size_t{7}, size_t{13}}) {
      for (size_t num_queries : {size_t{1}, size_t{3}, size_t{4}, size_t{9}}) {
        std::vector<uint8_t> rows(stride * count, 0);
        std::vector<int16_t> weights;
        for (size_t r = 0; r < count; ++r) {
          std::vector<uint8_t> codes;
          RandomCodes(n, 11 * n + r, &codes, &weights);
          std::copy(codes.begin(), codes.end(), rows.begin() + r * stride);
        }
        // Query weights padded to the code stride, as the index lays them out.
        std::vector<std::vector<int16_t>> queries(num_queries);
        std::vector<const int16_t*> pointers;
        for (size_t i = 0; i < num_queries; ++i) {
          std::vector<uint8_t> unused;
          RandomCodes(n, 500 + 13 * n + i, &unused, &weights);
          queries[i].assign(stride, 0);
          std::copy(weights.begin(), weights.end(), queries[i].begin());
          pointers.push_back(queries[i].data());
        }
        std::vector<int32_t> expected(count * num_queries);
        for (size_t i = 0; i < num_queries; ++i) {
          for (size_t r = 0; r < count; ++r) {
            int64_t sum = 0;
            for (int j = 0; j < n; ++j) sum += int64_t{rows[r * stride + j]} * queries[i][j];
            expected[i * count + r] = static_cast<int32_t>(sum);
          }
        }
        for (SimdPath path : SupportedPaths()) {
          for (int width : {n, static_cast<int>(stride)}) {  // unpadded and padded widths
            std::vector<int32_t> got(count * num_queries, -1);
            DotU8I16MultiFor(path)(rows.data(), stride, count, pointers.data(), num_queries,
                                   width, got.data());
            EXPECT_EQ(got, expected) << SimdPathName(path) << " n=" << n << " width=" << width
                                     << " count=" << count << " queries=" << num_queries;
          }
        }
        std::vector<int32_t> active(count * num_queries);
        DotU8I16Multi(rows.data(), stride, count, pointers.data(), num_queries,
                      static_cast<int>(stride), active.data());
        EXPECT_EQ(active, expected);
      }
    }
  }
}

TEST(SimdKernelsTest, DotRowsIsBitIdenticalToDotOnEveryPath) {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int d : {1, 7, 16, 17, 32, 33, 63, 784}) {
    const size_t ld = d + 3;
    for (size_t nq : {size_t{1}, size_t{2}, size_t{5}}) {
      for (size_t count : {size_t{1}, size_t{4}, size_t{9}}) {
        std::vector<float> q(nq * ld), r(count * ld);
        for (float& x : q) x = uniform(rng);
        for (float& x : r) x = uniform(rng);
        for (SimdPath path : SupportedPaths()) {
          std::vector<float> got(nq * count, -1.0f);
          DotRowsFor(path)(q.data(), ld, nq, r.data(), ld, count, d, got.data());
          for (size_t i = 0; i < nq; ++i) {
            for (size_t c = 0; c < count; ++c) {
              EXPECT_EQ(got[i * count + c], DotFor(path)(q.data() + i * ld, r.data() + c * ld, d))
                  << SimdPathName(path) << " d=" << d << " i=" << i << " c=" << c;
            }
          }
        }
      }
    }
  }
}

TEST(SimdKernelsTest, DotColumnsMatchesADoubleOracleAndIsBitIdenticalAcrossPathsAndBatches) {
  std::mt19937_64 rng(29);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int d : {1, 7, 64, 784}) {
    for (size_t count : {size_t{1}, size_t{15}, size_t{16}, size_t{100}, size_t{256},
                         size_t{300}}) {
      const size_t ldc = count + 5;
      const size_t nq = 6;  // one group of four queries and two alone
      const size_t ldq = d + 2;
      std::vector<float> q(nq * ldq), columns(static_cast<size_t>(d) * ldc);
      for (float& x : q) x = uniform(rng);
      for (float& x : columns) x = uniform(rng);
      std::vector<float> want(nq * count);
      DotColumnsFor(SimdPath::kPortable)(q.data(), ldq, nq, d, columns.data(), ldc, count,
                                         want.data());
      for (size_t i = 0; i < nq; ++i) {
        for (size_t c = 0; c < count; ++c) {
          double exact = 0;
          for (int j = 0; j < d; ++j) exact += double(q[i * ldq + j]) * columns[j * ldc + c];
          EXPECT_NEAR(want[i * count + c], exact, 1e-4 * d) << "d=" << d << " c=" << c;
        }
      }
      for (SimdPath path : SupportedPaths()) {
        std::vector<float> got(nq * count, -1.0f);
        DotColumnsFor(path)(q.data(), ldq, nq, d, columns.data(), ldc, count, got.data());
        EXPECT_EQ(got, want) << SimdPathName(path) << " d=" << d << " count=" << count;
        // One query at a time gives the same bits as the batch.
        std::vector<float> alone(count, -1.0f);
        DotColumnsFor(path)(q.data() + 5 * ldq, ldq, 1, d, columns.data(), ldc, count,
                            alone.data());
        EXPECT_TRUE(std::equal(alone.begin(), alone.end(), want.begin() + 5 * count))
            << SimdPathName(path) << " d=" << d << " count=" << count;
      }
    }
  }
}

TEST(SimdKernelsTest, L2SqrRowsIsBitIdenticalToL2SqrOnEveryPath) {
  std::mt19937_64 rng(23);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int d : {1, 7, 16, 17, 31, 32, 33, 63, 64, 784, 1000}) {
    std::vector<float> q(d), r(8 * static_cast<size_t>(d));
    for (float& x : q) x = uniform(rng);
    for (float& x : r) x = uniform(rng);
    // Rows out of memory order.
    const float* rows[8];
    for (int i = 0; i < 8; ++i) rows[i] = r.data() + static_cast<size_t>((i * 5) % 8) * d;
    for (SimdPath path : SupportedPaths()) {
      float got4[4] = {-1.0f, -1.0f, -1.0f, -1.0f};
      float got8[8] = {-1.0f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f};
      L2SqrRows4For(path)(q.data(), rows, d, got4);
      L2SqrRows8For(path)(q.data(), rows, d, got8);
      for (int i = 0; i < 8; ++i) {
        const float want = L2SqrFor(path)(q.data(), rows[i], d);
        if (i < 4) {
          EXPECT_EQ(got4[i], want) << SimdPathName(path) << " d=" << d << " row " << i;
        }
        EXPECT_EQ(got8[i], want) << SimdPathName(path) << " d=" << d << " row " << i;
      }
    }
  }
}

TEST(SimdKernelsTest, FloatKernelsAgreeWithPortableOnEveryPath) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int n : kLengths) {
    std::vector<float> a(n), b(n);
    for (int j = 0; j < n; ++j) {
      a[j] = uniform(rng);
      b[j] = uniform(rng);
    }
    double dot = 0, l2 = 0;
    for (int j = 0; j < n; ++j) {
      dot += double{a[j]} * b[j];
      l2 += (double{a[j]} - b[j]) * (double{a[j]} - b[j]);
    }
    for (SimdPath path : SupportedPaths()) {
      EXPECT_NEAR(DotFor(path)(a.data(), b.data(), n), dot, 1e-4 * (1 + std::abs(dot)))
          << SimdPathName(path) << " n=" << n;
      EXPECT_NEAR(L2SqrFor(path)(a.data(), b.data(), n), l2, 1e-4 * (1 + l2))
          << SimdPathName(path) << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace nestor::kernels

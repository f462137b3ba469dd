#include "index/exact_scan.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "index/distance.h"

namespace nestor {

void ExactScanRows(const VectorRows& rows, size_t row_begin, size_t row_end, const float* q,
                   size_t nq, int d, int p, Metric metric, absl::Span<const float> query_norms,
                   absl::Span<TopK> heaps, ExactScanScratch* scratch) {
  const size_t nr = row_end - row_begin;
  if (nr == 0 || nq == 0) return;
  if (scratch->scores.size() < nq * nr) scratch->scores.resize(nq * nr);
  float* scores = scratch->scores.data();
  if (nq < kMinExactGemmQueries) {
    for (size_t i = 0; i < nq; ++i) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(nr), p, 1.0f,
                  rows.row(row_begin), rows.stride(), q + i * d, 1, 0.0f, scores + i * nr, 1);
    }
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                static_cast<int>(nr), p, 1.0f, q, d, rows.row(row_begin), rows.stride(), 0.0f,
                scores, static_cast<int>(nr));
  }
  const float* norms = rows.squared_norms().data() + row_begin;
  if (p < rows.dimension() && metric != Metric::kInnerProduct) {
    if (scratch->row_norms.size() < nr) scratch->row_norms.resize(nr);
    for (size_t r = 0; r < nr; ++r) {
      scratch->row_norms[r] = SquaredNorm(rows.row(row_begin + r), p);
    }
    norms = scratch->row_norms.data();
  }
  const DatapointId* ids = rows.ids().data() + row_begin;
  for (size_t i = 0; i < nq; ++i) {
    const float* s = scores + i * nr;
    TopK& heap = heaps[i];
    switch (metric) {
      case Metric::kL2: {
        const float qn = query_norms[i];
        for (size_t r = 0; r < nr; ++r) {
          const float key = std::max(0.0f, norms[r] - 2.0f * s[r] + qn);
          if (key <= heap.threshold()) heap.Push(key, ids[r]);
        }
        break;
      }
      case Metric::kInnerProduct:
        for (size_t r = 0; r < nr; ++r) {
          const float key = -s[r];
          if (key <= heap.threshold()) heap.Push(key, ids[r]);
        }
        break;
      case Metric::kCosine: {
        const float q_inv = 1.0f / std::sqrt(query_norms[i]);
        for (size_t r = 0; r < nr; ++r) {
          const float key = norms[r] > 0.0f ? -(s[r] * q_inv / std::sqrt(norms[r])) : -0.0f;
          if (key <= heap.threshold()) heap.Push(key, ids[r]);
        }
        break;
      }
    }
  }
}

}  // namespace nestor

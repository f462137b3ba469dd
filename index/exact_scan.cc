#include "index/exact_scan.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "index/distance.h"
#include "index/kernels/simd.h"
#include "index/search_util.h"

namespace nestor {

void ExactScanRows(const VectorRows& rows, size_t row_begin, size_t row_end, const float* q,
                   size_t nq, int d, int p, Metric metric, absl::Span<const float> query_norms,
                   absl::Span<TopK> heaps, ExactScanScratch* scratch) {
  const size_t nr = row_end - row_begin;
  if (nr == 0 || nq == 0) return;
  if (scratch->scores.size() < nq * nr) scratch->scores.resize(nq * nr);
  float* scores = scratch->scores.data();
  if (nq < kMinExactGemmQueries) {
    kernels::DotRows(q, static_cast<size_t>(d), nq, rows.row(row_begin), rows.stride(), nr, p,
                     scores);
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

namespace {

// ExactSearch for queries [begin, end).
absl::Status ExactSearchRange(absl::Span<const VectorRows> row_sets,
                              absl::Span<const float> queries, int d, Metric metric,
                              const SearchParams& params, size_t begin, size_t end,
                              std::vector<std::vector<Neighbor>>* results) {
  const int p = params.prefix_dim;
  size_t n = 0;
  for (const VectorRows& rows : row_sets) n += rows.size();
  const size_t max_query_block = std::min(kExactQueryBlock, end - begin);
  std::vector<float> query_norms(max_query_block);  // squared, over the prefix
  std::vector<TopK> heaps;
  ExactScanScratch scratch;
  for (size_t qb = begin; qb < end; qb += max_query_block) {
    const size_t nq = std::min(max_query_block, end - qb);
    const float* q = queries.data() + qb * d;
    heaps.assign(nq, TopK(static_cast<size_t>(params.k), n));
    for (size_t i = 0; i < nq; ++i) query_norms[i] = SquaredNorm(q + i * d, p);
    for (const VectorRows& rows : row_sets) {
      for (size_t rb = 0; rb < rows.size(); rb += kExactRowBlock) {
        RETURN_IF_ERROR(CheckInterrupted(params));
        ExactScanRows(rows, rb, std::min(rows.size(), rb + kExactRowBlock), q, nq, d, p, metric,
                      absl::MakeConstSpan(query_norms.data(), nq), absl::MakeSpan(heaps),
                      &scratch);
      }
    }
    for (size_t i = 0; i < nq; ++i) {
      (*results)[qb + i] = heaps[i].Finish(/*negate=*/HigherIsNearer(metric));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExactSearch(absl::Span<const VectorRows> row_sets, absl::Span<const float> queries,
                         int d, Metric metric, const SearchParams& params,
                         std::vector<std::vector<Neighbor>>* results) {
  const size_t num_queries = results->size();
  if (num_queries >= kMinExactGemmQueries) {
    return ExactSearchRange(row_sets, queries, d, metric, params, 0, num_queries, results);
  }
  if (num_queries == 0) return absl::OkStatus();
  // Fewer queries: the stored rows are split over params.num_threads, each part selects its
  // own top k per query, and the parts are merged (selection by (key, id) decomposes, so the
  // result is that of one pass).
  struct RowBlock {
    const VectorRows* rows;
    size_t begin;
    size_t end;
  };
  std::vector<RowBlock> blocks;
  size_t n = 0;
  for (const VectorRows& rows : row_sets) {
    n += rows.size();
    for (size_t rb = 0; rb < rows.size(); rb += kExactRowBlock) {
      blocks.push_back({&rows, rb, std::min(rows.size(), rb + kExactRowBlock)});
    }
  }
  const int p = params.prefix_dim;
  const size_t k = static_cast<size_t>(params.k);
  std::vector<float> query_norms(num_queries);  // squared, over the prefix
  for (size_t i = 0; i < num_queries; ++i) {
    query_norms[i] = SquaredNorm(queries.data() + i * d, p);
  }
  absl::Mutex mu;
  std::vector<TopK> merged(num_queries, TopK(k, n));
  RETURN_IF_ERROR(ParallelForChunks(
      blocks.size(), params.num_threads, [&](size_t b0, size_t b1) -> absl::Status {
        size_t rows_here = 0;
        for (size_t b = b0; b < b1; ++b) rows_here += blocks[b].end - blocks[b].begin;
        std::vector<TopK> heaps(num_queries, TopK(k, rows_here));
        ExactScanScratch scratch;
        for (size_t b = b0; b < b1; ++b) {
          RETURN_IF_ERROR(CheckInterrupted(params));
          ExactScanRows(*blocks[b].rows, blocks[b].begin, blocks[b].end, queries.data(),
                        num_queries, d, p, metric, query_norms, absl::MakeSpan(heaps),
                        &scratch);
        }
        absl::MutexLock lock(&mu);
        for (size_t i = 0; i < num_queries; ++i) {
          for (const Neighbor& neighbor : heaps[i].Finish(/*negate=*/false)) {
            merged[i].Push(neighbor.distance, neighbor.id);
          }
        }
        return absl::OkStatus();
      }));
  for (size_t i = 0; i < num_queries; ++i) {
    (*results)[i] = merged[i].Finish(/*negate=*/HigherIsNearer(metric));
  }
  return absl::OkStatus();
}

}  // namespace nestor

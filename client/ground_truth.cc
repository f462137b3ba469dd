#include "client/ground_truth.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nestor::client {
namespace {

// Squared norms of the first `dim` coordinates of every row.
std::vector<float> SquaredNorms(const FloatMatrix& m, int64_t dim) {
  std::vector<float> norms(static_cast<size_t>(m.rows));
  for (int64_t i = 0; i < m.rows; ++i) {
    const float* row = m.row(i);
    double sum = 0;
    for (int64_t j = 0; j < dim; ++j) sum += double{row[j]} * row[j];
    norms[i] = static_cast<float>(sum);
  }
  return norms;
}

// A candidate; `key` is smaller-is-better (the negated similarity for ip / cosine).
struct Candidate {
  float key;
  int64_t id;
  bool operator<(const Candidate& other) const {
    return key != other.key ? key < other.key : id < other.id;
  }
};

}  // namespace

absl::StatusOr<Neighbors> ExactNeighbors(const FloatMatrix& base, const FloatMatrix& queries,
                                         const GroundTruthOptions& options) {
  if (base.rows <= 0) return absl::InvalidArgumentError("ground truth: the base set is empty");
  if (base.cols != queries.cols) {
    return absl::InvalidArgumentError(absl::StrCat("ground truth: queries have ", queries.cols,
                                                   " columns, the base has ", base.cols));
  }
  if (options.k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("ground truth: k must be >= 1, got ", options.k));
  }
  if (options.prefix_dim < 0 || options.prefix_dim > base.cols) {
    return absl::InvalidArgumentError(absl::StrCat("ground truth: prefix_dim must be in 0..",
                                                   base.cols, ", got ", options.prefix_dim));
  }
  const int64_t dim = options.prefix_dim > 0 ? options.prefix_dim : base.cols;
  const int k = static_cast<int>(std::min<int64_t>(options.k, base.rows));
  const int64_t block_q = std::max<int64_t>(1, options.block_queries);
  const int64_t block_b = std::max<int64_t>(1, options.block_base);

  const std::vector<float> base_norms = SquaredNorms(base, dim);
  const std::vector<float> query_norms = SquaredNorms(queries, dim);

  Neighbors result;
  result.rows = queries.rows;
  result.k = k;
  result.ids.resize(static_cast<size_t>(queries.rows) * k);
  result.distances.resize(result.ids.size());

  std::vector<float> dots(static_cast<size_t>(std::min(block_q, std::max<int64_t>(queries.rows, 1)) *
                                              std::min(block_b, base.rows)));
  // Per query of the block: a max-heap (by operator<) of the k best candidates so far.
  std::vector<std::vector<Candidate>> heaps;
  for (int64_t q0 = 0; q0 < queries.rows; q0 += block_q) {
    const int64_t nq = std::min(block_q, queries.rows - q0);
    heaps.assign(static_cast<size_t>(nq), {});
    for (auto& heap : heaps) heap.reserve(k + 1);
    for (int64_t b0 = 0; b0 < base.rows; b0 += block_b) {
      const int64_t nb = std::min(block_b, base.rows - b0);
      // dots[i][j] = <query q0+i, base b0+j> over the first `dim` coordinates.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                  static_cast<int>(nb), static_cast<int>(dim), 1.0f, queries.row(q0),
                  static_cast<int>(queries.cols), base.row(b0), static_cast<int>(base.cols), 0.0f,
                  dots.data(), static_cast<int>(nb));
      for (int64_t i = 0; i < nq; ++i) {
        std::vector<Candidate>& heap = heaps[i];
        const float* row = dots.data() + i * nb;
        const float qn = query_norms[q0 + i];
        const float q_inv = qn > 0 ? 1.0f / std::sqrt(qn) : 0.0f;
        for (int64_t j = 0; j < nb; ++j) {
          const int64_t id = b0 + j;
          float key = 0;
          switch (options.metric) {
            case GroundTruthMetric::kL2:
              key = std::max(0.0f, qn + base_norms[id] - 2.0f * row[j]);
              break;
            case GroundTruthMetric::kInnerProduct:
              key = -row[j];
              break;
            case GroundTruthMetric::kCosine: {
              const float bn = base_norms[id];
              key = bn > 0 ? -row[j] * q_inv / std::sqrt(bn) : -0.0f;
              break;
            }
          }
          const Candidate candidate{key, id};
          if (static_cast<int>(heap.size()) < k) {
            heap.push_back(candidate);
            std::push_heap(heap.begin(), heap.end());
          } else if (candidate < heap.front()) {
            std::pop_heap(heap.begin(), heap.end());
            heap.back() = candidate;
            std::push_heap(heap.begin(), heap.end());
          }
        }
      }
    }
    for (int64_t i = 0; i < nq; ++i) {
      std::vector<Candidate>& heap = heaps[i];
      std::sort_heap(heap.begin(), heap.end());
      for (int j = 0; j < k; ++j) {
        const size_t at = static_cast<size_t>(q0 + i) * k + j;
        result.ids[at] = heap[j].id;
        result.distances[at] =
            options.metric == GroundTruthMetric::kL2 ? heap[j].key : -heap[j].key;
      }
    }
  }
  return result;
}

}  // namespace nestor::client

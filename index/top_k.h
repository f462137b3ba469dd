// Bounded selection of the k nearest candidates.
#ifndef NESTOR_INDEX_TOP_K_H_
#define NESTOR_INDEX_TOP_K_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "index/index.h"

namespace nestor {

// Keeps the k candidates with the smallest key, ties broken by the smaller id, in a
// bounded max-heap (O(log k) per accepted candidate). Callers map scores to keys so
// that smaller is nearer: the L2 distance itself, or the negated similarity.
//
// Thread safety: not thread-safe; use one per query.
class TopK {
 public:
  // `k` >= 1 entries are kept; `expected` sizes the heap up front (min(k, candidates)).
  TopK(size_t k, size_t expected);

  // The key a candidate must beat (be strictly less than, or equal with a smaller id)
  // to enter once the heap is full; +infinity before then.
  float threshold() const {
    return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().first;
  }

  // Offers one candidate. NaN keys are treated as +infinity (never nearer than a number).
  void Push(float key, DatapointId id) {
    if (std::isnan(key)) key = std::numeric_limits<float>::infinity();
    const std::pair<float, DatapointId> candidate(key, id);
    if (heap_.size() < k_) {
      heap_.push_back(candidate);
      std::push_heap(heap_.begin(), heap_.end());
      return;
    }
    // std::pair orders by key then id: exactly "nearer, then smaller id".
    if (!(candidate < heap_.front())) return;
    std::pop_heap(heap_.begin(), heap_.end());
    heap_.back() = candidate;
    std::push_heap(heap_.begin(), heap_.end());
  }

  // Nearest first; distances are `key` or, with `negate`, `-key` (similarities).
  // Leaves the TopK empty.
  std::vector<Neighbor> Finish(bool negate);

 private:
  size_t k_;
  std::vector<std::pair<float, DatapointId>> heap_;  // max-heap: worst on top
};

}  // namespace nestor

#endif  // NESTOR_INDEX_TOP_K_H_

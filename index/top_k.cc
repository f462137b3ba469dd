#include "index/top_k.h"

#include <algorithm>
#include <cmath>

namespace nestor {

TopK::TopK(size_t k, size_t expected) : k_(k) { heap_.reserve(std::min(k, expected)); }

std::vector<Neighbor> TopK::Finish(bool negate) {
  std::sort_heap(heap_.begin(), heap_.end());
  std::vector<Neighbor> out;
  out.reserve(heap_.size());
  for (const auto& [key, id] : heap_) out.push_back({id, negate ? -key : key});
  heap_.clear();
  return out;
}

}  // namespace nestor

// A table of one predicted quantity (recall, seconds per query) over the candidate grid
// of (partitions_to_search, reorder_k) the autotuner searches (Sun, Guo & Kumar, ICLR
// 2023: the constrained optimization is solved over such a grid of models, without
// searching at each point).
#ifndef NESTOR_TUNING_GRID_H_
#define NESTOR_TUNING_GRID_H_

#include <cstddef>
#include <vector>

namespace nestor::tuning {

// values has partitions_to_search.size() x reorder_k.size() entries, row-major:
// value(i, j) belongs to (partitions_to_search[i], reorder_k[j]). Axes are as the caller
// listed them (the models require them strictly increasing).
//
// Thread safety: a plain value; const access from many threads is safe.
struct GridTable {
  std::vector<int> partitions_to_search;
  std::vector<int> reorder_k;
  std::vector<double> values;

  double value(size_t i, size_t j) const { return values[i * reorder_k.size() + j]; }
  double& value(size_t i, size_t j) { return values[i * reorder_k.size() + j]; }
};

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_GRID_H_

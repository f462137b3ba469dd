// One configuration of a partitioned index with its predicted and (optionally) measured
// speed and recall: the unit the autotuner reports (as FAISS AutoTune's OperatingPoints;
// Sun, Guo & Kumar, ICLR 2023). The tuner never patches a live index; the server loads
// a chosen operating point as search defaults.
#ifndef NESTOR_TUNING_OPERATING_POINT_H_
#define NESTOR_TUNING_OPERATING_POINT_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace nestor::tuning {

// Thread safety: a plain value.
struct OperatingPoint {
  // Search settings, as nestor::SearchParams names them.
  int partitions_to_search = 0;
  int reorder_k = 0;
  // Matryoshka shortlist (issue #4): coordinates of the code scan, candidates kept, and
  // rerank prefix dimension. 0 = not used / full dimension.
  int shortlist_dim = 0;
  int shortlist_size = 0;
  int prefix_dim = 0;
  // Budget of codes per query (SearchParams::max_codes): partitions_to_search is then the
  // cap. 0 = no budget.
  int64_t max_codes = 0;

  // Model predictions (tuning/recall_model.h, tuning/cost_model.h). Recall@k in [0, 1];
  // seconds per query, single thread, one query at a time.
  double predicted_recall = 0.0;
  double predicted_seconds_per_query = 0.0;

  // Measured by running the index, when done.
  std::optional<double> measured_recall;  // recall@k in [0, 1]
  std::optional<double> measured_qps;     // queries per second
  std::optional<absl::Duration> latency_p50;
  std::optional<absl::Duration> latency_p99;
};

}  // namespace nestor::tuning

#endif  // NESTOR_TUNING_OPERATING_POINT_H_

// Tuned query defaults of live indexes (issue #5): what TuningService.ApplyTuning and
// --tuning_file install, what FindNeighbors substitutes for a query's unset settings, and
// what SaveIndex keeps in the index's snapshot.
#ifndef NESTOR_SERVER_TUNED_DEFAULTS_H_
#define NESTOR_SERVER_TUNED_DEFAULTS_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "index/index.h"

namespace nestor::server {

// Query defaults installed by tuning; each 0 = not tuned (the index's own default rule).
// The engine's SavedQueryDefaults, so that they travel in the index's snapshot as they
// are: partitions_to_search (partitions), reorder_k (vectors), shortlist_dim (coordinates),
// shortlist_size (vectors) and max_codes (vectors) of FindNeighborsRequest.Query.
using TunedDefaults = SavedQueryDefaults;

// Largest tuned reorder_k and shortlist_size, in vectors.
inline constexpr int kMaxTunedReorderK = kMaxCandidates;
// Largest tuned max_codes, in vectors: 2^40, far beyond any index this server holds (a
// larger value is a corrupt or mistyped result, not a setting).
inline constexpr int64_t kMaxTunedMaxCodes = int64_t{1} << 40;

// OK when `tuned` may be installed on an index with `options`; INVALID_ARGUMENT naming the
// field, what is allowed and what was given otherwise:
//   partitions_to_search in 1..num_partitions;
//   without the funnel (shortlist_dim 0): reorder_k in 1..kMaxTunedReorderK and
//   shortlist_size 0;
//   with the funnel: shortlist_dim an allowed Matryoshka prefix (IndexOptions
//   matryoshka_dims) below the dimension, shortlist_size in 1..kMaxTunedReorderK and
//   reorder_k 0 (the shortlist is re-scored exactly) or in 1..kMaxTunedReorderK;
//   max_codes in 0..kMaxTunedMaxCodes (0 = no limit), with or without the funnel.
// FAILED_PRECONDITION for an exact index (num_partitions 0), which has no query settings
// to tune.
absl::Status ValidateTunedDefaults(const IndexOptions& options, const TunedDefaults& tuned);

// The tuned defaults of each live index, keyed by the index object itself (not its name),
// so a deleted and re-created index of the same name starts untuned. The index's own
// options never change: FindNeighbors substitutes these for a query's unset settings, so
// a swap is one small write under a mutex and every request reads one consistent set.
//
// Thread safety: every method may be called concurrently.
class TunedDefaultsTable {
 public:
  // The defaults of `index` (all 0 when never tuned).
  TunedDefaults Get(const Index* index) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the defaults of `index`; returns the previous ones. Entries of indexes no
  // longer alive are dropped on the way.
  TunedDefaults Set(const std::shared_ptr<Index>& index, TunedDefaults defaults)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::weak_ptr<Index> index;
    TunedDefaults defaults;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const Index*, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_TUNED_DEFAULTS_H_

#include "server/tuned_defaults.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace nestor::server {

absl::Status ValidateTunedDefaults(const IndexOptions& options, const TunedDefaults& tuned) {
  if (options.num_partitions == 0) {
    return absl::FailedPreconditionError(
        "an exact index has no query settings to tune (num_partitions is 0)");
  }
  if (tuned.partitions_to_search < 1 || tuned.partitions_to_search > options.num_partitions) {
    return absl::InvalidArgumentError(absl::StrCat("partitions_to_search must be in 1..",
                                                   options.num_partitions, ", got ",
                                                   tuned.partitions_to_search));
  }
  if (tuned.max_codes < 0 || tuned.max_codes > kMaxTunedMaxCodes) {
    return absl::InvalidArgumentError(absl::StrCat("max_codes must be in 0..", kMaxTunedMaxCodes,
                                                   " (0 = no limit), got ", tuned.max_codes));
  }
  if (tuned.shortlist_dim == 0) {
    if (tuned.shortlist_size != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shortlist_size ", tuned.shortlist_size,
          " needs the funnel: shortlist_dim must be an allowed prefix below dimension ",
          options.dimension, " (", DescribeAllowedDims(options), "), got 0"));
    }
    if (tuned.reorder_k < 1 || tuned.reorder_k > kMaxTunedReorderK) {
      return absl::InvalidArgumentError(absl::StrCat("reorder_k must be in 1..",
                                                     kMaxTunedReorderK, ", got ",
                                                     tuned.reorder_k));
    }
    return absl::OkStatus();
  }
  if (tuned.shortlist_dim >= options.dimension || !IsAllowedPrefixDim(options, tuned.shortlist_dim)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shortlist_dim must be an allowed Matryoshka prefix below dimension ",
        options.dimension, " (", DescribeAllowedDims(options), "), got ",
        tuned.shortlist_dim));
  }
  if (tuned.shortlist_size < 1 || tuned.shortlist_size > kMaxTunedReorderK) {
    return absl::InvalidArgumentError(absl::StrCat("shortlist_size must be in 1..",
                                                   kMaxTunedReorderK, " with shortlist_dim ",
                                                   tuned.shortlist_dim, ", got ",
                                                   tuned.shortlist_size));
  }
  if (tuned.reorder_k < 0 || tuned.reorder_k > kMaxTunedReorderK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reorder_k must be in 0..", kMaxTunedReorderK,
        " with the funnel (0 = the shortlist re-scored exactly), got ", tuned.reorder_k));
  }
  return absl::OkStatus();
}

TunedDefaults TunedDefaultsTable::Get(const Index* index) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(index);
  if (it == entries_.end() || it->second.index.expired()) return {};
  return it->second.defaults;
}

TunedDefaults TunedDefaultsTable::Set(const std::shared_ptr<Index>& index,
                                      TunedDefaults defaults) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(entries_, [](const auto& kv) { return kv.second.index.expired(); });
  Entry& entry = entries_[index.get()];
  TunedDefaults previous;
  // A stale entry of a freed index at the same address is not this index's.
  if (entry.index.lock() == index) previous = entry.defaults;
  entry.index = index;
  entry.defaults = defaults;
  return previous;
}

}  // namespace nestor::server

// The live indexes of one server, by name, and their snapshots under data_dir.
#ifndef NESTOR_SERVER_INDEX_REGISTRY_H_
#define NESTOR_SERVER_INDEX_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "index/index.h"
#include "server/tuned_defaults.h"

namespace nestor::server {

// Maps index names to live indexes. Each index is held by a std::shared_ptr: callers
// (searches, upserts) keep their handle for the whole request, so Delete never pulls an
// index from under an in-flight request; the index is freed when the last handle goes.
// Snapshots live in data_dir/<name>/ (written by Index::Save, read by LoadIndex); each
// holds the index's tuned query defaults too (one file, written atomically), taken from
// and restored into the TunedDefaultsTable given at construction.
//
// Thread safety: every method may be called concurrently. The name map is guarded by
// mu_; disk operations (save, load, delete of a snapshot) are serialized by disk_mu_.
class IndexRegistry {
 public:
  // `data_dir` is created on first use if missing. `tuned_defaults` (may be null: none
  // saved or restored; not owned, must outlive the registry) supplies the tuned query
  // defaults Save writes into each snapshot and receives those LoadAll reads back.
  explicit IndexRegistry(std::string data_dir, TunedDefaultsTable* tuned_defaults = nullptr);

  IndexRegistry(const IndexRegistry&) = delete;
  IndexRegistry& operator=(const IndexRegistry&) = delete;

  // OK when `name` is 1..64 characters of [A-Za-z0-9_-], else INVALID_ARGUMENT.
  static absl::Status ValidateName(absl::string_view name);

  // Creates an empty index. INVALID_ARGUMENT for a bad name or bad options (from
  // CreateIndex), ALREADY_EXISTS if `name` is taken.
  absl::StatusOr<std::shared_ptr<Index>> Create(const std::string& name,
                                                const IndexOptions& options)
      ABSL_LOCKS_EXCLUDED(mu_);

  // INVALID_ARGUMENT for an empty name; NOT_FOUND naming the index if absent.
  absl::StatusOr<std::shared_ptr<Index>> Get(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every index, ordered by name.
  std::vector<std::pair<std::string, std::shared_ptr<Index>>> List() const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Unregisters the index and removes its snapshot directory. NOT_FOUND if absent;
  // INTERNAL if the directory cannot be removed (the index is unregistered anyway).
  absl::Status Delete(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_);

  // Snapshots one index, with its tuned query defaults, into data_dir/<name>/ and returns
  // that directory. NOT_FOUND if absent; the engine's error if the write fails.
  absl::StatusOr<std::string> Save(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_);

  // Snapshots every index; returns the first error after trying all of them.
  absl::Status SaveAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Loads every data_dir/<name>/ snapshot (names that are not valid index names are
  // skipped) and restores the tuned query defaults saved with it. A snapshot that fails
  // to load (corrupt, truncated, unknown version) is logged to stderr and skipped; saved
  // tuned defaults the index refuses (ValidateTunedDefaults) are logged and dropped, the
  // index loads untuned. Returns how many indexes were loaded; INTERNAL only if data_dir
  // cannot be created or listed.
  absl::StatusOr<int> LoadAll() ABSL_LOCKS_EXCLUDED(mu_);

  // data_dir/<name>.
  std::string SnapshotDir(absl::string_view name) const;
  const std::string& data_dir() const { return data_dir_; }

 private:
  const std::string data_dir_;
  TunedDefaultsTable* const tuned_defaults_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Index>, std::less<>> indexes_ ABSL_GUARDED_BY(mu_);
  // Serializes writes into data_dir so a Save never resurrects a deleted snapshot.
  absl::Mutex disk_mu_ ABSL_ACQUIRED_BEFORE(mu_);
};

}  // namespace nestor::server

#endif  // NESTOR_SERVER_INDEX_REGISTRY_H_

#include "server/index_registry.h"

#include <filesystem>
#include <iostream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "index/index_factory.h"

namespace nestor::server {
namespace {

constexpr size_t kMaxNameLength = 64;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

}  // namespace

IndexRegistry::IndexRegistry(std::string data_dir, TunedDefaultsTable* tuned_defaults)
    : data_dir_(std::move(data_dir)), tuned_defaults_(tuned_defaults) {}

absl::Status IndexRegistry::ValidateName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("index name must not be empty");
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index name must be at most ", kMaxNameLength, " characters, got ", name.size()));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index name must contain only [A-Za-z0-9_-], got \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

std::string IndexRegistry::SnapshotDir(absl::string_view name) const {
  return (std::filesystem::path(data_dir_) / std::string(name)).string();
}

absl::StatusOr<std::shared_ptr<Index>> IndexRegistry::Create(const std::string& name,
                                                             const IndexOptions& options) {
  absl::Status valid = ValidateName(name);
  if (!valid.ok()) return valid;
  {
    absl::MutexLock lock(&mu_);
    if (indexes_.count(name) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("index \"", name, "\" already exists"));
    }
  }
  // Construct outside the lock; re-check the name when inserting.
  absl::StatusOr<std::unique_ptr<Index>> created = CreateIndex(options);
  if (!created.ok()) return created.status();
  std::shared_ptr<Index> index(std::move(*created));
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = indexes_.emplace(name, index);
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat("index \"", name, "\" already exists"));
  }
  return index;
}

absl::StatusOr<std::shared_ptr<Index>> IndexRegistry::Get(absl::string_view name) const {
  if (name.empty()) return absl::InvalidArgumentError("index name must not be empty");
  absl::MutexLock lock(&mu_);
  auto it = indexes_.find(name);
  if (it == indexes_.end()) {
    return absl::NotFoundError(absl::StrCat("index \"", name, "\" not found"));
  }
  return it->second;
}

std::vector<std::pair<std::string, std::shared_ptr<Index>>> IndexRegistry::List() const {
  absl::MutexLock lock(&mu_);
  return {indexes_.begin(), indexes_.end()};
}

absl::Status IndexRegistry::Delete(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("index name must not be empty");
  absl::MutexLock disk_lock(&disk_mu_);
  {
    absl::MutexLock lock(&mu_);
    auto it = indexes_.find(name);
    if (it == indexes_.end()) {
      return absl::NotFoundError(absl::StrCat("index \"", name, "\" not found"));
    }
    indexes_.erase(it);
  }
  // The name was validated when the index was created, so this stays inside data_dir.
  std::error_code error;
  std::filesystem::remove_all(SnapshotDir(name), error);
  if (error) {
    return absl::InternalError(absl::StrCat("index \"", name, "\" deleted but its snapshot ",
                                            SnapshotDir(name), " was not removed: ",
                                            error.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IndexRegistry::Save(absl::string_view name) {
  absl::MutexLock disk_lock(&disk_mu_);
  // Looked up under disk_mu_, so a concurrent Delete cannot slip in between.
  absl::StatusOr<std::shared_ptr<Index>> index = Get(name);
  if (!index.ok()) return index.status();
  const std::string dir = SnapshotDir(name);
  const TunedDefaults tuned =
      tuned_defaults_ != nullptr ? tuned_defaults_->Get(index->get()) : TunedDefaults{};
  absl::Status saved = (*index)->Save(dir, tuned);
  if (!saved.ok()) return saved;
  return dir;
}

absl::Status IndexRegistry::SaveAll() {
  absl::Status first_error;
  for (const auto& [name, index] : List()) {
    absl::StatusOr<std::string> saved = Save(name);
    if (!saved.ok() && saved.status().code() != absl::StatusCode::kNotFound) {
      std::cerr << "nestor-server: saving index \"" << name
                << "\" failed: " << saved.status() << std::endl;
      if (first_error.ok()) first_error = saved.status();
    }
  }
  return first_error;
}

absl::StatusOr<int> IndexRegistry::LoadAll() {
  namespace fs = std::filesystem;
  absl::MutexLock disk_lock(&disk_mu_);
  std::error_code error;
  // A data_dir that is a file is FAILED_PRECONDITION; other filesystem errors keep their
  // errno's code (e.g. PERMISSION_DENIED for EACCES).
  if (fs::exists(data_dir_, error) && !fs::is_directory(data_dir_, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", data_dir_, " exists and is not a directory"));
  }
  fs::create_directories(data_dir_, error);
  if (error) {
    return absl::Status(absl::ErrnoToStatusCode(error.value()),
                        absl::StrCat("cannot create data_dir ", data_dir_, ": ",
                                     error.message()));
  }
  fs::directory_iterator it(data_dir_, error);
  if (error) {
    return absl::Status(absl::ErrnoToStatusCode(error.value()),
                        absl::StrCat("cannot list data_dir ", data_dir_, ": ", error.message()));
  }
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    if (error) break;
    std::error_code is_dir_error;
    if (!it->is_directory(is_dir_error)) continue;
    std::string name = it->path().filename().string();
    if (!ValidateName(name).ok()) continue;
    names.push_back(std::move(name));
  }
  int loaded = 0;
  for (const std::string& name : names) {
    absl::StatusOr<std::unique_ptr<Index>> index = absl::InternalError("not loaded");
    TunedDefaults tuned;
    try {  // A corrupt snapshot must never take the server down.
      index = LoadIndex(SnapshotDir(name), &tuned);
    } catch (const std::exception& e) {
      index = absl::DataLossError(absl::StrCat("loading threw: ", e.what()));
    }
    if (!index.ok()) {
      std::cerr << "nestor-server: skipping snapshot " << SnapshotDir(name) << ": "
                << index.status() << std::endl;
      continue;
    }
    std::shared_ptr<Index> shared(std::move(*index));
    if (tuned != TunedDefaults{} && tuned_defaults_ != nullptr) {
      absl::Status valid = ValidateTunedDefaults(shared->options(), tuned);
      if (valid.ok()) {
        tuned_defaults_->Set(shared, tuned);
      } else {
        std::cerr << "nestor-server: index \"" << name
                  << "\" loaded without its saved tuned defaults: " << valid << std::endl;
      }
    }
    absl::MutexLock lock(&mu_);
    if (indexes_.emplace(name, std::move(shared)).second) ++loaded;
  }
  return loaded;
}

}  // namespace nestor::server

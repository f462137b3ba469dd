#include "index/persistence.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace nestor {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path, int err) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

constexpr size_t kPreambleBytes = kSnapshotMagic.size() + sizeof(uint32_t);
constexpr size_t kCrcBytes = sizeof(uint32_t);

}  // namespace

uint32_t Crc32(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large buffers in pieces.
  while (!data.empty()) {
    const size_t piece = std::min<size_t>(data.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(piece));
    data.remove_prefix(piece);
  }
  return static_cast<uint32_t>(crc);
}

absl::Status ByteReader::Truncated(size_t wanted) const {
  return absl::DataLossError(absl::StrCat("snapshot is truncated: wanted ", wanted,
                                          " more bytes at offset ", pos_, ", only ",
                                          remaining(), " remain"));
}

absl::Status ByteReader::CheckAvailable(uint64_t n, size_t element_bytes) const {
  if (element_bytes != 0 && n > remaining() / element_bytes) {
    return absl::DataLossError(absl::StrCat("snapshot is corrupt: it declares ", n,
                                            " elements of ", element_bytes,
                                            " bytes but only ", remaining(),
                                            " bytes remain"));
  }
  return absl::OkStatus();
}

absl::Status ByteReader::CheckFullyRead() const {
  if (remaining() != 0) {
    return absl::DataLossError(
        absl::StrCat("snapshot is corrupt: ", remaining(), " unexpected trailing bytes"));
  }
  return absl::OkStatus();
}

void BeginSnapshot(std::string* out) {
  out->append(kSnapshotMagic.data(), kSnapshotMagic.size());
  ByteWriter(out).Put<uint32_t>(kFormatVersion);
}

void FinishSnapshot(std::string* out) { ByteWriter(out).Put<uint32_t>(Crc32(*out)); }

absl::StatusOr<absl::string_view> VerifySnapshot(absl::string_view file,
                                                 uint32_t* version_out) {
  if (file.size() < kPreambleBytes + kCrcBytes) {
    return absl::DataLossError(absl::StrCat("snapshot is truncated: ", file.size(),
                                            " bytes, a valid one has at least ",
                                            kPreambleBytes + kCrcBytes));
  }
  if (file.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return absl::DataLossError(
        absl::StrCat("not a Nestor snapshot: magic is not \"", kSnapshotMagic, "\""));
  }
  uint32_t version = 0;
  std::memcpy(&version, file.data() + kSnapshotMagic.size(), sizeof(version));
  if (version < kMinFormatVersion || version > kFormatVersion) {
    return absl::DataLossError(absl::StrCat("unknown snapshot format version ", version,
                                            "; this build reads versions ", kMinFormatVersion,
                                            " to ", kFormatVersion));
  }
  if (version_out != nullptr) *version_out = version;
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, file.data() + file.size() - kCrcBytes, sizeof(stored_crc));
  const uint32_t actual_crc = Crc32(file.substr(0, file.size() - kCrcBytes));
  if (stored_crc != actual_crc) {
    return absl::DataLossError(absl::StrCat(
        "snapshot is corrupt or truncated: CRC32 mismatch (stored ", stored_crc,
        ", computed ", actual_crc, ")"));
  }
  return file.substr(kPreambleBytes, file.size() - kPreambleBytes - kCrcBytes);
}

absl::Status CheckSavedQueryDefaults(const SavedQueryDefaults& defaults) {
  const std::pair<const char*, int> fields[] = {
      {"partitions_to_search", defaults.partitions_to_search},
      {"reorder_k", defaults.reorder_k},
      {"shortlist_dim", defaults.shortlist_dim},
      {"shortlist_size", defaults.shortlist_size}};
  for (const auto& [name, value] : fields) {
    if (value < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "saved query default ", name, " must be >= 0 (0 = unset), got ", value));
    }
  }
  if (defaults.max_codes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "saved query default max_codes must be >= 0 (0 = unset), got ", defaults.max_codes));
  }
  return absl::OkStatus();
}

void WriteSnapshotHeader(const SnapshotHeader& header, ByteWriter& writer) {
  const IndexOptions& o = header.options;
  writer.Put<uint32_t>(static_cast<uint32_t>(header.kind));
  writer.Put<int32_t>(o.dimension);
  writer.Put<int32_t>(static_cast<int32_t>(o.metric));
  writer.Put<int32_t>(o.num_partitions);
  writer.Put<int32_t>(o.default_partitions_to_search);
  writer.Put<int32_t>(o.training_iterations);
  writer.Put<uint64_t>(o.seed);
  writer.Put<int32_t>(o.max_training_points_per_partition);
  writer.Put<int32_t>(static_cast<int32_t>(o.code_type));
  writer.Put<int32_t>(o.reorder_k);
  writer.Put<uint32_t>(static_cast<uint32_t>(o.matryoshka_dims.size()));
  writer.PutArray(o.matryoshka_dims.data(), o.matryoshka_dims.size());
  writer.Put<int32_t>(o.routing_dim);
  writer.Put<uint8_t>(o.pca_rotation ? 1 : 0);
  writer.Put<uint8_t>(header.built ? 1 : 0);
  writer.Put<double>(header.build_seconds);
  const SavedQueryDefaults& q = header.query_defaults;
  writer.Put<int32_t>(q.partitions_to_search);
  writer.Put<int32_t>(q.reorder_k);
  writer.Put<int32_t>(q.shortlist_dim);
  writer.Put<int32_t>(q.shortlist_size);
  writer.Put<int64_t>(q.max_codes);
}

absl::StatusOr<SnapshotHeader> ReadSnapshotHeader(ByteReader& reader, uint32_t version) {
  SnapshotHeader header;
  uint32_t kind = 0;
  int32_t metric = 0;
  uint8_t built = 0;
  IndexOptions& o = header.options;
  RETURN_IF_ERROR(reader.Get(&kind));
  RETURN_IF_ERROR(reader.Get(&o.dimension));
  RETURN_IF_ERROR(reader.Get(&metric));
  RETURN_IF_ERROR(reader.Get(&o.num_partitions));
  RETURN_IF_ERROR(reader.Get(&o.default_partitions_to_search));
  RETURN_IF_ERROR(reader.Get(&o.training_iterations));
  RETURN_IF_ERROR(reader.Get(&o.seed));
  RETURN_IF_ERROR(reader.Get(&o.max_training_points_per_partition));
  if (version >= 2) {
    int32_t code_type = 0;
    RETURN_IF_ERROR(reader.Get(&code_type));
    RETURN_IF_ERROR(reader.Get(&o.reorder_k));
    if (code_type != static_cast<int32_t>(CodeType::kFloat) &&
        code_type != static_cast<int32_t>(CodeType::kInt8)) {
      return absl::DataLossError(absl::StrCat("snapshot has unknown code type ", code_type));
    }
    o.code_type = static_cast<CodeType>(code_type);
  } else {
    o.code_type = CodeType::kFloat;
    o.reorder_k = 0;
  }
  if (version >= 3) {
    uint32_t ladder = 0;
    RETURN_IF_ERROR(reader.Get(&ladder));
    RETURN_IF_ERROR(reader.CheckAvailable(ladder, sizeof(int32_t)));
    o.matryoshka_dims.resize(ladder);
    RETURN_IF_ERROR(reader.GetArray(o.matryoshka_dims.data(), ladder));
    RETURN_IF_ERROR(reader.Get(&o.routing_dim));
    uint8_t rotation = 0;
    RETURN_IF_ERROR(reader.Get(&rotation));
    if (rotation > 1) {
      return absl::DataLossError(
          absl::StrCat("snapshot has invalid pca_rotation flag ", static_cast<int>(rotation)));
    }
    o.pca_rotation = rotation == 1;
  }
  RETURN_IF_ERROR(reader.Get(&built));
  RETURN_IF_ERROR(reader.Get(&header.build_seconds));
  if (version >= 4) {
    SavedQueryDefaults& q = header.query_defaults;
    RETURN_IF_ERROR(reader.Get(&q.partitions_to_search));
    RETURN_IF_ERROR(reader.Get(&q.reorder_k));
    RETURN_IF_ERROR(reader.Get(&q.shortlist_dim));
    RETURN_IF_ERROR(reader.Get(&q.shortlist_size));
    if (version >= 5) RETURN_IF_ERROR(reader.Get(&q.max_codes));
    absl::Status valid = CheckSavedQueryDefaults(q);
    if (!valid.ok()) {
      return absl::DataLossError(absl::StrCat("snapshot is corrupt: ", valid.message()));
    }
  }
  if (kind != static_cast<uint32_t>(SnapshotKind::kExact) &&
      kind != static_cast<uint32_t>(SnapshotKind::kPartitioned)) {
    return absl::DataLossError(absl::StrCat("snapshot has unknown index kind ", kind));
  }
  header.kind = static_cast<SnapshotKind>(kind);
  if (metric < static_cast<int32_t>(Metric::kL2) || metric > static_cast<int32_t>(Metric::kCosine)) {
    return absl::DataLossError(absl::StrCat("snapshot has unknown metric ", metric));
  }
  o.metric = static_cast<Metric>(metric);
  if (built > 1) {
    return absl::DataLossError(absl::StrCat("snapshot has invalid built flag ", static_cast<int>(built)));
  }
  header.built = built == 1;
  return header;
}

absl::Status WriteFileAtomically(const std::string& directory, absl::string_view file_name,
                                 absl::string_view contents) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    return ErrnoError("cannot create directory", directory, ec.value());
  }
  static std::atomic<uint64_t> counter{0};
  const std::string final_path = absl::StrCat(directory, "/", file_name);
  const std::string temp_path = absl::StrCat(directory, "/.", file_name, ".tmp.",
                                             ::getpid(), ".", counter.fetch_add(1));
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", temp_path, errno);
  absl::Status status = WriteAll(fd, contents, temp_path);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError("cannot fsync", temp_path, errno);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("cannot close", temp_path, errno);
  if (status.ok() && ::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    status = ErrnoError("cannot rename onto", final_path, errno);
  }
  if (!status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  // Make the rename itself durable.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("no index snapshot at ", path));
    }
    return ErrnoError("cannot open", path, errno);
  }
  std::string contents;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) contents.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError("cannot read", path, err);
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return contents;
}

}  // namespace nestor

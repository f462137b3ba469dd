// Snapshot file format and I/O helpers of Index::Save / LoadIndex.
//
// One file per snapshot, `<directory>/index.nestor`, little-endian:
//
//   magic            8 bytes  "NESTORIX"
//   format_version   u32      kFormatVersion (5; versions 1 to 4 still load)
//   kind             u32      SnapshotKind
//   dimension        i32      ┐
//   metric           i32      │
//   num_partitions   i32      │ IndexOptions, after defaults were filled in
//   default_pts      i32      │
//   training_iters   i32      │
//   seed             u64      │
//   max_train_pts    i32      │
//   code_type        i32      │ (version >= 2; version 1 means kFloat)
//   reorder_k        i32      │ (version >= 2; version 1 means 0)
//   ladder_size      u32      │ (version >= 3; older versions: empty ladder,
//   matryoshka_dims  i32 x n  │  routing_dim = dimension, no rotation)
//   routing_dim      i32      │
//   pca_rotation     u8       ┘
//   built            u8
//   build_seconds    f64
//   query defaults   i32 x 4  SavedQueryDefaults: partitions_to_search, reorder_k,
//                             shortlist_dim, shortlist_size, each >= 0 (version >= 4;
//                             older versions: all 0)
//                    i64      SavedQueryDefaults::max_codes, >= 0 (version >= 5; older
//                             versions: 0)
//   body             kind-specific (ExactIndex / PartitionedIndex ::SerializeImpl)
//   crc32            u32      zlib crc32 of every byte before it
//
// Writes go to a temporary file in the same directory which is fsync'ed and renamed over
// the previous snapshot, so a crash leaves either the old or the new snapshot.
#ifndef NESTOR_INDEX_PERSISTENCE_H_
#define NESTOR_INDEX_PERSISTENCE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/index.h"

namespace nestor {

inline constexpr absl::string_view kSnapshotMagic = "NESTORIX";
inline constexpr uint32_t kFormatVersion = 5;
// Oldest version this build reads.
inline constexpr uint32_t kMinFormatVersion = 1;
inline constexpr absl::string_view kSnapshotFileName = "index.nestor";

enum class SnapshotKind : uint32_t {
  kExact = 1,
  kPartitioned = 2,
};

// The fields every snapshot starts with.
struct SnapshotHeader {
  SnapshotKind kind = SnapshotKind::kExact;
  IndexOptions options;
  bool built = false;
  double build_seconds = 0.0;
  // Stored for the index's owner (version >= 4; max_codes version >= 5); see
  // SavedQueryDefaults.
  SavedQueryDefaults query_defaults;
};

// OK when every field of `defaults` is >= 0, else INVALID_ARGUMENT naming the field.
absl::Status CheckSavedQueryDefaults(const SavedQueryDefaults& defaults);

// Appends fixed-size little-endian values to a string.
//
// Thread safety: not thread-safe.
class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  template <typename T>
  void Put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_->append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  // `n` values of T from `data`.
  template <typename T>
  void PutArray(const T* data, size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_->append(reinterpret_cast<const char*>(data), n * sizeof(T));
  }

 private:
  std::string* out_;
};

// Reads values written by ByteWriter; every read past the end is DATA_LOSS.
//
// Thread safety: not thread-safe.
class ByteReader {
 public:
  explicit ByteReader(absl::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size() - pos_; }

  template <typename T>
  absl::Status Get(T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return GetArray(value, 1);
  }
  template <typename T>
  absl::Status GetArray(T* data, size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (n > remaining() / sizeof(T)) return Truncated(n * sizeof(T));
    std::memcpy(data, data_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return absl::OkStatus();
  }
  // DATA_LOSS unless `n` elements of `element_bytes` each remain: check counts read from
  // the file before allocating for them.
  absl::Status CheckAvailable(uint64_t n, size_t element_bytes) const;
  // DATA_LOSS unless everything was read.
  absl::Status CheckFullyRead() const;

 private:
  absl::Status Truncated(size_t wanted) const;

  absl::string_view data_;
  size_t pos_ = 0;
};

// Appends the common header to `out`.
void WriteSnapshotHeader(const SnapshotHeader& header, ByteWriter& writer);
// Reads the common header (after the caller checked magic, version and CRC through
// VerifySnapshot). DATA_LOSS on truncation or invalid values.
// `version` is the file's format version (from VerifySnapshot).
absl::StatusOr<SnapshotHeader> ReadSnapshotHeader(ByteReader& reader, uint32_t version);

// Starts a snapshot: magic and format version.
void BeginSnapshot(std::string* out);
// Appends the CRC32 of everything in `out`.
void FinishSnapshot(std::string* out);
// Checks length, magic, version and CRC of a whole file. Returns the bytes between the
// version and the CRC (header fields + body) or DATA_LOSS saying what is wrong.
// Versions kMinFormatVersion..kFormatVersion are accepted; `version` (if not null)
// receives the file's.
absl::StatusOr<absl::string_view> VerifySnapshot(absl::string_view file,
                                                 uint32_t* version = nullptr);

// zlib CRC32 of `data`.
uint32_t Crc32(absl::string_view data);

// Creates `directory` (and parents) if missing, writes `contents` to a temporary file in
// it, fsyncs it, renames it to `directory/file_name` and fsyncs the directory.
// INTERNAL / PERMISSION_DENIED style errors from the OS are returned as absl errors.
absl::Status WriteFileAtomically(const std::string& directory, absl::string_view file_name,
                                 absl::string_view contents);

// Reads a whole file. NOT_FOUND if it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace nestor

#endif  // NESTOR_INDEX_PERSISTENCE_H_

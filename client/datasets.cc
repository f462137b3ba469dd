#include "client/datasets.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace nestor::client {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the loaders assume a little-endian host");

// Largest matrix a loader accepts, in elements (64 GiB of floats); guards against
// headers that promise absurd sizes.
constexpr int64_t kMaxElements = int64_t{1} << 34;
// Elements read per chunk, so that a truncated file fails before a huge allocation.
constexpr int64_t kChunkElements = int64_t{1} << 22;

// Sequential reader over a plain or gzip-compressed file.
class Reader {
 public:
  static absl::StatusOr<Reader> Open(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return absl::NotFoundError(absl::StrCat("no such file: ", path));
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
      return absl::InvalidArgumentError(absl::StrCat("not a regular file: ", path));
    }
    gzFile file = gzopen(path.c_str(), "rb");
    if (file == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
    }
    gzbuffer(file, 1 << 20);
    return Reader(path, file);
  }
  Reader(Reader&& other) noexcept
      : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)) {}
  Reader& operator=(Reader&&) = delete;
  ~Reader() {
    if (file_ != nullptr) gzclose(file_);
  }

  const std::string& path() const { return path_; }

  // Reads up to `size` bytes; returns how many were read (fewer only at end of file).
  absl::StatusOr<size_t> ReadSome(void* out, size_t size) {
    char* dst = static_cast<char*>(out);
    size_t done = 0;
    while (done < size) {
      unsigned want = static_cast<unsigned>(std::min<size_t>(size - done, 1u << 30));
      int got = gzread(file_, dst + done, want);
      if (got < 0) {
        int err = 0;
        const char* message = gzerror(file_, &err);
        return absl::DataLossError(absl::StrCat(path_, ": read error: ", message));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    if (done < size) {
      // gzread returns a short count both at end of file and on a corrupt stream.
      int err = 0;
      const char* message = gzerror(file_, &err);
      if (err != Z_OK && err != Z_BUF_ERROR) {
        return absl::DataLossError(absl::StrCat(path_, ": corrupt gzip data: ", message));
      }
    }
    return done;
  }

  // Reads exactly `size` bytes; DATA_LOSS naming `what` if the file ends first.
  absl::Status ReadExact(void* out, size_t size, const std::string& what) {
    ASSIGN_OR_RETURN(size_t got, ReadSome(out, size));
    if (got != size) {
      return absl::DataLossError(absl::StrCat(path_, ": truncated: expected ", size,
                                              " bytes of ", what, ", got ", got));
    }
    return absl::OkStatus();
  }

 private:
  Reader(std::string path, gzFile file) : path_(std::move(path)), file_(file) {}
  std::string path_;
  gzFile file_;
};

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

template <typename T>
T ByteSwap(T value) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  std::reverse(bytes, bytes + sizeof(T));
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

// Element types of the binary formats.
enum class ElementType { kUint8, kInt8, kInt16, kInt32, kInt64, kFloat32, kFloat64 };

size_t ElementSize(ElementType type) {
  switch (type) {
    case ElementType::kUint8:
    case ElementType::kInt8:
      return 1;
    case ElementType::kInt16:
      return 2;
    case ElementType::kInt32:
    case ElementType::kFloat32:
      return 4;
    case ElementType::kInt64:
    case ElementType::kFloat64:
      return 8;
  }
  return 1;
}

template <typename T, typename Out>
void ConvertTyped(const unsigned char* in, int64_t count, bool big_endian, Out* out) {
  for (int64_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, in + i * sizeof(T), sizeof(T));
    if (big_endian && sizeof(T) > 1) value = ByteSwap(value);
    out[i] = static_cast<Out>(value);
  }
}

template <typename Out>
void Convert(ElementType type, const unsigned char* in, int64_t count, bool big_endian,
             Out* out) {
  switch (type) {
    case ElementType::kUint8:
      return ConvertTyped<uint8_t>(in, count, big_endian, out);
    case ElementType::kInt8:
      return ConvertTyped<int8_t>(in, count, big_endian, out);
    case ElementType::kInt16:
      return ConvertTyped<int16_t>(in, count, big_endian, out);
    case ElementType::kInt32:
      return ConvertTyped<int32_t>(in, count, big_endian, out);
    case ElementType::kInt64:
      return ConvertTyped<int64_t>(in, count, big_endian, out);
    case ElementType::kFloat32:
      return ConvertTyped<float>(in, count, big_endian, out);
    case ElementType::kFloat64:
      return ConvertTyped<double>(in, count, big_endian, out);
  }
}

// Reads rows × cols elements of `type` stored contiguously and converts them to Out.
template <typename Out>
absl::Status ReadDense(Reader& reader, ElementType type, bool big_endian, int64_t rows,
                       int64_t cols, Matrix<Out>* matrix) {
  matrix->rows = rows;
  matrix->cols = cols;
  const int64_t total = rows * cols;
  matrix->data.clear();
  matrix->data.reserve(static_cast<size_t>(std::min(total, kChunkElements * 16)));
  const size_t element_size = ElementSize(type);
  std::vector<unsigned char> buffer;
  for (int64_t done = 0; done < total;) {
    const int64_t count = std::min(total - done, kChunkElements);
    buffer.resize(static_cast<size_t>(count) * element_size);
    RETURN_IF_ERROR(reader.ReadExact(
        buffer.data(), buffer.size(),
        absl::StrCat("data (", rows, " x ", cols, " elements of ", element_size, " bytes)")));
    matrix->data.resize(static_cast<size_t>(done + count));
    Convert(type, buffer.data(), count, big_endian, matrix->data.data() + done);
    done += count;
  }
  return absl::OkStatus();
}

absl::Status CheckSize(const std::string& path, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": invalid shape ", rows, " x ", cols));
  }
  if (rows > 0 && cols > kMaxElements / rows) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": shape ", rows, " x ", cols,
                                                   " exceeds ", kMaxElements, " elements"));
  }
  return absl::OkStatus();
}

int64_t ApplyLimit(int64_t rows, int64_t limit) {
  return limit > 0 ? std::min(rows, limit) : rows;
}

// TEXMEX *vecs: per row an int32 dimension then `dim` elements of `type`.
template <typename Out>
absl::StatusOr<Matrix<Out>> LoadVecs(const std::string& path, ElementType type,
                                     int64_t limit) {
  ASSIGN_OR_RETURN(Reader reader, Reader::Open(path));
  Matrix<Out> matrix;
  const size_t element_size = ElementSize(type);
  std::vector<unsigned char> buffer;
  int64_t row = 0;
  while (limit <= 0 || row < limit) {
    int32_t dim = 0;
    ASSIGN_OR_RETURN(size_t got, reader.ReadSome(&dim, sizeof(dim)));
    if (got == 0) break;  // Clean end of file.
    if (got != sizeof(dim)) {
      return absl::DataLossError(absl::StrCat(path, ": truncated: row ", row,
                                              " ends inside its dimension field"));
    }
    if (dim <= 0 || dim > (1 << 24)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": row ", row, " has dimension ", dim, "; expected 1..", 1 << 24,
          " (is this really a ", path.substr(path.rfind('.') + 1), " file?)"));
    }
    if (row == 0) {
      matrix.cols = dim;
    } else if (dim != matrix.cols) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent dimensions: row 0 has ",
                                                     matrix.cols, ", row ", row, " has ",
                                                     dim));
    }
    if ((row + 1) * matrix.cols > kMaxElements) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": more than ", kMaxElements, " elements"));
    }
    buffer.resize(static_cast<size_t>(dim) * element_size);
    RETURN_IF_ERROR(
        reader.ReadExact(buffer.data(), buffer.size(), absl::StrCat("row ", row)));
    const size_t old = matrix.data.size();
    matrix.data.resize(old + static_cast<size_t>(dim));
    Convert(type, buffer.data(), dim, /*big_endian=*/false, matrix.data.data() + old);
    ++row;
  }
  matrix.rows = row;
  if (row == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, no vectors"));
  }
  return matrix;
}

// Returns the value of `key` in a NumPy header dict, e.g. "'<f4'" or "(3, 4)".
absl::StatusOr<std::string> NpyHeaderValue(const std::string& path, const std::string& header,
                                           const std::string& key) {
  const std::string quoted = absl::StrCat("'", key, "'");
  size_t pos = header.find(quoted);
  if (pos == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": .npy header has no ", quoted, ": ", header));
  }
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": malformed .npy header: ", header));
  }
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  size_t end;
  if (pos < header.size() && header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": malformed .npy shape: ", header));
    }
    ++end;
  } else if (pos < header.size() && header[pos] == '\'') {
    end = header.find('\'', pos + 1);
    if (end == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": malformed .npy header: ", header));
    }
    ++end;
  } else {
    end = header.find_first_of(",}", pos);
    if (end == std::string::npos) end = header.size();
  }
  return std::string(absl::StripAsciiWhitespace(header.substr(pos, end - pos)));
}

}  // namespace

absl::StatusOr<DatasetFormat> FormatFromPath(const std::string& path) {
  const std::string lower =
      absl::AsciiStrToLower(std::filesystem::path(path).filename().string());
  const absl::string_view name = absl::StripSuffix(lower, ".gz");
  if (absl::EndsWith(name, ".fvecs")) return DatasetFormat::kFvecs;
  if (absl::EndsWith(name, ".bvecs")) return DatasetFormat::kBvecs;
  if (absl::EndsWith(name, ".ivecs")) return DatasetFormat::kIvecs;
  if (absl::EndsWith(name, ".npy")) return DatasetFormat::kNpy;
  if (absl::EndsWith(name, ".idx") || absl::EndsWith(name, "-ubyte") ||
      absl::EndsWith(name, ".idx3") || absl::EndsWith(name, ".idx1")) {
    return DatasetFormat::kIdx;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot tell the format of '", path,
      "' from its name; expected .npy, .fvecs, .bvecs, .ivecs, .idx or *-ubyte (optionally "
      ".gz)"));
}

absl::StatusOr<FloatMatrix> LoadIdx(const std::string& path, int64_t limit) {
  ASSIGN_OR_RETURN(Reader reader, Reader::Open(path));
  unsigned char magic[4];
  RETURN_IF_ERROR(reader.ReadExact(magic, sizeof(magic), "idx magic"));
  ElementType type;
  switch (magic[2]) {
    case 0x08: type = ElementType::kUint8; break;
    case 0x09: type = ElementType::kInt8; break;
    case 0x0B: type = ElementType::kInt16; break;
    case 0x0C: type = ElementType::kInt32; break;
    case 0x0D: type = ElementType::kFloat32; break;
    case 0x0E: type = ElementType::kFloat64; break;
    default: type = ElementType::kUint8; magic[0] = 0xFF;  // Rejected below.
  }
  const int ndims = magic[3];
  if (magic[0] != 0 || magic[1] != 0 || ndims < 1 || ndims > 8) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: not an idx file: magic 0x%02x%02x%02x%02x; expected 0x0000TTNN with type TT in "
        "{08,09,0B,0C,0D,0E} and 1..8 dimensions NN",
        path, magic[0], magic[1], magic[2], magic[3]));
  }
  unsigned char dims_bytes[4 * 8];
  RETURN_IF_ERROR(reader.ReadExact(dims_bytes, 4 * ndims, "idx dimensions"));
  const int64_t rows = BigEndian32(dims_bytes);
  int64_t cols = 1;
  for (int i = 1; i < ndims; ++i) {
    cols *= BigEndian32(dims_bytes + 4 * i);
    if (cols > kMaxElements) break;
  }
  RETURN_IF_ERROR(CheckSize(path, rows, cols));
  FloatMatrix matrix;
  RETURN_IF_ERROR(ReadDense(reader, type, /*big_endian=*/true, ApplyLimit(rows, limit), cols,
                            &matrix));
  return matrix;
}

absl::StatusOr<FloatMatrix> LoadFvecs(const std::string& path, int64_t limit) {
  return LoadVecs<float>(path, ElementType::kFloat32, limit);
}

absl::StatusOr<FloatMatrix> LoadBvecs(const std::string& path, int64_t limit) {
  return LoadVecs<float>(path, ElementType::kUint8, limit);
}

absl::StatusOr<IntMatrix> LoadIvecs(const std::string& path, int64_t limit) {
  return LoadVecs<int32_t>(path, ElementType::kInt32, limit);
}

absl::StatusOr<FloatMatrix> LoadNpy(const std::string& path, int64_t limit) {
  ASSIGN_OR_RETURN(Reader reader, Reader::Open(path));
  unsigned char preamble[8];
  RETURN_IF_ERROR(reader.ReadExact(preamble, sizeof(preamble), ".npy magic"));
  if (std::memcmp(preamble, "\x93NUMPY", 6) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a .npy file: it does not start with \"\\x93NUMPY\""));
  }
  const int major = preamble[6];
  uint32_t header_size = 0;
  if (major == 1) {
    unsigned char b[2];
    RETURN_IF_ERROR(reader.ReadExact(b, 2, ".npy header length"));
    header_size = b[0] | (uint32_t{b[1]} << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    RETURN_IF_ERROR(reader.ReadExact(b, 4, ".npy header length"));
    header_size = b[0] | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unsupported .npy format version ", major, "; expected 1, 2 or 3"));
  }
  if (header_size > (1u << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": .npy header of ", header_size, " bytes is too long"));
  }
  std::string header(header_size, '\0');
  RETURN_IF_ERROR(reader.ReadExact(header.data(), header_size, ".npy header"));

  ASSIGN_OR_RETURN(std::string descr, NpyHeaderValue(path, header, "descr"));
  ASSIGN_OR_RETURN(std::string fortran, NpyHeaderValue(path, header, "fortran_order"));
  ASSIGN_OR_RETURN(std::string shape, NpyHeaderValue(path, header, "shape"));
  ElementType type;
  if (descr == "'<f4'") {
    type = ElementType::kFloat32;
  } else if (descr == "'<f8'") {
    type = ElementType::kFloat64;
  } else if (descr == "'|u1'" || descr == "'<u1'") {
    type = ElementType::kUint8;
  } else if (descr == "'|i1'" || descr == "'<i1'") {
    type = ElementType::kInt8;
  } else if (descr == "'<i4'") {
    type = ElementType::kInt32;
  } else if (descr == "'<i8'") {
    type = ElementType::kInt64;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": unsupported .npy dtype ", descr,
        "; expected little-endian '<f4', '<f8', '|u1', '|i1', '<i4' or '<i8'"));
  }
  if (fortran != "False") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": .npy array is in Fortran order; save it in C order (np.ascontiguousarray)"));
  }
  std::vector<int64_t> dims;
  std::string inner(absl::StripSuffix(absl::StripPrefix(shape, "("), ")"));
  for (absl::string_view part : absl::StrSplit(inner, ',', absl::SkipWhitespace())) {
    int64_t value;
    if (!absl::SimpleAtoi(part, &value) || value < 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": bad .npy shape ", shape));
    }
    dims.push_back(value);
  }
  int64_t rows;
  int64_t cols;
  if (dims.size() == 1) {
    rows = 1;
    cols = dims[0];
  } else if (dims.size() == 2) {
    rows = dims[0];
    cols = dims[1];
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": .npy shape ", shape, " has ", dims.size(),
                     " dimensions; expected 1 (one vector) or 2 (rows, cols)"));
  }
  RETURN_IF_ERROR(CheckSize(path, rows, cols));
  FloatMatrix matrix;
  RETURN_IF_ERROR(ReadDense(reader, type, /*big_endian=*/false, ApplyLimit(rows, limit), cols,
                            &matrix));
  return matrix;
}

absl::StatusOr<FloatMatrix> LoadDataset(const std::string& path, int64_t limit) {
  ASSIGN_OR_RETURN(DatasetFormat format, FormatFromPath(path));
  switch (format) {
    case DatasetFormat::kIdx:
      return LoadIdx(path, limit);
    case DatasetFormat::kFvecs:
      return LoadFvecs(path, limit);
    case DatasetFormat::kBvecs:
      return LoadBvecs(path, limit);
    case DatasetFormat::kNpy:
      return LoadNpy(path, limit);
    case DatasetFormat::kIvecs: {
      ASSIGN_OR_RETURN(IntMatrix ints, LoadIvecs(path, limit));
      FloatMatrix matrix;
      matrix.rows = ints.rows;
      matrix.cols = ints.cols;
      matrix.data.assign(ints.data.begin(), ints.data.end());
      return matrix;
    }
  }
  return absl::InternalError("unreachable");
}

}  // namespace nestor::client

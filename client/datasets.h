// Loaders for the vector file formats used by ANN benchmarks, into a row-major float
// matrix. Every loader returns a status instead of crashing on a bad file:
//   NOT_FOUND         the file cannot be opened;
//   INVALID_ARGUMENT  not the expected format: wrong magic, unsupported element type or
//                     layout, a non-positive or inconsistent dimension, an unknown
//                     extension;
//   DATA_LOSS         the file ends before the data its header promises (truncated),
//                     or a gzip stream is corrupt.
// Formats:
//   idx    (MNIST, LeCun et al.): big-endian header, magic 0x0000TTNN with element type
//          TT (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
//          and NN dimensions; rows = first dimension, cols = product of the rest.
//   fvecs / bvecs / ivecs (TEXMEX, Jégou et al.): per row a little-endian int32 d, then
//          d float32 / uint8 / int32 values; every row must have the same d.
//   npy    (NumPy format v1-v3): little-endian '<f4', '<f8', '|u1', '<i4' (and '|i1',
//          '<i8'), C order, 1-D (one row) or 2-D.
// All files may be gzip-compressed (zlib reads plain files transparently).
#ifndef NESTOR_CLIENT_DATASETS_H_
#define NESTOR_CLIENT_DATASETS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace nestor::client {

// rows × cols values, row-major: element (i, j) is data[i * cols + j].
template <typename T>
struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<T> data;

  const T* row(int64_t i) const { return data.data() + i * cols; }
  T* row(int64_t i) { return data.data() + i * cols; }
};
using FloatMatrix = Matrix<float>;
using IntMatrix = Matrix<int32_t>;

enum class DatasetFormat { kIdx, kFvecs, kBvecs, kIvecs, kNpy };

// Guesses the format from the file name: *.fvecs, *.bvecs, *.ivecs, *.npy, and idx for
// *.idx, *-ubyte, *.idx3-ubyte, *.idx1-ubyte (a trailing .gz is ignored).
// INVALID_ARGUMENT for anything else.
absl::StatusOr<DatasetFormat> FormatFromPath(const std::string& path);

// `limit` > 0 reads only the first `limit` rows (0 reads all).
absl::StatusOr<FloatMatrix> LoadIdx(const std::string& path, int64_t limit = 0);
absl::StatusOr<FloatMatrix> LoadFvecs(const std::string& path, int64_t limit = 0);
absl::StatusOr<FloatMatrix> LoadBvecs(const std::string& path, int64_t limit = 0);
// ivecs as integers (ground-truth neighbour ids); LoadDataset converts them to float.
absl::StatusOr<IntMatrix> LoadIvecs(const std::string& path, int64_t limit = 0);
absl::StatusOr<FloatMatrix> LoadNpy(const std::string& path, int64_t limit = 0);

// Loads any of the formats above, chosen by FormatFromPath.
absl::StatusOr<FloatMatrix> LoadDataset(const std::string& path, int64_t limit = 0);

}  // namespace nestor::client

#endif  // NESTOR_CLIENT_DATASETS_H_

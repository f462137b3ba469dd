#include "client/datasets.h"

#include <unistd.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/test_files.h"
#include "tests/testing/status_matchers.h"

namespace nestor::client {
namespace {

using ::nestor::client::testing::Idx3Bytes;
using ::nestor::client::testing::NpyBytes;
using ::nestor::client::testing::TempPath;
using ::nestor::client::testing::VecsBytes;
using ::nestor::client::testing::WriteBytes;
using ::nestor::client::testing::WriteGzip;
using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::testing::ElementsAre;

TEST(DatasetsTest, FvecsRoundTripsExactly) {
  const std::string path = TempPath("a.fvecs");
  WriteBytes(path, VecsBytes<float>({{1.5f, -2.0f, 3.25f}, {0.0f, 1e-3f, -7.0f}}));
  absl::StatusOr<FloatMatrix> m = LoadFvecs(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 3);
  EXPECT_THAT(m->data, ElementsAre(1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f));
}

TEST(DatasetsTest, FvecsLimitReadsFirstRows) {
  const std::string path = TempPath("a.fvecs");
  WriteBytes(path, VecsBytes<float>({{1, 2}, {3, 4}, {5, 6}}));
  absl::StatusOr<FloatMatrix> m = LoadDataset(path, 2);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_THAT(m->data, ElementsAre(1, 2, 3, 4));
}

TEST(DatasetsTest, GzippedFvecsRoundTrips) {
  const std::string path = TempPath("a.fvecs.gz");
  WriteGzip(path, VecsBytes<float>({{1, 2}, {3, 4}}));
  absl::StatusOr<FloatMatrix> m = LoadDataset(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->data, ElementsAre(1, 2, 3, 4));
}

TEST(DatasetsTest, BvecsRoundTripsAsFloats) {
  const std::string path = TempPath("a.bvecs");
  WriteBytes(path, VecsBytes<uint8_t>({{0, 128, 255}, {1, 2, 3}}));
  absl::StatusOr<FloatMatrix> m = LoadDataset(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 3);
  EXPECT_THAT(m->data, ElementsAre(0, 128, 255, 1, 2, 3));
}

TEST(DatasetsTest, IvecsRoundTripsAsIntegers) {
  const std::string path = TempPath("gt.ivecs");
  WriteBytes(path, VecsBytes<int32_t>({{7, 8, 9, 10}, {-1, 0, 2147483647, 5}}));
  absl::StatusOr<IntMatrix> m = LoadIvecs(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 4);
  EXPECT_THAT(m->data, ElementsAre(7, 8, 9, 10, -1, 0, 2147483647, 5));
}

TEST(DatasetsTest, NpyFloat32TwoDimensional) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<float>("<f4", "(2, 3)", {1, 2, 3, 4, 5, 6.5f}));
  absl::StatusOr<FloatMatrix> m = LoadDataset(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 3);
  EXPECT_THAT(m->data, ElementsAre(1, 2, 3, 4, 5, 6.5f));
}

TEST(DatasetsTest, NpyFloat64IsConvertedToFloat) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<double>("<f8", "(3, 1)", {0.25, -1.5, 1e10}));
  absl::StatusOr<FloatMatrix> m = LoadNpy(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 3);
  EXPECT_EQ(m->cols, 1);
  EXPECT_THAT(m->data, ElementsAre(0.25f, -1.5f, 1e10f));
}

TEST(DatasetsTest, NpyUint8OneDimensionalIsOneRow) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<uint8_t>("|u1", "(4,)", {0, 9, 200, 255}));
  absl::StatusOr<FloatMatrix> m = LoadNpy(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 1);
  EXPECT_EQ(m->cols, 4);
  EXPECT_THAT(m->data, ElementsAre(0, 9, 200, 255));
}

TEST(DatasetsTest, NpyInt32) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<int32_t>("<i4", "(2, 2)", {-3, 4, 100000, 0}));
  absl::StatusOr<FloatMatrix> m = LoadNpy(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->data, ElementsAre(-3, 4, 100000, 0));
}

TEST(DatasetsTest, IdxPlainRoundTrips) {
  const std::string path = TempPath("train-images-idx3-ubyte");
  WriteBytes(path, Idx3Bytes(2, 2, 3, {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}));
  absl::StatusOr<FloatMatrix> m = LoadDataset(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 6);
  EXPECT_THAT(m->data, ElementsAre(0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255));
}

TEST(DatasetsTest, IdxGzipRoundTripsWithLimit) {
  const std::string path = TempPath("t10k-images-idx3-ubyte.gz");
  WriteGzip(path, Idx3Bytes(3, 1, 2, {1, 2, 3, 4, 5, 6}));
  absl::StatusOr<FloatMatrix> m = LoadDataset(path, 2);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 2);
  EXPECT_EQ(m->cols, 2);
  EXPECT_THAT(m->data, ElementsAre(1, 2, 3, 4));
}

TEST(DatasetsTest, FashionMnistTrainIfInstalled) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (access(path.c_str(), R_OK) != 0) GTEST_SKIP() << path << " not installed";
  absl::StatusOr<FloatMatrix> m = LoadDataset(path);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->rows, 10000);
  EXPECT_EQ(m->cols, 784);
}

TEST(DatasetsTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadDataset("/nonexistent/nestor/x.fvecs"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(DatasetsTest, UnknownExtensionIsInvalidArgument) {
  const std::string path = TempPath("a.csv");
  WriteBytes(path, "1,2,3\n");
  EXPECT_THAT(LoadDataset(path), StatusIs(absl::StatusCode::kInvalidArgument, ".npy"));
}

TEST(DatasetsTest, TruncatedFvecsIsDataLoss) {
  const std::string path = TempPath("a.fvecs");
  std::string bytes = VecsBytes<float>({{1, 2, 3}, {4, 5, 6}});
  bytes.resize(bytes.size() - 2);
  WriteBytes(path, bytes);
  EXPECT_THAT(LoadFvecs(path), StatusIs(absl::StatusCode::kDataLoss, "truncated"));
}

TEST(DatasetsTest, FvecsEndingInsideDimensionFieldIsDataLoss) {
  const std::string path = TempPath("a.fvecs");
  WriteBytes(path, VecsBytes<float>({{1, 2}}) + std::string("\x02\x00", 2));
  EXPECT_THAT(LoadFvecs(path), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(DatasetsTest, InconsistentFvecsDimensionsAreInvalidArgument) {
  const std::string path = TempPath("a.fvecs");
  WriteBytes(path, VecsBytes<float>({{1, 2, 3}, {4, 5}}));
  EXPECT_THAT(LoadFvecs(path),
              StatusIs(absl::StatusCode::kInvalidArgument, "inconsistent dimensions"));
}

TEST(DatasetsTest, NegativeFvecsDimensionIsInvalidArgument) {
  const std::string path = TempPath("a.fvecs");
  std::string bytes;
  testing::Append<int32_t>(&bytes, -4);
  testing::Append<float>(&bytes, 1);
  WriteBytes(path, bytes);
  EXPECT_THAT(LoadFvecs(path), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DatasetsTest, EmptyFvecsIsInvalidArgument) {
  const std::string path = TempPath("a.fvecs");
  WriteBytes(path, "");
  EXPECT_THAT(LoadFvecs(path), StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
}

TEST(DatasetsTest, NpyWrongMagicIsInvalidArgument) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, "PK\x03\x04 this is a zip, not an npy file");
  EXPECT_THAT(LoadNpy(path), StatusIs(absl::StatusCode::kInvalidArgument, "not a .npy"));
}

TEST(DatasetsTest, TruncatedNpyIsDataLoss) {
  const std::string path = TempPath("a.npy");
  std::string bytes = NpyBytes<float>("<f4", "(2, 3)", {1, 2, 3, 4, 5, 6});
  bytes.resize(bytes.size() - 4);
  WriteBytes(path, bytes);
  EXPECT_THAT(LoadNpy(path), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(DatasetsTest, NpyUnsupportedDtypeIsInvalidArgument) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<uint16_t>("<f2", "(2,)", {1, 2}));
  EXPECT_THAT(LoadNpy(path), StatusIs(absl::StatusCode::kInvalidArgument, "<f2"));
}

TEST(DatasetsTest, NpyBigEndianIsInvalidArgument) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<float>(">f4", "(1, 2)", {1, 2}));
  EXPECT_THAT(LoadNpy(path), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DatasetsTest, NpyFortranOrderIsInvalidArgument) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<float>("<f4", "(2, 2)", {1, 2, 3, 4}, "True"));
  EXPECT_THAT(LoadNpy(path), StatusIs(absl::StatusCode::kInvalidArgument, "Fortran"));
}

TEST(DatasetsTest, NpyThreeDimensionalIsInvalidArgument) {
  const std::string path = TempPath("a.npy");
  WriteBytes(path, NpyBytes<float>("<f4", "(1, 2, 2)", {1, 2, 3, 4}));
  EXPECT_THAT(LoadNpy(path), StatusIs(absl::StatusCode::kInvalidArgument, "dimensions"));
}

TEST(DatasetsTest, IdxWrongMagicIsInvalidArgument) {
  const std::string path = TempPath("x-ubyte");
  std::string bytes = Idx3Bytes(1, 1, 2, {1, 2});
  bytes[0] = 0x1f;
  WriteBytes(path, bytes);
  EXPECT_THAT(LoadIdx(path), StatusIs(absl::StatusCode::kInvalidArgument, "not an idx"));
}

TEST(DatasetsTest, TruncatedIdxIsDataLoss) {
  const std::string path = TempPath("x-ubyte");
  std::string bytes = Idx3Bytes(2, 2, 2, {1, 2, 3, 4, 5, 6, 7, 8});
  bytes.resize(bytes.size() - 3);
  WriteBytes(path, bytes);
  EXPECT_THAT(LoadIdx(path), StatusIs(absl::StatusCode::kDataLoss, "truncated"));
}

TEST(DatasetsTest, TruncatedGzipIdxIsDataLoss) {
  const std::string plain = TempPath("full.gz");
  WriteGzip(plain, Idx3Bytes(50, 10, 10, std::vector<uint8_t>(5000, 7)));
  std::ifstream in(plain, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(bytes.size() / 2);
  const std::string path = TempPath("cut-idx3-ubyte.gz");
  WriteBytes(path, bytes);
  EXPECT_THAT(LoadDataset(path), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(DatasetsTest, HugeIdxHeaderIsRejectedWithoutAllocating) {
  const std::string path = TempPath("huge-ubyte");
  WriteBytes(path, Idx3Bytes(0xFFFFFFFF, 0xFFFF, 0xFFFF, {1, 2, 3}));
  EXPECT_THAT(LoadIdx(path), StatusIs(absl::StatusCode::kInvalidArgument, "exceeds"));
}

TEST(DatasetsTest, FormatFromPathKnowsTheExtensions) {
  EXPECT_EQ(*FormatFromPath("/a/b.fvecs"), DatasetFormat::kFvecs);
  EXPECT_EQ(*FormatFromPath("b.BVECS"), DatasetFormat::kBvecs);
  EXPECT_EQ(*FormatFromPath("gt.ivecs.gz"), DatasetFormat::kIvecs);
  EXPECT_EQ(*FormatFromPath("x.npy"), DatasetFormat::kNpy);
  EXPECT_EQ(*FormatFromPath("train-images-idx3-ubyte.gz"), DatasetFormat::kIdx);
  EXPECT_EQ(*FormatFromPath("data.idx"), DatasetFormat::kIdx);
  EXPECT_THAT(FormatFromPath("x.txt"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace nestor::client

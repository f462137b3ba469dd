// Index::Save / LoadIndex round trips and damaged snapshots (index/persistence.h).
#include "index/persistence.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/exact_index.h"
#include "index/index_factory.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

constexpr int kDim = 16;

class PersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("nestor_persistence_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string file() const { return (dir_ / std::string(kSnapshotFileName)).string(); }

  std::string ReadBytes() const {
    std::ifstream in(file(), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteBytes(const std::string& bytes) const {
    std::ofstream out(file(), std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  // An index of the given kind holding 600 vectors (built when partitioned).
  std::unique_ptr<Index> MakeFilled(int num_partitions, Metric metric, bool build) {
    IndexOptions options;
    options.dimension = kDim;
    options.metric = metric;
    options.num_partitions = num_partitions;
    options.default_partitions_to_search = num_partitions > 0 ? 3 : 0;
    options.seed = 77;
    auto index = CreateIndex(options);
    EXPECT_THAT(index, IsOk());
    EXPECT_THAT((*index)->Upsert(testing::SequentialIds(600, 10),
                                 testing::ClusteredVectors(600, kDim, 20, 0.2f, 4)),
                IsOk());
    EXPECT_THAT((*index)->Remove({10, 11, 12}), IsOk());  // exercise swapped rows
    if (build) {
      EXPECT_THAT((*index)->Build(), IsOk());
    }
    return std::move(index).value();
  }

  std::filesystem::path dir_;
};

void ExpectSameResults(const Index& a, const Index& b) {
  const std::vector<float> queries = testing::ClusteredVectors(50, kDim, 20, 0.2f, 6);
  for (int prefix : {0, 5}) {
    SearchParams params;
    params.k = 7;
    params.prefix_dim = prefix;
    auto ra = a.Search(queries, params);
    auto rb = b.Search(queries, params);
    ASSERT_THAT(ra, IsOk());
    ASSERT_THAT(rb, IsOk());
    EXPECT_EQ(*ra, *rb);  // ids and distances bit for bit
  }
}

TEST_F(PersistenceTest, ExactRoundTripGivesIdenticalResults) {
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto index = MakeFilled(0, metric, false);
    ASSERT_THAT(index->Save(dir_.string()), IsOk());
    auto loaded = LoadIndex(dir_.string());
    ASSERT_THAT(loaded, IsOk());
    EXPECT_EQ((*loaded)->size(), index->size());
    EXPECT_EQ((*loaded)->metric(), metric);
    EXPECT_EQ((*loaded)->stats().kind, "exact");
    EXPECT_EQ(*(*loaded)->GetVector(500), *index->GetVector(500));
    ExpectSameResults(*index, **loaded);
  }
}

// CreateIndex refuses an exact index a ladder, routing_dim and reorder_k; snapshots of
// exact indexes written before it did keep loading, with the options they were saved
// with (the ladder still limits prefix_dim, as it did).
TEST_F(PersistenceTest, ExactSnapshotWithPartitionedOnlyOptionsStillLoads) {
  IndexOptions options;
  options.dimension = kDim;
  options.matryoshka_dims = {4, 8, kDim};
  options.routing_dim = 8;
  options.reorder_k = 30;
  EXPECT_THAT(CreateIndex(options), StatusIs(absl::StatusCode::kInvalidArgument));
  ExactIndex old(options);  // as CreateIndex made it before the check
  ASSERT_THAT(old.Upsert(testing::SequentialIds(100), testing::RandomVectors(100, kDim, 3)),
              IsOk());
  ASSERT_THAT(old.Save(dir_.string()), IsOk());
  auto loaded = LoadIndex(dir_.string());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->stats().kind, "exact");
  EXPECT_EQ((*loaded)->size(), 100u);
  EXPECT_THAT((*loaded)->options().matryoshka_dims, ::testing::ElementsAre(4, 8, kDim));
  EXPECT_EQ((*loaded)->options().routing_dim, 8);
  EXPECT_EQ((*loaded)->options().reorder_k, 30);
  const std::vector<float> query = testing::RandomVectors(1, kDim, 4);
  SearchParams params;
  params.prefix_dim = 8;
  EXPECT_THAT((*loaded)->Search(query, params), IsOk());
  params.prefix_dim = 5;
  EXPECT_THAT((*loaded)->Search(query, params),
              StatusIs(absl::StatusCode::kInvalidArgument, "prefix_dim 5 is not in"));
}

TEST_F(PersistenceTest, PartitionedRoundTripGivesIdenticalResults) {
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto index = MakeFilled(8, metric, true);
    ASSERT_THAT(index->Save(dir_.string()), IsOk());
    auto loaded = LoadIndex(dir_.string());
    ASSERT_THAT(loaded, IsOk());
    const IndexStats before = index->stats();
    const IndexStats after = (*loaded)->stats();
    EXPECT_EQ(after.kind, "partitioned");
    EXPECT_TRUE(after.built);
    EXPECT_EQ(after.vector_count, before.vector_count);
    EXPECT_EQ(after.build_seconds, before.build_seconds);
    EXPECT_EQ((*loaded)->options().default_partitions_to_search, 3);
    EXPECT_EQ((*loaded)->options().seed, 77u);
    ExpectSameResults(*index, **loaded);
    // The loaded index keeps accepting writes like the original.
    const std::vector<float> v = testing::RandomVectors(1, kDim, 12);
    ASSERT_THAT(index->Upsert({5000}, v), IsOk());
    ASSERT_THAT((*loaded)->Upsert({5000}, v), IsOk());
    ExpectSameResults(*index, **loaded);
  }
}

// A loaded index holds (and reports) exactly the memory of the built one it was saved
// from: int8 codes, a ladder's per-prefix norms and blocks, partitions under 16 rows.
// Before, load-time growth left slack that made bytes_per_vector 0.25% higher.
TEST_F(PersistenceTest, LoadedIndexReportsTheMemoryOfTheSavedOne) {
  IndexOptions options;
  options.dimension = kDim;
  options.num_partitions = 60;  // 10 rows per partition on average
  options.code_type = CodeType::kInt8;
  options.matryoshka_dims = {4, 8};
  auto index = CreateIndex(options);
  ASSERT_THAT(index, IsOk());
  ASSERT_THAT((*index)->Upsert(testing::SequentialIds(600, 10),
                               testing::ClusteredVectors(600, kDim, 20, 0.2f, 4)),
              IsOk());
  ASSERT_THAT((*index)->Build(), IsOk());
  ASSERT_THAT((*index)->Save(dir_.string()), IsOk());
  auto loaded = LoadIndex(dir_.string());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->stats().memory_bytes, (*index)->stats().memory_bytes);
  EXPECT_GT((*index)->stats().memory_bytes, 600u * kDim * sizeof(float));
}

TEST_F(PersistenceTest, UnbuiltPartitionedRoundTripStaysUnbuilt) {
  auto index = MakeFilled(8, Metric::kL2, false);
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  auto loaded = LoadIndex(dir_.string());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_FALSE((*loaded)->stats().built);
  EXPECT_EQ((*loaded)->size(), 597u);
  ASSERT_THAT((*loaded)->Build(), IsOk());
  ASSERT_THAT(index->Build(), IsOk());
  ExpectSameResults(*index, **loaded);  // same seed, same data order: same partitions
}

TEST_F(PersistenceTest, SaveOverwritesAtomicallyAndLeavesNoTemporaries) {
  auto index = MakeFilled(0, Metric::kL2, false);
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  ASSERT_THAT(index->Remove({500}), IsOk());
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(entry.path().filename().string(), std::string(kSnapshotFileName));
  }
  EXPECT_EQ(files, 1u);
  auto loaded = LoadIndex(dir_.string());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->size(), 596u);
}

// Offset of the query defaults (version >= 4) in a snapshot with an empty Matryoshka ladder:
// magic, version, kind, 5 x i32 (dimension .. training_iters), seed, 3 x i32
// (max_train_pts, code_type, reorder_k), ladder count, routing_dim, pca_rotation, built,
// build_seconds (see index/persistence.h).
constexpr size_t kQueryDefaultsOffset = 8 + 4 + 4 + 5 * 4 + 8 + 3 * 4 + 4 + 4 + 1 + 1 + 8;
static_assert(kQueryDefaultsOffset == 74);
// Bytes of the query defaults: 4 x i32 (version 4) and max_codes, i64 (version 5).
constexpr size_t kQueryDefaultsV4Bytes = 4 * 4;
constexpr size_t kQueryDefaultsBytes = kQueryDefaultsV4Bytes + 8;

// Rewrites a current-version snapshot as version `version` by removing `length` bytes at
// `offset`, with a consistent CRC.
std::string Downgrade(std::string bytes, uint8_t version, size_t offset, size_t length) {
  bytes.erase(offset, length);
  bytes[kSnapshotMagic.size()] = static_cast<char>(version);
  bytes.resize(bytes.size() - 4);
  FinishSnapshot(&bytes);
  return bytes;
}

TEST_F(PersistenceTest, QueryDefaultsRoundTripInTheSnapshot) {
  auto index = MakeFilled(8, Metric::kL2, true);
  const SavedQueryDefaults saved{.partitions_to_search = 5,
                                 .reorder_k = 30,
                                 .shortlist_dim = 8,
                                 .shortlist_size = 40,
                                 .max_codes = int64_t{3} << 33};  // needs all 64 bits
  ASSERT_THAT(index->Save(dir_.string(), saved), IsOk());
  SavedQueryDefaults loaded_defaults;
  auto loaded = LoadIndex(dir_.string(), &loaded_defaults);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded_defaults, saved);
  ExpectSameResults(*index, **loaded);
  // The defaults sit where the format says.
  const std::string bytes = ReadBytes();
  int32_t stored[4];
  std::memcpy(stored, bytes.data() + kQueryDefaultsOffset, sizeof(stored));
  EXPECT_EQ(stored[0], 5);
  EXPECT_EQ(stored[1], 30);
  EXPECT_EQ(stored[2], 8);
  EXPECT_EQ(stored[3], 40);
  int64_t stored_max_codes = 0;
  std::memcpy(&stored_max_codes, bytes.data() + kQueryDefaultsOffset + kQueryDefaultsV4Bytes,
              sizeof(stored_max_codes));
  EXPECT_EQ(stored_max_codes, int64_t{3} << 33);
  // A save without defaults stores none.
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  loaded = LoadIndex(dir_.string(), &loaded_defaults);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded_defaults, SavedQueryDefaults{});
}

TEST_F(PersistenceTest, VersionThreeSnapshotLoadsWithoutQueryDefaults) {
  auto index = MakeFilled(8, Metric::kL2, true);
  ASSERT_THAT(index->Save(dir_.string(),
                          {.partitions_to_search = 5, .reorder_k = 30, .max_codes = 100}),
              IsOk());
  WriteBytes(Downgrade(ReadBytes(), 3, kQueryDefaultsOffset, kQueryDefaultsBytes));
  SavedQueryDefaults loaded_defaults{.partitions_to_search = 99};
  auto loaded = LoadIndex(dir_.string(), &loaded_defaults);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded_defaults, SavedQueryDefaults{});
  ExpectSameResults(*index, **loaded);
}

// Version 4 stored the four int32 defaults but no max_codes: they load, max_codes 0.
TEST_F(PersistenceTest, VersionFourSnapshotLoadsWithoutMaxCodes) {
  auto index = MakeFilled(8, Metric::kL2, true);
  ASSERT_THAT(index->Save(dir_.string(), {.partitions_to_search = 5,
                                          .reorder_k = 30,
                                          .shortlist_dim = 8,
                                          .shortlist_size = 40,
                                          .max_codes = 2196}),
              IsOk());
  WriteBytes(Downgrade(ReadBytes(), 4, kQueryDefaultsOffset + kQueryDefaultsV4Bytes,
                       kQueryDefaultsBytes - kQueryDefaultsV4Bytes));
  SavedQueryDefaults loaded_defaults{.max_codes = 99};
  auto loaded = LoadIndex(dir_.string(), &loaded_defaults);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded_defaults, (SavedQueryDefaults{.partitions_to_search = 5,
                                                 .reorder_k = 30,
                                                 .shortlist_dim = 8,
                                                 .shortlist_size = 40,
                                                 .max_codes = 0}));
  ExpectSameResults(*index, **loaded);
}

TEST_F(PersistenceTest, NegativeQueryDefaultIsRejectedOnSaveAndDataLossOnLoad) {
  auto index = MakeFilled(8, Metric::kL2, true);
  EXPECT_THAT(index->Save(dir_.string(), {.reorder_k = -1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "saved query default reorder_k must be >= 0 (0 = unset), got -1"));
  EXPECT_FALSE(std::filesystem::exists(file()));
  ASSERT_THAT(index->Save(dir_.string(), {.partitions_to_search = 5}), IsOk());
  std::string bytes = ReadBytes();
  const int32_t negative = -7;
  std::memcpy(bytes.data() + kQueryDefaultsOffset + 12, &negative, sizeof(negative));
  bytes.resize(bytes.size() - 4);
  FinishSnapshot(&bytes);  // a consistent CRC: only the value is wrong
  WriteBytes(bytes);
  EXPECT_THAT(LoadIndex(dir_.string()),
              StatusIs(absl::StatusCode::kDataLoss, "shortlist_size must be >= 0"));

  EXPECT_THAT(index->Save(dir_.string(), {.max_codes = -1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "saved query default max_codes must be >= 0 (0 = unset), got -1"));
  ASSERT_THAT(index->Save(dir_.string(), {.partitions_to_search = 5, .max_codes = 64}), IsOk());
  bytes = ReadBytes();
  const int64_t negative_codes = -64;
  std::memcpy(bytes.data() + kQueryDefaultsOffset + kQueryDefaultsV4Bytes, &negative_codes,
              sizeof(negative_codes));
  bytes.resize(bytes.size() - 4);
  FinishSnapshot(&bytes);
  WriteBytes(bytes);
  EXPECT_THAT(LoadIndex(dir_.string()),
              StatusIs(absl::StatusCode::kDataLoss, "max_codes must be >= 0"));
}

TEST_F(PersistenceTest, MissingSnapshotIsNotFound) {
  EXPECT_THAT(LoadIndex(dir_.string()), StatusIs(absl::StatusCode::kNotFound));
  std::filesystem::create_directories(dir_);
  EXPECT_THAT(LoadIndex(dir_.string()), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PersistenceTest, TruncatedSnapshotIsDataLoss) {
  auto index = MakeFilled(8, Metric::kL2, true);
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  const std::string bytes = ReadBytes();
  for (size_t keep : {size_t{0}, size_t{5}, size_t{12}, size_t{40}, bytes.size() / 2,
                      bytes.size() - 1}) {
    WriteBytes(bytes.substr(0, keep));
    EXPECT_THAT(LoadIndex(dir_.string()), StatusIs(absl::StatusCode::kDataLoss))
        << "kept " << keep << " bytes";
  }
}

TEST_F(PersistenceTest, CorruptSnapshotIsDataLoss) {
  auto index = MakeFilled(0, Metric::kCosine, false);
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  const std::string bytes = ReadBytes();
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;  // a bit inside the vectors
  WriteBytes(flipped);
  EXPECT_THAT(LoadIndex(dir_.string()), StatusIs(absl::StatusCode::kDataLoss, "CRC32"));
  std::string magic = bytes;
  magic[0] = 'X';
  WriteBytes(magic);
  EXPECT_THAT(LoadIndex(dir_.string()), StatusIs(absl::StatusCode::kDataLoss, "magic"));
  WriteBytes(bytes + "junk");
  EXPECT_THAT(LoadIndex(dir_.string()), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(PersistenceTest, UnknownFormatVersionIsDataLoss) {
  auto index = MakeFilled(0, Metric::kL2, false);
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  std::string bytes = ReadBytes();
  bytes[kSnapshotMagic.size()] = 9;  // version 9, CRC recomputed so only the version is wrong
  bytes.resize(bytes.size() - 4);
  FinishSnapshot(&bytes);
  WriteBytes(bytes);
  EXPECT_THAT(LoadIndex(dir_.string()),
              StatusIs(absl::StatusCode::kDataLoss, "unknown snapshot format version 9"));
}

TEST_F(PersistenceTest, ByteReaderRejectsReadsPastTheEnd) {
  std::string out;
  ByteWriter writer(&out);
  writer.Put<uint32_t>(7);
  writer.Put<double>(1.5);
  ByteReader reader(out);
  uint32_t a = 0;
  double b = 0;
  ASSERT_THAT(reader.Get(&a), IsOk());
  ASSERT_THAT(reader.Get(&b), IsOk());
  EXPECT_EQ(a, 7u);
  EXPECT_EQ(b, 1.5);
  EXPECT_THAT(reader.CheckFullyRead(), IsOk());
  EXPECT_THAT(reader.Get(&a), StatusIs(absl::StatusCode::kDataLoss, "truncated"));
  EXPECT_THAT(reader.CheckAvailable(1, 4), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace nestor

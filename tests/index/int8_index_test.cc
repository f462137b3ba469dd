// Partitioned index with int8 codes and exact reorder (IndexOptions.code_type = kInt8).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "index/persistence.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::Ids;
using ::nestor::testing::IsOk;
using ::nestor::testing::MustSearch;
using ::nestor::testing::StatusIs;
using ::testing::SizeIs;

constexpr int kDim = 32;
constexpr size_t kRows = 5000;
constexpr size_t kQueries = 200;
constexpr int kPartitions = 64;

std::unique_ptr<Index> Make(Metric metric, int num_partitions, CodeType code_type,
                            int reorder_k = 0) {
  IndexOptions options = testing::PartitionedOptions(kDim, metric, num_partitions, code_type);
  options.reorder_k = reorder_k;
  return testing::MustCreate(options);
}

void ExpectSameAsExact(const std::vector<std::vector<Neighbor>>& got,
                       const std::vector<std::vector<Neighbor>>& truth) {
  ASSERT_THAT(got, SizeIs(truth.size()));
  for (size_t q = 0; q < truth.size(); ++q) {
    EXPECT_EQ(Ids(got[q]), Ids(truth[q])) << "query " << q;
    for (size_t i = 0; i < std::min(got[q].size(), truth[q].size()); ++i) {
      EXPECT_NEAR(got[q][i].distance, truth[q][i].distance, 1e-4);
    }
  }
}

// Seeded clustered data (as partitioned_index_test.cc): 5,000 x 32, 200 queries.
class Int8IndexTest : public ::testing::TestWithParam<Metric> {
 protected:
  void SetUp() override {
    const std::vector<float> all =
        testing::ClusteredVectors(kRows + kQueries, kDim, 100, 0.15f, 99);
    data_.assign(all.begin(), all.begin() + kRows * kDim);
    queries_.assign(all.begin() + kRows * kDim, all.end());
    ids_ = testing::SequentialIds(kRows, 1);
    exact_ = Make(GetParam(), 0, CodeType::kFloat);
    flat_ = Make(GetParam(), kPartitions, CodeType::kFloat);
    int8_ = Make(GetParam(), kPartitions, CodeType::kInt8);
    for (Index* index : {exact_.get(), flat_.get(), int8_.get()}) {
      ASSERT_THAT(index->Upsert(ids_, data_), IsOk());
      ASSERT_THAT(index->Build(), IsOk());
    }
  }

  std::vector<float> data_, queries_;
  std::vector<DatapointId> ids_;
  std::unique_ptr<Index> exact_, flat_, int8_;
};

TEST_P(Int8IndexTest, AllPartitionsAndFullReorderEqualsExact) {
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = kPartitions;
  params.reorder_k = static_cast<int>(kRows);
  const auto truth = MustSearch(*exact_, queries_, params);
  ExpectSameAsExact(MustSearch(*int8_, queries_, params), truth);
  params.num_threads = 2;  // the batched (sgemm) centroid path
  ExpectSameAsExact(MustSearch(*int8_, queries_, params), truth);
}

TEST_P(Int8IndexTest, RecallWithModestReorderIsWithinOnePointOfFloat) {
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = 8;
  params.reorder_k = 30;
  const auto truth = MustSearch(*exact_, queries_, params);
  const double flat = testing::Recall(MustSearch(*flat_, queries_, params), truth);
  const double int8 = testing::Recall(MustSearch(*int8_, queries_, params), truth);
  EXPECT_GE(int8, flat - 0.01) << MetricName(GetParam());
  // The default reorder (kDefaultReorderFactor * k) as well.
  params.reorder_k = 0;
  EXPECT_GE(testing::Recall(MustSearch(*int8_, queries_, params), truth), flat - 0.01);
}

TEST_P(Int8IndexTest, ReorderBelowKStillReturnsK) {
  SearchParams params;
  params.k = 10;
  params.reorder_k = 1;
  for (const auto& list : MustSearch(*int8_, queries_, params)) EXPECT_THAT(list, SizeIs(10));
}

TEST_P(Int8IndexTest, PrefixQueriesUseTheFloatScan) {
  SearchParams params;
  params.k = 10;
  params.prefix_dim = 8;
  params.partitions_to_search = kPartitions;
  ExpectSameAsExact(MustSearch(*int8_, queries_, params), MustSearch(*exact_, queries_, params));
}

TEST_P(Int8IndexTest, UpsertAndRemoveAfterBuildMatchExact) {
  // Replace 300 vectors (some far outside the trained range, so codes clamp), add 200 new
  // ones and remove 250.
  std::vector<float> moved = testing::RandomVectors(300, kDim, 5);
  for (size_t i = 0; i < 30; ++i) moved[i * kDim] *= 10.0f;
  std::vector<DatapointId> moved_ids;
  for (size_t i = 0; i < 300; ++i) moved_ids.push_back(1 + i * 7);
  const std::vector<float> fresh = testing::ClusteredVectors(200, kDim, 10, 0.2f, 6);
  const std::vector<DatapointId> fresh_ids = testing::SequentialIds(200, 100000);
  std::vector<DatapointId> removed;
  for (size_t i = 0; i < 250; ++i) removed.push_back(3 + i * 11);
  for (Index* index : {exact_.get(), int8_.get()}) {
    ASSERT_THAT(index->Upsert(moved_ids, moved), IsOk());
    ASSERT_THAT(index->Upsert(fresh_ids, fresh), IsOk());
    ASSERT_THAT(index->Remove(removed), IsOk());
  }
  EXPECT_EQ(int8_->size(), exact_->size());
  SearchParams params;
  params.k = 10;
  params.partitions_to_search = kPartitions;
  params.reorder_k = 100000;
  ExpectSameAsExact(MustSearch(*int8_, queries_, params), MustSearch(*exact_, queries_, params));
  auto v = int8_->GetVector(moved_ids[3]);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, std::vector<float>(moved.begin() + 3 * kDim, moved.begin() + 4 * kDim));
}

TEST_P(Int8IndexTest, StatsNameCodesAndKernels) {
  const IndexStats stats = int8_->stats();
  EXPECT_EQ(stats.code_type, "int8");
  EXPECT_THAT(stats.simd_path, ::testing::AnyOf("portable", "avx2", "avx512"));
  EXPECT_GT(stats.memory_bytes, flat_->stats().memory_bytes);  // floats + codes
  EXPECT_EQ(flat_->stats().code_type, "float");
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, Int8IndexTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine),
                         [](const auto& info) { return std::string(MetricName(info.param)); });

TEST(Int8OptionsTest, NegativeReorderKIsInvalidArgument) {
  IndexOptions options;
  options.dimension = 4;
  options.num_partitions = 2;
  options.reorder_k = -1;
  EXPECT_THAT(CreateIndex(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "reorder_k must be in [0, 1000000] (0 = 4 * k), "
                                             "got -1"));
  options.reorder_k = kMaxCandidates + 1;
  EXPECT_THAT(CreateIndex(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "reorder_k must be in [0, 1000000]"));
  options.reorder_k = 0;
  options.code_type = static_cast<CodeType>(7);
  EXPECT_THAT(CreateIndex(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                             "code_type must be float (1) or int8 (2), got 7"));
  auto index = Make(Metric::kL2, 2, CodeType::kInt8);
  SearchParams params;
  params.reorder_k = -3;
  EXPECT_THAT(index->Search(std::vector<float>(kDim, 0.5f), params),
              StatusIs(absl::StatusCode::kInvalidArgument, "reorder_k must be in [0, 1000000]"));
}

class Int8PersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("nestor_int8_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file() const { return (dir_ / std::string(kSnapshotFileName)).string(); }

  std::filesystem::path dir_;
};

TEST_F(Int8PersistenceTest, RoundTripGivesIdenticalResults) {
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    auto index = Make(metric, 16, CodeType::kInt8, /*reorder_k=*/25);
    ASSERT_THAT(index->Upsert(testing::SequentialIds(800, 10),
                              testing::ClusteredVectors(800, kDim, 20, 0.2f, 4)),
                IsOk());
    ASSERT_THAT(index->Build(), IsOk());
    ASSERT_THAT(index->Remove({10, 11, 12}), IsOk());
    ASSERT_THAT(index->Save(dir_.string()), IsOk());
    auto loaded = LoadIndex(dir_.string());
    ASSERT_THAT(loaded, IsOk());
    EXPECT_EQ((*loaded)->options().code_type, CodeType::kInt8);
    EXPECT_EQ((*loaded)->options().reorder_k, 25);
    EXPECT_EQ((*loaded)->size(), index->size());
    const std::vector<float> queries = testing::ClusteredVectors(50, kDim, 20, 0.2f, 8);
    SearchParams params;
    params.k = 10;
    params.partitions_to_search = 3;
    EXPECT_EQ(MustSearch(**loaded, queries, params), MustSearch(*index, queries, params))
        << MetricName(metric);
  }
}

TEST_F(Int8PersistenceTest, VersionOneSnapshotLoadsAsFloatCodes) {
  auto index = Make(Metric::kL2, 8, CodeType::kFloat);
  ASSERT_THAT(index->Upsert(testing::SequentialIds(300), testing::RandomVectors(300, kDim, 3)),
              IsOk());
  ASSERT_THAT(index->Build(), IsOk());
  ASSERT_THAT(index->Save(dir_.string()), IsOk());
  // Rewrite as version 1: drop the query defaults (version 4: 16 bytes, version 5: 8 more,
  // after build_seconds at offset 74), code_type and reorder_k (8 bytes after the seed and max_train_pts
  // fields at offset 48) and the version-3 Matryoshka fields after them (empty ladder
  // count, routing_dim, pca_rotation: 9 bytes), set the version, recompute the CRC.
  std::ifstream in(file(), std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  in.close();
  bytes.erase(74, 16 + 8);
  bytes.erase(48, 8 + 9);
  bytes[kSnapshotMagic.size()] = 1;
  bytes.resize(bytes.size() - 4);
  const uint32_t crc = Crc32(bytes);
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  std::ofstream(file(), std::ios::binary | std::ios::trunc) << bytes;
  auto loaded = LoadIndex(dir_.string());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ((*loaded)->options().code_type, CodeType::kFloat);
  EXPECT_EQ((*loaded)->options().reorder_k, 0);
  const std::vector<float> queries = testing::RandomVectors(20, kDim, 9);
  SearchParams params;
  params.k = 5;
  EXPECT_EQ(MustSearch(**loaded, queries, params), MustSearch(*index, queries, params));
}

}  // namespace
}  // namespace nestor

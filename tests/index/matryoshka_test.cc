// Matryoshka prefixes, the shortlist funnel and the PCA rotation (IndexOptions
// matryoshka_dims / routing_dim / pca_rotation, SearchParams prefix_dim / shortlist_dim /
// shortlist_size). MRL: Kusupati et al., NeurIPS 2022; AdANNS: Rege et al., 2023.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/faiss_kmeans.h"
#include "index/index_factory.h"
#include "index/persistence.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::ClusteredVectors;
using ::nestor::testing::Ids;
using ::nestor::testing::IsOk;
using ::nestor::testing::MustCreateBuilt;
using ::nestor::testing::MustSearch;
using ::nestor::testing::PartitionedOptions;
using ::nestor::testing::Recall;
using ::nestor::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr int kDim = 64;
constexpr size_t kRows = 2000;
constexpr size_t kQueries = 50;
constexpr int kPartitions = 16;
const std::vector<int> kLadder = {8, 16, 32};  // 64 is added

// Clustered data whose coordinate j is scaled by 0.93^j: a PCA-like spectrum, so leading
// coordinates carry most of the distance (as in MRL embeddings or PCA-rotated data).
std::vector<float> DecayingVectors(size_t n, uint64_t seed) {
  std::vector<float> v = ClusteredVectors(n, kDim, 40, 0.3f, seed);
  for (size_t i = 0; i < n; ++i) {
    for (int j = 0; j < kDim; ++j) v[i * kDim + j] *= std::pow(0.93f, static_cast<float>(j));
  }
  return v;
}

// A partitioned index gets the ladder and routes on 16 coordinates; the exact oracle
// (num_partitions 0) gets neither, as CreateIndex refuses them for it: it serves every
// prefix anyway.
IndexOptions Options(Metric metric, int num_partitions, CodeType code_type) {
  IndexOptions options = PartitionedOptions(kDim, metric, num_partitions, code_type);
  if (num_partitions > 0) {
    options.matryoshka_dims = kLadder;
    options.routing_dim = 16;
  }
  return options;
}

// Rank-by-rank equal scores, and equal ids except inside near-ties (float rounding of
// the exact index's sgemm and the partitioned index's kernels differs).
void ExpectSameAsExact(const std::vector<std::vector<Neighbor>>& got,
                       const std::vector<std::vector<Neighbor>>& truth, const std::string& what) {
  ASSERT_THAT(got, SizeIs(truth.size())) << what;
  for (size_t q = 0; q < truth.size(); ++q) {
    ASSERT_THAT(got[q], SizeIs(truth[q].size())) << what;
    for (size_t i = 0; i < truth[q].size(); ++i) {
      const float t = truth[q][i].distance;
      EXPECT_NEAR(got[q][i].distance, t, 1e-4f * std::max(1.0f, std::fabs(t)))
          << what << " query " << q << " rank " << i;
      const bool tie_before = i > 0 && std::fabs(truth[q][i - 1].distance - t) < 1e-4f;
      const bool tie_after =
          i + 1 < truth[q].size() && std::fabs(truth[q][i + 1].distance - t) < 1e-4f;
      // The last rank may tie with the unseen rank k + 1; its score is checked above.
      const bool last = i + 1 == truth[q].size();
      if (!tie_before && !tie_after && !last) {
        EXPECT_EQ(got[q][i].id, truth[q][i].id) << what << " query " << q << " rank " << i;
      }
    }
  }
}

TEST(MatryoshkaOptionsTest, LadderMustBeAscendingAndInRange) {
  IndexOptions options = Options(Metric::kL2, kPartitions, CodeType::kInt8);
  options.matryoshka_dims = {16, 8};
  EXPECT_THAT(CreateIndex(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.matryoshka_dims = {8, 100};
  auto bad = CreateIndex(options);
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad.status().message(), HasSubstr("matryoshka_dims[1] = 100"));
  options.matryoshka_dims = {0, 8};
  EXPECT_THAT(CreateIndex(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MatryoshkaOptionsTest, DimensionIsAddedToTheLadder) {
  auto index = CreateIndex(Options(Metric::kL2, kPartitions, CodeType::kInt8));
  ASSERT_THAT(index, IsOk());
  EXPECT_THAT((*index)->options().matryoshka_dims, ElementsAre(8, 16, 32, 64));
  EXPECT_EQ((*index)->options().routing_dim, 16);
}

TEST(MatryoshkaOptionsTest, RoutingDimMustBeOnTheLadder) {
  IndexOptions options = Options(Metric::kL2, kPartitions, CodeType::kInt8);
  options.routing_dim = 20;
  auto index = CreateIndex(options);
  EXPECT_THAT(index, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(index.status().message(),
              HasSubstr("routing_dim 20 is not in matryoshka_dims {8, 16, 32, 64}"));
  options.routing_dim = 0;
  ASSERT_THAT(CreateIndex(options), IsOk());
  EXPECT_EQ((*CreateIndex(options))->options().routing_dim, kDim);
}

TEST(MatryoshkaOptionsTest, PcaRotationNeedsPartitions) {
  IndexOptions options = Options(Metric::kL2, 0, CodeType::kInt8);
  options.pca_rotation = true;
  EXPECT_THAT(CreateIndex(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "the exact index got pca_rotation=true, expected false"));
}

// A ladder and a routing dimension shape a partitioned index only: the exact index is
// refused them (a rejected call creates nothing), and with neither it serves prefixes
// that no ladder lists, exactly.
TEST(MatryoshkaOptionsTest, ExactIndexRefusesLadderAndRoutingDimButServesEveryPrefix) {
  IndexOptions options = Options(Metric::kL2, kPartitions, CodeType::kInt8);
  options.num_partitions = 0;
  auto refused = CreateIndex(options);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument,
                                "the exact index got matryoshka_dims={8, 16, 32}, expected {}"));
  options.matryoshka_dims.clear();
  EXPECT_THAT(CreateIndex(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "the exact index got routing_dim=16, expected 0 (= dimension 64)"));
  options.routing_dim = 0;
  const std::vector<float> data = DecayingVectors(kRows, 9);
  auto exact = MustCreateBuilt(options, data);
  SearchParams params;
  params.k = 5;
  params.prefix_dim = 20;  // on no ladder
  const std::vector<float> q(data.begin() + 3 * kDim, data.begin() + 4 * kDim);
  const auto found = MustSearch(*exact, q, params);
  ASSERT_THAT(found, SizeIs(1));
  ASSERT_THAT(found[0], SizeIs(5));
  EXPECT_EQ(found[0][0].id, 3u);  // the query is row 3: distance 0 at every prefix
  EXPECT_NEAR(found[0][0].distance, 0.0f, 1e-4f);
}

TEST(MatryoshkaSearchTest, BadPrefixAndFunnelSettingsAreInvalidArgument) {
  const std::vector<float> data = DecayingVectors(kRows, 1);
  auto index = MustCreateBuilt(Options(Metric::kL2, kPartitions, CodeType::kInt8), data);
  const std::vector<float> q(data.begin(), data.begin() + kDim);
  auto search = [&](int prefix_dim, int shortlist_dim, int shortlist_size) {
    SearchParams params;
    params.k = 10;
    params.prefix_dim = prefix_dim;
    params.shortlist_dim = shortlist_dim;
    params.shortlist_size = shortlist_size;
    return index->Search(q, params).status();
  };
  absl::Status status = search(20, 0, 0);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("prefix_dim 20 is not in matryoshka_dims {8, 16, 32, 64}"));
  status = search(16, 32, 100);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()), HasSubstr("must be <= prefix_dim 16"));
  status = search(0, 12, 100);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()), HasSubstr("shortlist_dim 12 is not in"));
  status = search(0, 16, 5);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(status.message()), HasSubstr("shortlist_size 5 must be >= k 10"));
  EXPECT_THAT(search(0, 0, 50), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(search(0, -1, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(search(0, 16, -1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(search(32, 16, 0), IsOk());  // shortlist_size 0 = 10 * k
  EXPECT_THAT(search(0, 0, 0), IsOk());
}

TEST(MatryoshkaSearchTest, EmptyLadderAllowsEveryPrefix) {
  IndexOptions options = Options(Metric::kL2, kPartitions, CodeType::kInt8);
  options.matryoshka_dims.clear();
  options.routing_dim = 0;
  const std::vector<float> data = DecayingVectors(kRows, 2);
  auto index = MustCreateBuilt(options, data);
  const std::vector<float> q(data.begin(), data.begin() + kDim);
  SearchParams params;
  params.prefix_dim = 37;
  params.shortlist_dim = 13;
  params.shortlist_size = 50;
  EXPECT_THAT(index->Search(q, params), IsOk());
  params.prefix_dim = 65;
  auto bad = index->Search(q, params);
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
}

// Funnel off, every partition searched, reorder covering everything: exactly the
// brute-force top k of the truncated (cosine: re-normalized) vectors, at every ladder dim,
// for every metric and code type, one query at a time and in batches.
TEST(MatryoshkaSearchTest, FullSearchIsExactAtEveryLadderDim) {
  const std::vector<float> data = DecayingVectors(kRows, 3);
  const std::vector<float> queries = DecayingVectors(kQueries, 4);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto exact = MustCreateBuilt(Options(metric, 0, CodeType::kFloat), data);
    for (CodeType code_type : {CodeType::kFloat, CodeType::kInt8}) {
      auto index = MustCreateBuilt(Options(metric, kPartitions, code_type), data);
      for (int p : {8, 16, 32, 64}) {
        SearchParams params;
        params.k = 10;
        params.prefix_dim = p;
        const auto truth = MustSearch(*exact, queries, params);
        params.partitions_to_search = kPartitions;
        params.reorder_k = static_cast<int>(kRows);
        const std::string what = std::string(MetricName(metric)) + " " +
                                 CodeTypeName(code_type) + " prefix " + std::to_string(p);
        ExpectSameAsExact(MustSearch(*index, queries, params), truth, what + " batch");
        const std::vector<float> one(queries.begin(), queries.begin() + kDim);
        ExpectSameAsExact(MustSearch(*index, one, params), {truth[0]}, what + " single");
      }
    }
  }
}

// The funnel on data with a decaying spectrum: a shortlist at 16 coordinates reranked at
// 64 finds most of the exact full-dimension top 10.
TEST(MatryoshkaSearchTest, FunnelRecallOnDecayingSpectrum) {
  const std::vector<float> data = DecayingVectors(kRows * 2, 5);
  const std::vector<float> queries = DecayingVectors(kQueries * 2, 6);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto exact = MustCreateBuilt(Options(metric, 0, CodeType::kFloat), data);
    SearchParams params;
    params.k = 10;
    const auto truth = MustSearch(*exact, queries, params);
    for (CodeType code_type : {CodeType::kFloat, CodeType::kInt8}) {
      auto index = MustCreateBuilt(Options(metric, kPartitions, code_type), data);
      params.partitions_to_search = 6;
      params.shortlist_dim = 16;
      params.shortlist_size = 100;
      const auto batch = MustSearch(*index, queries, params);
      const double recall = Recall(batch, truth);
      EXPECT_GE(recall, 0.9) << MetricName(metric) << " " << CodeTypeName(code_type);
      // Batches return what single queries return.
      for (size_t q = 0; q < 5; ++q) {
        const std::vector<float> one(queries.begin() + q * kDim,
                                     queries.begin() + (q + 1) * kDim);
        EXPECT_EQ(Ids(MustSearch(*index, one, params)[0]), Ids(batch[q]));
      }
      // The funnel keeps full recall when it shortlists everything it scans.
      params.partitions_to_search = kPartitions;
      params.shortlist_size = static_cast<int>(kRows * 2);
      EXPECT_GE(Recall(MustSearch(*index, queries, params), truth), 0.999);
    }
  }
}

TEST(MatryoshkaSearchTest, TwoStageFunnelKeepsRecallAndBatchEqualsOneByOne) {
  // int8 funnel with reorder_k below shortlist_size: the shortlist is re-scored on the
  // int8 codes at prefix_dim before the best reorder_k are re-scored exactly.
  const std::vector<float> data = DecayingVectors(kRows * 2, 7);
  const std::vector<float> queries = DecayingVectors(kQueries * 2, 8);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto exact = MustCreateBuilt(Options(metric, 0, CodeType::kFloat), data);
    auto index = MustCreateBuilt(Options(metric, kPartitions, CodeType::kInt8), data);
    for (int prefix_dim : {kDim, 32}) {
      SearchParams params;
      params.k = 10;
      params.prefix_dim = prefix_dim;
      const auto truth = MustSearch(*exact, queries, params);
      params.partitions_to_search = 6;
      params.shortlist_dim = 8;
      params.shortlist_size = 100;
      params.reorder_k = 30;
      params.num_threads = 2;
      const auto batch = MustSearch(*index, queries, params);
      const std::string what =
          absl::StrCat(MetricName(metric), " prefix_dim=", prefix_dim);
      EXPECT_GE(Recall(batch, truth), 0.9) << what;
      for (size_t q = 0; q < kQueries * 2; ++q) {
        const std::vector<float> one(queries.begin() + q * kDim,
                                     queries.begin() + (q + 1) * kDim);
        EXPECT_EQ(Ids(MustSearch(*index, one, params)[0]), Ids(batch[q])) << what;
      }
      // Scanning and keeping everything, the middle stage still finds the exact top k.
      params.partitions_to_search = kPartitions;
      params.shortlist_size = static_cast<int>(kRows * 2);
      params.reorder_k = 200;
      EXPECT_GE(Recall(MustSearch(*index, queries, params), truth), 0.99) << what;
    }
  }
}

// Dense shortlist blocks (the first 64 / 128 code bytes of each row kept contiguously for
// ladder prefixes up to 128 bytes) hold the same bytes as the full code rows: a funnel
// scan over them returns exactly what the same scan over the full rows returns (a twin
// index with no ladder, which keeps no blocks), also after upserts, replacements that
// move a vector to another partition, and removals.
TEST(MatryoshkaSearchTest, DenseShortlistBlocksMatchFullCodeRows) {
  constexpr int kWide = 256;
  constexpr size_t kWideRows = 1500;
  auto decaying = [](size_t n, uint64_t seed) {
    std::vector<float> v = ClusteredVectors(n, kWide, 30, 0.3f, seed);
    for (size_t i = 0; i < n; ++i) {
      for (int j = 0; j < kWide; ++j) v[i * kWide + j] *= std::pow(0.98f, static_cast<float>(j));
    }
    return v;
  };
  const std::vector<float> data = decaying(kWideRows, 21);
  const std::vector<float> queries = decaying(40, 22);
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    IndexOptions options;
    options.dimension = kWide;
    options.metric = metric;
    options.num_partitions = 12;
    options.code_type = CodeType::kInt8;
    IndexOptions laddered = options;
    laddered.matryoshka_dims = {16, 64, 128};
    auto index = MustCreateBuilt(laddered, data);
    auto twin = MustCreateBuilt(options, data);
    // Blocks of 64 and 128 bytes per vector; the twin keeps one more prefix norm per
    // vector (its prefix norms are at 16, 32, 64 and 128, the ladder's at 16, 64, 128).
    EXPECT_GE(index->stats().memory_bytes,
              twin->stats().memory_bytes + kWideRows * (192 - sizeof(float)));

    auto expect_same = [&](const std::string& when) {
      for (int shortlist_dim : {16, 64, 128}) {
        SearchParams params;
        params.k = 10;
        params.partitions_to_search = 12;
        params.shortlist_dim = shortlist_dim;
        params.shortlist_size = 15;
        params.num_threads = 2;
        const std::string what = absl::StrCat(MetricName(metric), " shortlist_dim=",
                                              shortlist_dim, " ", when);
        const auto got = MustSearch(*index, queries, params);
        const auto want = MustSearch(*twin, queries, params);
        ASSERT_THAT(got, SizeIs(want.size())) << what;
        for (size_t q = 0; q < want.size(); ++q) {
          EXPECT_EQ(Ids(got[q]), Ids(want[q])) << what << " query " << q;
          const std::vector<float> one(queries.begin() + q * kWide,
                                       queries.begin() + (q + 1) * kWide);
          EXPECT_EQ(Ids(MustSearch(*index, one, params)[0]), Ids(want[q])) << what;
        }
      }
    };
    expect_same("after build");

    // New ids, replaced ids (vectors of far-away rows, so most change partition), removals.
    const std::vector<float> extra = decaying(200, 23);
    std::vector<DatapointId> ids;
    for (DatapointId i = 0; i < 100; ++i) ids.push_back(100000 + i);   // new
    for (DatapointId i = 0; i < 100; ++i) ids.push_back(i * 7);         // replaced
    for (auto* target : {index.get(), twin.get()}) {
      ASSERT_THAT(target->Upsert(ids, extra), IsOk());
      std::vector<DatapointId> gone;
      for (DatapointId i = 0; i < 150; ++i) gone.push_back(i * 5 + 1);
      auto removed = target->Remove(gone);
      ASSERT_THAT(removed, IsOk());
      EXPECT_EQ(*removed, 150u);
    }
    expect_same("after upserts and removals");

    // Blocks are rebuilt from the codes when a snapshot loads (both reloaded, so both
    // hold exactly-sized buffers again).
    for (auto* target : {&index, &twin}) {
      const std::string dir = ::testing::TempDir() + "/dense_blocks_" +
                              std::to_string(getpid()) + "_" + MetricName(metric);
      ASSERT_THAT((*target)->Save(dir), IsOk());
      auto loaded = LoadIndex(dir);
      ASSERT_THAT(loaded, IsOk());
      *target = std::move(loaded).value();
      std::filesystem::remove_all(dir);
    }
    // (The twin's extra prefix-norm slot may hold up to twice its size in capacity.)
    EXPECT_GE(index->stats().memory_bytes,
              twin->stats().memory_bytes + index->size() * (192 - 2 * sizeof(float)));
    expect_same("after save and load");
  }
}

// Rotation at prefix_dim = dimension gives the un-rotated results (the rotation is
// orthonormal); at a prefix it equals an exact index over the rotated data; GetVector
// returns the original vectors.
TEST(MatryoshkaRotationTest, RotationIsOrthonormalAndPrefixesArePrincipalComponents) {
  const std::vector<float> data = DecayingVectors(kRows, 7);
  const std::vector<float> queries = DecayingVectors(kQueries, 8);
  // The index trains PCA on all rows (kRows < kPartitions * 256), in insertion order.
  auto rotation = TrainPcaRotation(data.data(), kRows, kDim);
  ASSERT_THAT(rotation, IsOk());
  auto rotate = [&](const std::vector<float>& x) {
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size() / kDim; ++i) {
      for (int a = 0; a < kDim; ++a) {
        double s = 0;
        for (int j = 0; j < kDim; ++j) s += double{(*rotation)[a * kDim + j]} * x[i * kDim + j];
        y[i * kDim + a] = static_cast<float>(s);
      }
    }
    return y;
  };
  const std::vector<float> rotated_data = rotate(data);
  const std::vector<float> rotated_queries = rotate(queries);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
    auto exact = MustCreateBuilt(Options(metric, 0, CodeType::kFloat), data);
    auto exact_rotated = MustCreateBuilt(Options(metric, 0, CodeType::kFloat), rotated_data);
    for (CodeType code_type : {CodeType::kFloat, CodeType::kInt8}) {
      IndexOptions options = Options(metric, kPartitions, code_type);
      options.pca_rotation = true;
      auto index = MustCreateBuilt(options, data);
      SearchParams params;
      params.k = 10;
      params.partitions_to_search = kPartitions;
      params.reorder_k = static_cast<int>(kRows);
      const std::string what = std::string(MetricName(metric)) + " " + CodeTypeName(code_type);
      ExpectSameAsExact(MustSearch(*index, queries, params), MustSearch(*exact, queries, params),
                        what + " full dimension");
      for (int p : {8, 32}) {
        params.prefix_dim = p;
        ExpectSameAsExact(MustSearch(*index, queries, params),
                          MustSearch(*exact_rotated, rotated_queries, params),
                          what + " prefix " + std::to_string(p));
        // SearchParams.exact: the same at any partitions_to_search (the ground truth of
        // rotated prefixes, which no raw-vector brute force gives).
        SearchParams exact_params = params;
        exact_params.partitions_to_search = 1;
        exact_params.reorder_k = 0;
        exact_params.exact = true;
        ExpectSameAsExact(MustSearch(*index, queries, exact_params),
                          MustSearch(*exact_rotated, rotated_queries, params),
                          what + " exact=true prefix " + std::to_string(p));
      }
      for (DatapointId id : {DatapointId{0}, DatapointId{777}, DatapointId{kRows - 1}}) {
        auto v = index->GetVector(id);
        ASSERT_THAT(v, IsOk());
        for (int j = 0; j < kDim; ++j) {
          EXPECT_NEAR((*v)[j], data[id * kDim + j], 1e-4) << "id " << id << " coordinate " << j;
        }
      }
    }
  }
}

TEST(MatryoshkaRotationTest, UpsertAfterBuildAndRebuildKeepOriginals) {
  const std::vector<float> data = DecayingVectors(kRows, 9);
  IndexOptions options = Options(Metric::kL2, kPartitions, CodeType::kInt8);
  options.pca_rotation = true;
  auto index = MustCreateBuilt(options, data);
  const std::vector<float> extra = DecayingVectors(1, 10);
  ASSERT_THAT(index->Upsert({DatapointId{50000}}, extra), IsOk());
  ASSERT_THAT(index->Build(), IsOk());
  for (auto [id, row] : {std::pair<DatapointId, const float*>{50000, extra.data()},
                         {3, data.data() + 3 * kDim}}) {
    auto v = index->GetVector(id);
    ASSERT_THAT(v, IsOk());
    for (int j = 0; j < kDim; ++j) EXPECT_NEAR((*v)[j], row[j], 1e-4);
  }
  SearchParams params;
  params.k = 1;
  params.partitions_to_search = kPartitions;
  auto found = index->Search(extra, params);
  ASSERT_THAT(found, IsOk());
  EXPECT_EQ((*found)[0][0].id, 50000u);
}

TEST(MatryoshkaPersistenceTest, EveryNewFieldRoundTrips) {
  const std::vector<float> data = DecayingVectors(kRows, 11);
  const std::vector<float> queries = DecayingVectors(kQueries, 12);
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    IndexOptions options = Options(metric, kPartitions, CodeType::kInt8);
    options.pca_rotation = true;
    auto index = MustCreateBuilt(options, data);
    const std::string dir = ::testing::TempDir() + "/matryoshka_" + std::to_string(getpid()) +
                            "_" + MetricName(metric);
    ASSERT_THAT(index->Save(dir), IsOk());
    auto loaded = LoadIndex(dir);
    ASSERT_THAT(loaded, IsOk());
    EXPECT_THAT((*loaded)->options().matryoshka_dims, ElementsAre(8, 16, 32, 64));
    EXPECT_EQ((*loaded)->options().routing_dim, 16);
    EXPECT_TRUE((*loaded)->options().pca_rotation);
    for (int p : {16, 64}) {
      SearchParams params;
      params.k = 10;
      params.prefix_dim = p;
      params.partitions_to_search = 4;
      params.shortlist_dim = 8;
      params.shortlist_size = 40;
      EXPECT_EQ(MustSearch(**loaded, queries, params), MustSearch(*index, queries, params));
    }
    EXPECT_EQ(*(*loaded)->GetVector(5), *index->GetVector(5));
    std::filesystem::remove_all(dir);
  }
}

// Version-2 snapshots (before the Matryoshka fields) load with an empty ladder,
// routing_dim = dimension and no rotation.
TEST(MatryoshkaPersistenceTest, VersionTwoSnapshotLoads) {
  IndexOptions options = Options(Metric::kL2, kPartitions, CodeType::kInt8);
  options.matryoshka_dims.clear();
  options.routing_dim = 0;
  const std::vector<float> data = DecayingVectors(kRows, 13);
  auto index = MustCreateBuilt(options, data);
  const std::string dir = ::testing::TempDir() + "/matryoshka_v2_" + std::to_string(getpid());
  ASSERT_THAT(index->Save(dir), IsOk());
  const std::string file = dir + "/" + std::string(kSnapshotFileName);
  auto bytes = ReadFile(file);
  ASSERT_THAT(bytes, IsOk());
  // The query defaults (4 x i32 from version 4, i64 max_codes from version 5) follow
  // build_seconds at offset 74; the version-3 fields follow reorder_k at offset 56: u32
  // ladder count (0), i32 routing_dim, u8 pca_rotation.
  bytes->erase(74, 16 + 8);
  bytes->erase(56, 9);
  (*bytes)[kSnapshotMagic.size()] = 2;
  bytes->resize(bytes->size() - 4);
  const uint32_t crc = Crc32(*bytes);
  bytes->append(reinterpret_cast<const char*>(&crc), 4);
  ASSERT_THAT(WriteFileAtomically(dir, kSnapshotFileName, *bytes), IsOk());
  auto loaded = LoadIndex(dir);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_TRUE((*loaded)->options().matryoshka_dims.empty());
  EXPECT_EQ((*loaded)->options().routing_dim, kDim);
  EXPECT_FALSE((*loaded)->options().pca_rotation);
  const std::vector<float> queries = DecayingVectors(kQueries, 14);
  SearchParams params;
  params.k = 10;
  params.prefix_dim = 24;
  EXPECT_EQ(MustSearch(**loaded, queries, params), MustSearch(*index, queries, params));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace nestor

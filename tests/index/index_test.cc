// Validation of the public Index methods (index/index.h), for both index kinds: every
// bad input has its exact status code and leaves the index unchanged.
#include "index/index.h"

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::testing::SizeIs;

constexpr int kDim = 4;
constexpr size_t kRows = 64;
constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

struct Kind {
  std::string name;
  int num_partitions;
  Metric metric;
};

// gtest prints the parameter with this (not its bytes, which hold a heap pointer).
void PrintTo(const Kind& kind, std::ostream* os) { *os << kind.name; }

// Each kind holds kRows vectors (ids 0..63), built.
class IndexValidationTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    IndexOptions options;
    options.dimension = kDim;
    options.metric = GetParam().metric;
    options.num_partitions = GetParam().num_partitions;
    auto index = CreateIndex(options);
    ASSERT_THAT(index, IsOk());
    index_ = std::move(index).value();
    data_ = testing::RandomVectors(kRows, kDim, 3);
    ASSERT_THAT(index_->Upsert(testing::SequentialIds(kRows), data_), IsOk());
    ASSERT_THAT(index_->Build(), IsOk());
  }

  // The index still holds exactly the original data.
  void ExpectUnchanged() {
    EXPECT_EQ(index_->size(), kRows);
    for (DatapointId id : {DatapointId{0}, DatapointId{kRows - 1}}) {
      auto v = index_->GetVector(id);
      ASSERT_THAT(v, IsOk());
      EXPECT_EQ(*v, std::vector<float>(data_.begin() + id * kDim, data_.begin() + (id + 1) * kDim));
    }
    EXPECT_THAT(index_->GetVector(1000), StatusIs(absl::StatusCode::kNotFound));
  }

  std::unique_ptr<Index> index_;
  std::vector<float> data_;
};

TEST_P(IndexValidationTest, UpsertWithWrongVectorSizeIsInvalidArgument) {
  EXPECT_THAT(index_->Upsert({1000, 1001}, std::vector<float>(7, 1.0f)),
              StatusIs(kInvalid, "expected 2*4=8 floats, got 7"));
  EXPECT_THAT(index_->Upsert({1000}, {}), StatusIs(kInvalid));
  ExpectUnchanged();
}

TEST_P(IndexValidationTest, UpsertWithNaNOrInfIsInvalidArgument) {
  std::vector<float> v(8, 1.0f);
  v[6] = std::numeric_limits<float>::quiet_NaN();
  const absl::Status nan = index_->Upsert({1000, 1001}, v);
  EXPECT_THAT(nan, StatusIs(kInvalid, "vector row 1 column 2"));
  EXPECT_EQ(RowErrorOf(nan), std::optional<size_t>(1));  // the row, for callers that batch
  v[6] = std::numeric_limits<float>::infinity();
  EXPECT_THAT(index_->Upsert({1000, 1001}, v), StatusIs(kInvalid, "not finite"));
  v[6] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(index_->Upsert({0, 1001}, v), StatusIs(kInvalid));
  ExpectUnchanged();
}

TEST_P(IndexValidationTest, UpsertWithDuplicateIdsIsInvalidArgument) {
  const absl::Status duplicate = index_->Upsert({0, 5, 0}, std::vector<float>(12, 1.0f));
  EXPECT_THAT(duplicate, StatusIs(kInvalid, "duplicate id 0"));
  EXPECT_EQ(RowErrorOf(duplicate), std::nullopt);  // about the call, not one row
  ExpectUnchanged();
}

TEST_P(IndexValidationTest, ZeroVectorUnderCosineIsInvalidArgument) {
  const std::vector<float> zero = {1, 1, 1, 1, 0, 0, 0, 0};
  if (GetParam().metric == Metric::kCosine) {
    EXPECT_THAT(index_->Upsert({1000, 1001}, zero), StatusIs(kInvalid, "zero vector"));
    ExpectUnchanged();
    SearchParams params;
    EXPECT_THAT(index_->Search({0, 0, 0, 0}, params), StatusIs(kInvalid, "zero vector"));
    params.prefix_dim = 2;
    const absl::Status prefix = index_->Search({1, 1, 1, 1, 0, 0, 1, 1}, params).status();
    EXPECT_THAT(prefix, StatusIs(kInvalid, "query row 1 has an all-zero prefix"));
    EXPECT_EQ(RowErrorOf(prefix), std::optional<size_t>(1));
  } else {
    EXPECT_THAT(index_->Upsert({1000, 1001}, zero), IsOk());
    EXPECT_EQ(index_->size(), kRows + 2);
  }
}

TEST_P(IndexValidationTest, BadSearchArgumentsAreInvalidArgument) {
  const std::vector<float> q = {0.1f, 0.2f, 0.3f, 0.4f};
  SearchParams params;
  EXPECT_THAT(index_->Search({}, params), StatusIs(kInvalid, "empty"));
  EXPECT_THAT(index_->Search({1, 2, 3}, params), StatusIs(kInvalid, "not a multiple of dimension 4"));
  params.k = 0;
  EXPECT_THAT(index_->Search(q, params), StatusIs(kInvalid, "k must be >= 1, got 0"));
  params.k = -3;
  EXPECT_THAT(index_->Search(q, params), StatusIs(kInvalid, "got -3"));
  params = SearchParams();
  params.prefix_dim = 5;
  EXPECT_THAT(index_->Search(q, params), StatusIs(kInvalid, "prefix_dim must be in [0, 4]"));
  params.prefix_dim = -1;
  EXPECT_THAT(index_->Search(q, params), StatusIs(kInvalid, "got -1"));
  params = SearchParams();
  params.partitions_to_search = -1;
  EXPECT_THAT(index_->Search(q, params), StatusIs(kInvalid, "partitions_to_search"));
  params = SearchParams();
  params.num_threads = 0;
  EXPECT_THAT(index_->Search(q, params), StatusIs(kInvalid, "num_threads"));
  // Candidate counts past the cap would allocate that many candidates per query.
  params = SearchParams();
  params.reorder_k = kMaxCandidates + 1;
  EXPECT_THAT(index_->Search(q, params),
              StatusIs(kInvalid, "reorder_k must be in [0, 1000000] (0 = index default), "
                                 "got 1000001"));
  params = SearchParams();
  params.shortlist_size = 2000000000;
  EXPECT_THAT(index_->Search(q, params),
              StatusIs(kInvalid, "shortlist_size must be <= 1000000, got 2000000000"));
  params = SearchParams();
  std::vector<float> bad = {0.1f, 0.2f, 0.3f, 0.4f, 1, 1, 1, std::nanf("")};
  EXPECT_THAT(index_->Search(bad, params), StatusIs(kInvalid, "query row 1 column 3"));
  // The NaN sits beyond the prefix but is still rejected: all coordinates are checked.
  params.prefix_dim = 2;
  EXPECT_THAT(index_->Search(bad, params), StatusIs(kInvalid));
  ExpectUnchanged();
}

TEST_P(IndexValidationTest, ValidSearchAfterRejectionsStillWorks) {
  SearchParams params;
  params.k = 5;
  params.partitions_to_search = 1000;  // clamped
  auto results = index_->Search(std::vector<float>(data_.begin(), data_.begin() + kDim), params);
  ASSERT_THAT(results, IsOk());
  ASSERT_THAT(*results, SizeIs(1));
  ASSERT_THAT((*results)[0], SizeIs(5));
  if (GetParam().metric != Metric::kInnerProduct) {
    EXPECT_EQ((*results)[0][0].id, 0u);  // a stored vector is its own nearest neighbour
  }
}

TEST_P(IndexValidationTest, DeadlineInThePastIsDeadlineExceeded) {
  SearchParams params;
  params.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_THAT(index_->Search(data_, params), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_P(IndexValidationTest, CancelledSearchIsCancelled) {
  SearchParams params;
  params.cancelled = [] { return true; };
  EXPECT_THAT(index_->Search(data_, params), StatusIs(absl::StatusCode::kCancelled));
}

TEST_P(IndexValidationTest, CancellationDuringBatchIsCancelled) {
  // Passes the check before the search starts, then fires: the search stops part-way.
  std::atomic<int> calls{0};
  SearchParams params;
  params.num_threads = 2;
  params.cancelled = [&calls] { return calls.fetch_add(1) >= 1; };
  EXPECT_THAT(index_->Search(data_, params), StatusIs(absl::StatusCode::kCancelled));
}

TEST_P(IndexValidationTest, RemoveUnknownIdsChangesNothing) {
  auto removed = index_->Remove({1000, 2000});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 0u);
  ExpectUnchanged();
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, IndexValidationTest,
    ::testing::Values(Kind{"ExactL2", 0, Metric::kL2}, Kind{"ExactCosine", 0, Metric::kCosine},
                      Kind{"PartitionedL2", 4, Metric::kL2},
                      Kind{"PartitionedInnerProduct", 4, Metric::kInnerProduct},
                      Kind{"PartitionedCosine", 4, Metric::kCosine}),
    [](const auto& info) { return info.param.name; });

TEST(MetricNameTest, NamesMatchProto) {
  EXPECT_STREQ(MetricName(Metric::kL2), "l2");
  EXPECT_STREQ(MetricName(Metric::kInnerProduct), "inner_product");
  EXPECT_STREQ(MetricName(Metric::kCosine), "cosine");
  EXPECT_TRUE(HigherIsNearer(Metric::kCosine));
  EXPECT_FALSE(HigherIsNearer(Metric::kL2));
}

}  // namespace
}  // namespace nestor

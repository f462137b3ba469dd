// client::SendRequests (the request loop of `nestor bench` and `nestor-bench --mode grpc`)
// against an in-process NestorServer on loopback: every query's ids match a brute-force
// oracle computed here, whatever the number of requests in flight.
#include "client/request_load.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/nestor.grpc.pb.h"
#include "server/server.h"
#include "tests/server/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor::server {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;

constexpr int kDim = 8;
constexpr int kNumVectors = 300;
constexpr int kK = 5;

// Ids of the k rows of `data` nearest to `query` by squared L2 (ids are row numbers).
std::vector<int64_t> BruteForce(const std::vector<float>& data, const float* query, int k) {
  std::vector<std::pair<double, int64_t>> all;
  for (int64_t i = 0; i < kNumVectors; ++i) {
    double l2 = 0;
    for (int j = 0; j < kDim; ++j) {
      const double diff = static_cast<double>(data[i * kDim + j]) - query[j];
      l2 += diff * diff;
    }
    all.emplace_back(l2, i);
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> ids;
  for (int i = 0; i < k; ++i) ids.push_back(all[i].second);
  return ids;
}

class RequestLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NestorServer>> server =
        StartLoopbackServer(FreshDataDir("nestor_request_load"), /*grpc_threads=*/8);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    stub_ = v1::IndexService::NewStub(LoopbackChannel(*server_));
    v1::IndexConfig config;
    config.set_dimension(kDim);
    ASSERT_THAT(CreateIndex(*stub_, "exact", config), IsOk());
    data_ = RandomVectors(kNumVectors, kDim, /*seed=*/11);
    std::vector<uint64_t> ids(kNumVectors);
    for (int i = 0; i < kNumVectors; ++i) ids[i] = static_cast<uint64_t>(i);
    ASSERT_THAT(UpsertDatapoints(*stub_, UpsertRequest("exact", ids, data_, 0, kNumVectors, kDim)),
                IsOk());
    client::NestorClientOptions options;
    options.server = absl::StrCat("127.0.0.1:", server_->grpc_port());
    absl::StatusOr<std::unique_ptr<client::NestorClient>> client =
        client::NestorClient::Create(options);
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
  }
  void TearDown() override {
    client_.reset();
    stub_.reset();
    ExpectShutdown(server_);
  }

  std::unique_ptr<NestorServer> server_;
  std::unique_ptr<v1::IndexService::Stub> stub_;
  std::unique_ptr<client::NestorClient> client_;
  std::vector<float> data_;
};

TEST_F(RequestLoadTest, EveryQueryMatchesTheOracleAtAnyConcurrency) {
  // 9 requests of 1..5 queries (25 queries), so the numbering across requests matters.
  const std::vector<float> queries = RandomVectors(25, kDim, /*seed=*/12);
  std::vector<v1::FindNeighborsRequest> requests;
  int row = 0;
  for (int b = 0; b < 9; ++b) {
    const int n = 1 + b % 5;
    std::vector<float> rows(queries.begin() + row * kDim, queries.begin() + (row + n) * kDim);
    requests.push_back(FindRequest("exact", rows, kK, 0, kDim));
    row += n;
  }
  ASSERT_EQ(row, 25);
  for (int concurrency : {1, 3, 16}) {
    SCOPED_TRACE(absl::StrCat("concurrency ", concurrency));
    std::atomic<int64_t> done{0};
    absl::StatusOr<client::LoadPass> pass =
        client::SendRequests(*client_, requests, concurrency, &done);
    ASSERT_THAT(pass, IsOk());
    EXPECT_EQ(done.load(), 25);
    EXPECT_GT(pass->wall_seconds, 0);
    ASSERT_EQ(pass->latencies_ms.size(), requests.size());
    for (double ms : pass->latencies_ms) EXPECT_GT(ms, 0);
    ASSERT_EQ(pass->ids.size(), 25u);
    for (int q = 0; q < 25; ++q) {
      EXPECT_EQ(pass->ids[q], BruteForce(data_, &queries[q * kDim], kK)) << "query " << q;
    }
  }
}

TEST_F(RequestLoadTest, NoRequestsIsAnEmptyPass) {
  absl::StatusOr<client::LoadPass> pass = client::SendRequests(*client_, {}, 4);
  ASSERT_THAT(pass, IsOk());
  EXPECT_TRUE(pass->ids.empty());
  EXPECT_TRUE(pass->latencies_ms.empty());
}

TEST_F(RequestLoadTest, ConcurrencyBelowOneIsInvalidArgument) {
  const std::vector<float> query = RandomVectors(1, kDim, /*seed=*/13);
  EXPECT_THAT(client::SendRequests(*client_, {FindRequest("exact", query, kK, 0, kDim)}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "concurrency must be >= 1 (requests in flight), got 0"));
}

TEST_F(RequestLoadTest, TheServersErrorIsReturned) {
  const std::vector<float> query = RandomVectors(1, kDim, /*seed=*/14);
  const std::vector<float> short_query(kDim - 1, 0.5f);
  std::vector<v1::FindNeighborsRequest> requests = {
      FindRequest("exact", query, kK, 0, kDim), FindRequest("exact", query, kK, 0, kDim),
      FindRequest("exact", short_query, kK, 0, kDim - 1)};
  EXPECT_THAT(client::SendRequests(*client_, requests, 2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "query 0: expected dimension 8, got 7"));
  EXPECT_THAT(client::SendRequests(*client_, {FindRequest("missing", query, kK, 0, kDim)}, 1),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace nestor::server

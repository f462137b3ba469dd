// RPC tests through the real generated stub against an in-process NestorServer on an
// ephemeral loopback port, with a brute-force oracle computed here.
#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/nestor.grpc.pb.h"
#include "server/status_util.h"
#include "tests/server/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor::server {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int kDim = 16;
constexpr int kNumVectors = 2000;

struct Expected {
  uint64_t id;
  float distance;
};

// Brute force over (ids[i], data row i): squared L2 ascending, or dot / cosine descending.
std::vector<Expected> Oracle(const std::vector<uint64_t>& ids, const std::vector<float>& data,
                             const float* query, int dim, v1::Metric metric, int k) {
  std::vector<Expected> all;
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* row = &data[i * dim];
    double l2 = 0, dot = 0, rn = 0, qn = 0;
    for (int j = 0; j < dim; ++j) {
      l2 += (row[j] - query[j]) * static_cast<double>(row[j] - query[j]);
      dot += static_cast<double>(row[j]) * query[j];
      rn += static_cast<double>(row[j]) * row[j];
      qn += static_cast<double>(query[j]) * query[j];
    }
    double score = metric == v1::METRIC_INNER_PRODUCT ? dot
                   : metric == v1::METRIC_COSINE      ? dot / std::sqrt(rn * qn)
                                                      : l2;
    all.push_back({ids[i], static_cast<float>(score)});
  }
  const bool higher = metric == v1::METRIC_INNER_PRODUCT || metric == v1::METRIC_COSINE;
  std::sort(all.begin(), all.end(), [&](const Expected& a, const Expected& b) {
    return higher ? a.distance > b.distance : a.distance < b.distance;
  });
  all.resize(std::min<size_t>(k, all.size()));
  return all;
}

// Minimal HTTP/1.0 request on 127.0.0.1:port; returns the whole response ("" on failure).
std::string HttpRequest(int port, const std::string& method, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), 0) < 0) {
    ::close(fd);
    return "";
  }
  std::string response;
  char buffer[4096];
  ssize_t got;
  while ((got = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, got);
  ::close(fd);
  return response;
}

// The body of a GET ("" on failure).
std::string HttpGet(int port, const std::string& path) {
  const std::string response = HttpRequest(port, "GET", path);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// Value of the sample of `metric` whose labels contain every one of `labels`, or -1.
double MetricValue(const std::string& text, const std::string& metric,
                   const std::vector<std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, metric + "{")) continue;
    bool all = true;
    for (const std::string& label : labels) all = all && absl::StrContains(line, label);
    if (!all) continue;
    return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return -1;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = FreshDataDir("nestor_server_test");
    StartServer();
  }

  void TearDown() override {
    stub_.reset();
    ExpectShutdown(server_);
    std::filesystem::remove_all(data_dir_);
  }

  void StartServer() {
    absl::StatusOr<std::unique_ptr<NestorServer>> server =
        StartLoopbackServer(data_dir_, grpc_threads_);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    channel_ = LoopbackChannel(*server_);
    stub_ = v1::IndexService::NewStub(channel_);
  }

  void RestartServer() {
    stub_.reset();
    ASSERT_THAT(server_->Shutdown(), IsOk());
    server_.reset();
    StartServer();
  }

  absl::StatusOr<v1::IndexInfo> Create(const std::string& name, v1::Metric metric = v1::METRIC_L2,
                                       uint32_t num_partitions = 0, uint32_t dim = kDim) {
    v1::IndexConfig config;
    config.set_dimension(dim);
    config.set_metric(metric);
    config.set_num_partitions(num_partitions);
    return Create(name, config);
  }

  absl::StatusOr<v1::IndexInfo> Create(const std::string& name, const v1::IndexConfig& config) {
    return CreateIndex(*stub_, name, config);
  }

  absl::StatusOr<v1::IndexInfo> Get(const std::string& name) { return GetIndex(*stub_, name); }

  absl::Status Delete(const std::string& name) { return DeleteIndex(*stub_, name); }

  absl::StatusOr<v1::IndexInfo> Build(const std::string& name) { return BuildIndex(*stub_, name); }

  static v1::UpsertDatapointsRequest MakeUpsert(const std::string& name,
                                                const std::vector<uint64_t>& ids,
                                                const std::vector<float>& data, size_t begin,
                                                size_t end, int dim = kDim) {
    return UpsertRequest(name, ids, data, begin, end, dim);
  }

  absl::StatusOr<v1::UpsertDatapointsResponse> Upsert(const v1::UpsertDatapointsRequest& request) {
    return UpsertDatapoints(*stub_, request);
  }

  // Upserts in batches of 1000 (under max_batch_size).
  void UpsertAll(const std::string& name, const std::vector<uint64_t>& ids,
                 const std::vector<float>& data, int dim = kDim) {
    for (size_t begin = 0; begin < ids.size(); begin += 1000) {
      const size_t end = std::min(ids.size(), begin + 1000);
      ASSERT_THAT(Upsert(MakeUpsert(name, ids, data, begin, end, dim)), IsOk());
    }
  }

  static v1::FindNeighborsRequest MakeFind(const std::string& name,
                                           const std::vector<float>& queries, int k,
                                           int partitions_to_search = 0, int dim = kDim) {
    return FindRequest(name, queries, k, partitions_to_search, dim);
  }

  absl::StatusOr<v1::FindNeighborsResponse> Find(const v1::FindNeighborsRequest& request,
                                                 absl::Duration timeout = absl::Seconds(30)) {
    return FindNeighbors(*stub_, request, timeout);
  }

  // Expects `response` to equal the oracle for each query (ids exactly, distances
  // within float rounding).
  static void ExpectMatchesOracle(const v1::FindNeighborsResponse& response,
                                  const std::vector<uint64_t>& ids,
                                  const std::vector<float>& data,
                                  const std::vector<float>& queries, v1::Metric metric, int k,
                                  int dim = kDim) {
    const size_t n = queries.size() / dim;
    ASSERT_EQ(response.nearest_neighbors_size(), static_cast<int>(n));
    for (size_t q = 0; q < n; ++q) {
      const std::vector<Expected> expected = Oracle(ids, data, &queries[q * dim], dim, metric, k);
      const auto& got = response.nearest_neighbors(q).neighbors();
      ASSERT_EQ(got.size(), static_cast<int>(expected.size())) << "query " << q;
      for (size_t j = 0; j < expected.size(); ++j) {
        EXPECT_EQ(got[j].datapoint().datapoint_id(), expected[j].id) << "query " << q << " rank " << j;
        EXPECT_NEAR(got[j].distance(), expected[j].distance,
                    1e-4 * std::max(1.0f, std::fabs(expected[j].distance)))
            << "query " << q << " rank " << j;
      }
    }
  }

  // An exact L2 index `name` of `n` random vectors of `dim` floats (seeded), ids 0..n-1.
  void LoadRandomExactIndex(const std::string& name, int n, int dim, uint32_t seed) {
    std::vector<uint64_t> ids(n);
    for (int i = 0; i < n; ++i) ids[i] = i;
    ASSERT_THAT(Create(name, v1::METRIC_L2, 0, dim), IsOk());
    UpsertAll(name, ids, RandomVectors(n, dim, seed), dim);
  }

  // A loaded exact L2 index "main" with ids 0..kNumVectors-1.
  void LoadMainIndex() {
    ids_.resize(kNumVectors);
    for (int i = 0; i < kNumVectors; ++i) ids_[i] = i;
    data_ = RandomVectors(kNumVectors, kDim, 7);
    ASSERT_THAT(Create("main"), IsOk());
    UpsertAll("main", ids_, data_);
    probe_ = RandomVectors(5, kDim, 99);
    absl::StatusOr<v1::FindNeighborsResponse> baseline = Find(MakeFind("main", probe_, 10));
    ASSERT_THAT(baseline, IsOk());
    baseline_ = baseline->SerializeAsString();
  }

  // The rejected request left "main" as it was: same count, same answers.
  void ExpectMainUnchanged() {
    absl::StatusOr<v1::IndexInfo> info = Get("main");
    ASSERT_THAT(info, IsOk());
    EXPECT_EQ(info->vector_count(), static_cast<uint64_t>(kNumVectors));
    absl::StatusOr<v1::FindNeighborsResponse> now = Find(MakeFind("main", probe_, 10));
    ASSERT_THAT(now, IsOk());
    EXPECT_EQ(now->SerializeAsString(), baseline_);
  }

  std::filesystem::path data_dir_;
  uint32_t grpc_threads_ = 8;
  std::unique_ptr<NestorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IndexService::Stub> stub_;
  std::vector<uint64_t> ids_;
  std::vector<float> data_;
  std::vector<float> probe_;
  std::string baseline_;
};

TEST_F(ServerTest, CreateGetListDeleteIndexes) {
  absl::StatusOr<v1::IndexInfo> exact = Create("exact");
  ASSERT_THAT(exact, IsOk());
  EXPECT_EQ(exact->name(), "exact");
  EXPECT_EQ(exact->kind(), "exact");
  EXPECT_EQ(exact->config().dimension(), static_cast<uint32_t>(kDim));
  EXPECT_EQ(exact->config().metric(), v1::METRIC_L2);  // UNSPECIFIED would also map here
  EXPECT_EQ(exact->vector_count(), 0u);
  EXPECT_TRUE(exact->built());

  absl::StatusOr<v1::IndexInfo> partitioned = Create("part-1", v1::METRIC_COSINE, 8);
  ASSERT_THAT(partitioned, IsOk());
  EXPECT_EQ(partitioned->kind(), "partitioned");
  EXPECT_EQ(partitioned->config().num_partitions(), 8u);
  EXPECT_EQ(partitioned->config().metric(), v1::METRIC_COSINE);
  EXPECT_EQ(partitioned->config().seed(), 1234u);  // zero field -> default
  EXPECT_EQ(partitioned->config().training_iterations(), 20u);

  absl::StatusOr<v1::IndexInfo> got = Get("part-1");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->SerializeAsString(), partitioned->SerializeAsString());

  v1::ListIndexesResponse list;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListIndexes(&context, v1::ListIndexesRequest(), &list).ok());
  }
  ASSERT_EQ(list.indexes_size(), 2);
  EXPECT_EQ(list.indexes(0).name(), "exact");
  EXPECT_EQ(list.indexes(1).name(), "part-1");

  EXPECT_THAT(Delete("exact"), IsOk());
  EXPECT_THAT(Get("exact"), StatusIs(absl::StatusCode::kNotFound, "exact"));
  EXPECT_THAT(Delete("exact"), StatusIs(absl::StatusCode::kNotFound));
  {
    grpc::ClientContext context;
    list.Clear();
    ASSERT_TRUE(stub_->ListIndexes(&context, v1::ListIndexesRequest(), &list).ok());
  }
  ASSERT_EQ(list.indexes_size(), 1);
  EXPECT_EQ(list.indexes(0).name(), "part-1");
}

TEST_F(ServerTest, CreateWithDuplicateOrBadNameIsRejected) {
  ASSERT_THAT(Create("dup"), IsOk());
  EXPECT_THAT(Create("dup"), StatusIs(absl::StatusCode::kAlreadyExists, "dup"));
  EXPECT_THAT(Create(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Create("has space"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Create("../escape"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Create(std::string(65, 'a')), StatusIs(absl::StatusCode::kInvalidArgument, "64"));
  EXPECT_THAT(Create(std::string(64, 'a')), IsOk());
  EXPECT_THAT(Create("nodim", v1::METRIC_L2, 0, /*dim=*/0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ServerTest, ExactIndexMatchesBruteForceOracle) {
  for (v1::Metric metric : {v1::METRIC_L2, v1::METRIC_INNER_PRODUCT, v1::METRIC_COSINE}) {
    SCOPED_TRACE(v1::Metric_Name(metric));
    const std::string name = absl::StrCat("exact-", static_cast<int>(metric));
    std::vector<uint64_t> ids(kNumVectors);
    for (int i = 0; i < kNumVectors; ++i) ids[i] = 1000000 + 3 * i;  // sparse 64-bit ids
    const std::vector<float> data = RandomVectors(kNumVectors, kDim, 11);
    ASSERT_THAT(Create(name, metric), IsOk());
    UpsertAll(name, ids, data);
    const std::vector<float> queries = RandomVectors(32, kDim, 12);
    absl::StatusOr<v1::FindNeighborsResponse> response = Find(MakeFind(name, queries, 10));
    ASSERT_THAT(response, IsOk());
    ExpectMatchesOracle(*response, ids, data, queries, metric, 10);
  }
}

TEST_F(ServerTest, MixedPerQuerySettingsInOneBatchEachMatchTheOracle) {
  LoadMainIndex();
  const std::vector<float> queries = RandomVectors(6, kDim, 21);
  v1::FindNeighborsRequest request = MakeFind("main", queries, 0);
  const int ks[] = {0, 1, 5, 0, 50, 5};  // 0 means 10
  for (int i = 0; i < 6; ++i) request.mutable_queries(i)->set_neighbor_count(ks[i]);
  absl::StatusOr<v1::FindNeighborsResponse> response = Find(request);
  ASSERT_THAT(response, IsOk());
  ASSERT_EQ(response->nearest_neighbors_size(), 6);
  for (int i = 0; i < 6; ++i) {
    const int k = ks[i] == 0 ? 10 : ks[i];
    const std::vector<float> one(queries.begin() + i * kDim, queries.begin() + (i + 1) * kDim);
    v1::FindNeighborsResponse single;
    *single.add_nearest_neighbors() = response->nearest_neighbors(i);
    ExpectMatchesOracle(single, ids_, data_, one, v1::METRIC_L2, k);
  }
}

TEST_F(ServerTest, StreamUpsertThenSearchMatchesOracle) {
  std::vector<uint64_t> ids(kNumVectors);
  for (int i = 0; i < kNumVectors; ++i) ids[i] = i;
  const std::vector<float> data = RandomVectors(kNumVectors, kDim, 31);
  ASSERT_THAT(Create("streamed"), IsOk());
  v1::UpsertDatapointsResponse response;
  grpc::ClientContext context;
  auto writer = stub_->StreamUpsertDatapoints(&context, &response);
  for (size_t begin = 0; begin < ids.size(); begin += 500) {
    v1::UpsertDatapointsRequest message = MakeUpsert("streamed", ids, data, begin, begin + 500);
    if (begin > 0) message.clear_index();  // later messages may leave it empty
    ASSERT_TRUE(writer->Write(message));
  }
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(response.upserted_count(), static_cast<uint64_t>(kNumVectors));
  EXPECT_EQ(response.vector_count(), static_cast<uint64_t>(kNumVectors));

  const std::vector<float> queries = RandomVectors(20, kDim, 32);
  absl::StatusOr<v1::FindNeighborsResponse> found = Find(MakeFind("streamed", queries, 10));
  ASSERT_THAT(found, IsOk());
  ExpectMatchesOracle(*found, ids, data, queries, v1::METRIC_L2, 10);
}

TEST_F(ServerTest, StreamErrorKeepsEarlierMessagesAndReportsTheCount) {
  std::vector<uint64_t> ids(300);
  for (int i = 0; i < 300; ++i) ids[i] = i;
  std::vector<float> data = RandomVectors(300, kDim, 41);
  data[250 * kDim] = std::nanf("");  // in the third message
  ASSERT_THAT(Create("s"), IsOk());
  v1::UpsertDatapointsResponse response;
  grpc::ClientContext context;
  auto writer = stub_->StreamUpsertDatapoints(&context, &response);
  for (size_t begin = 0; begin < 300; begin += 100) {
    if (!writer->Write(MakeUpsert("s", ids, data, begin, begin + 100))) break;
  }
  writer->WritesDone();
  EXPECT_THAT(FromGrpcStatus(writer->Finish()),
              StatusIs(absl::StatusCode::kInvalidArgument, "200 datapoints written"));
  absl::StatusOr<v1::IndexInfo> info = Get("s");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->vector_count(), 200u);
}

TEST_F(ServerTest, PartitionedIndexSearchingAllPartitionsMatchesOracle) {
  std::vector<uint64_t> ids(kNumVectors);
  for (int i = 0; i < kNumVectors; ++i) ids[i] = 5 * i + 1;
  const std::vector<float> data = RandomVectors(kNumVectors, kDim, 51);
  ASSERT_THAT(Create("part", v1::METRIC_L2, 8), IsOk());
  UpsertAll("part", ids, data);
  absl::StatusOr<v1::IndexInfo> built = Build("part");
  ASSERT_THAT(built, IsOk());
  EXPECT_TRUE(built->built());
  EXPECT_EQ(built->vector_count(), static_cast<uint64_t>(kNumVectors));
  EXPECT_GE(built->build_seconds(), 0.0);
  const std::vector<float> queries = RandomVectors(20, kDim, 52);
  absl::StatusOr<v1::FindNeighborsResponse> response =
      Find(MakeFind("part", queries, 10, /*partitions_to_search=*/8));
  ASSERT_THAT(response, IsOk());
  ExpectMatchesOracle(*response, ids, data, queries, v1::METRIC_L2, 10);
  // Above num_partitions is clamped, not an error.
  EXPECT_THAT(Find(MakeFind("part", queries, 10, 1000)), IsOk());
}

TEST_F(ServerTest, BuildWithTooFewVectorsIsFailedPrecondition) {
  ASSERT_THAT(Create("tiny", v1::METRIC_L2, 8), IsOk());
  std::vector<uint64_t> ids = {1, 2, 3};
  const std::vector<float> data = RandomVectors(3, kDim, 61);
  UpsertAll("tiny", ids, data);
  EXPECT_THAT(Build("tiny"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Build("absent"), StatusIs(absl::StatusCode::kNotFound));
  // Exact indexes accept Build as a no-op.
  ASSERT_THAT(Create("exact"), IsOk());
  EXPECT_THAT(Build("exact"), IsOk());
}

TEST_F(ServerTest, ReplaceAndRemoveOverTheWire) {
  LoadMainIndex();
  // Replace id 7 with a far-away vector: the count stays, the new vector is found.
  std::vector<float> moved(kDim, 100.0f);
  ASSERT_THAT(Upsert(MakeUpsert("main", {7}, moved, 0, 1)), IsOk());
  absl::StatusOr<v1::IndexInfo> info = Get("main");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->vector_count(), static_cast<uint64_t>(kNumVectors));
  v1::FindNeighborsRequest request = MakeFind("main", moved, 1);
  request.set_return_full_datapoint(true);
  absl::StatusOr<v1::FindNeighborsResponse> response = Find(request);
  ASSERT_THAT(response, IsOk());
  ASSERT_EQ(response->nearest_neighbors(0).neighbors_size(), 1);
  const auto& nearest = response->nearest_neighbors(0).neighbors(0);
  EXPECT_EQ(nearest.datapoint().datapoint_id(), 7u);
  EXPECT_FLOAT_EQ(nearest.distance(), 0.0f);
  EXPECT_THAT(std::vector<float>(nearest.datapoint().feature_vector().begin(),
                                 nearest.datapoint().feature_vector().end()),
              ::testing::ElementsAreArray(moved));

  // Remove 7 and an unknown id: one removed; 7 is no longer found.
  v1::RemoveDatapointsRequest remove;
  remove.set_index("main");
  remove.add_datapoint_ids(7);
  remove.add_datapoint_ids(123456789);
  v1::RemoveDatapointsResponse removed;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->RemoveDatapoints(&context, remove, &removed).ok());
  }
  EXPECT_EQ(removed.removed_count(), 1u);
  info = Get("main");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->vector_count(), static_cast<uint64_t>(kNumVectors - 1));
  response = Find(MakeFind("main", moved, 1));
  ASSERT_THAT(response, IsOk());
  EXPECT_NE(response->nearest_neighbors(0).neighbors(0).datapoint().datapoint_id(), 7u);
  {
    grpc::ClientContext context;
    remove.set_index("absent");
    EXPECT_EQ(stub_->RemoveDatapoints(&context, remove, &removed).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(ServerTest, WrongDimensionIsInvalidArgumentWithExpectedAndActual) {
  LoadMainIndex();
  std::vector<float> short_vector(kDim - 1, 1.0f);
  v1::UpsertDatapointsRequest upsert = MakeUpsert("main", {1}, data_, 0, 1);
  upsert.add_datapoints()->set_datapoint_id(5000);
  upsert.mutable_datapoints(1)->mutable_feature_vector()->Add(short_vector.begin(),
                                                               short_vector.end());
  EXPECT_THAT(Upsert(upsert), StatusIs(absl::StatusCode::kInvalidArgument,
                                       absl::StrCat("expected dimension ", kDim, ", got ",
                                                    kDim - 1)));
  ExpectMainUnchanged();
  EXPECT_THAT(Find(MakeFind("main", short_vector, 10, 0, kDim - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("expected dimension ", kDim, ", got ", kDim - 1)));
}

TEST_F(ServerTest, NonFiniteValuesAreInvalidArgumentAndChangeNothing) {
  LoadMainIndex();
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    std::vector<float> vectors = RandomVectors(2, kDim, 71);
    vectors[kDim + 3] = bad;  // the second of two datapoints
    EXPECT_THAT(Upsert(MakeUpsert("main", {0, 5000}, vectors, 0, 2)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "datapoint 1 (id 5000) column 3 is not finite"));
    ExpectMainUnchanged();  // the valid first datapoint was not written either
    EXPECT_THAT(Find(MakeFind("main", vectors, 10)),
                StatusIs(absl::StatusCode::kInvalidArgument, "query 1 column 3 is not finite"));
  }
}

// The engine searches each group of queries that share settings as one batch; its errors
// still name the query by its place in the request, not by its row in the group.
TEST_F(ServerTest, ErrorsOfAMixedBatchNameTheQueryInTheRequest) {
  LoadMainIndex();
  std::vector<float> queries = RandomVectors(4, kDim, 73);
  queries[2 * kDim + 5] = std::numeric_limits<float>::quiet_NaN();
  v1::FindNeighborsRequest request = MakeFind("main", queries, 10, 2);
  // Groups: {0, 2} at k 10 and {1, 3} at k 5; query 2 is row 1 of its group.
  request.mutable_queries(1)->set_neighbor_count(5);
  request.mutable_queries(3)->set_neighbor_count(5);
  absl::StatusOr<v1::FindNeighborsResponse> response = Find(request);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kInvalidArgument,
                                 "query 2 column 5 is not finite (nan)"));
  EXPECT_THAT(response.status().message(), ::testing::Not(::testing::HasSubstr("row")));
  // A setting the engine refuses names the first query of its group.
  queries[2 * kDim + 5] = 0.5f;
  request = MakeFind("main", queries, 10, 2);
  request.mutable_queries(1)->set_prefix_dim(3);
  request.mutable_queries(3)->set_prefix_dim(3);
  request.mutable_queries(3)->set_shortlist_size(20);
  EXPECT_THAT(Find(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                      "query 3: shortlist_size 20 needs the funnel"));
  ExpectMainUnchanged();
}

TEST_F(ServerTest, NeighborCountLimits) {
  LoadMainIndex();
  const std::vector<float> query(probe_.begin(), probe_.begin() + kDim);
  EXPECT_THAT(Find(MakeFind("main", query, -1)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Find(MakeFind("main", query, 1001)),
              StatusIs(absl::StatusCode::kResourceExhausted, "max_neighbor_count is 1000"));
  absl::StatusOr<v1::FindNeighborsResponse> at_limit = Find(MakeFind("main", query, 1000));
  ASSERT_THAT(at_limit, IsOk());
  EXPECT_EQ(at_limit->nearest_neighbors(0).neighbors_size(), 1000);
  absl::StatusOr<v1::FindNeighborsResponse> defaulted = Find(MakeFind("main", query, 0));
  ASSERT_THAT(defaulted, IsOk());
  EXPECT_EQ(defaulted->nearest_neighbors(0).neighbors_size(), 10);
  ExpectMainUnchanged();
}

TEST_F(ServerTest, PrefixDimAndPartitionsOutOfRangeAreInvalidArgument) {
  LoadMainIndex();
  const std::vector<float> query(probe_.begin(), probe_.begin() + kDim);
  for (int prefix : {-1, kDim + 1}) {
    v1::FindNeighborsRequest request = MakeFind("main", query, 10);
    request.mutable_queries(0)->set_prefix_dim(prefix);
    EXPECT_THAT(Find(request), StatusIs(absl::StatusCode::kInvalidArgument)) << prefix;
  }
  EXPECT_THAT(Find(MakeFind("main", query, 10, -1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  v1::FindNeighborsRequest prefixed = MakeFind("main", query, 10);
  prefixed.mutable_queries(0)->set_prefix_dim(kDim / 2);
  EXPECT_THAT(Find(prefixed), IsOk());
  ExpectMainUnchanged();
}

TEST_F(ServerTest, UnknownOrEmptyIndexNameIsRejected) {
  const std::vector<float> query(kDim, 1.0f);
  EXPECT_THAT(Find(MakeFind("absent", query, 10)),
              StatusIs(absl::StatusCode::kNotFound, "absent"));
  EXPECT_THAT(Upsert(MakeUpsert("absent", {1}, query, 0, 1)),
              StatusIs(absl::StatusCode::kNotFound, "absent"));
  EXPECT_THAT(Get("absent"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Find(MakeFind("", query, 10)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Upsert(MakeUpsert("", {1}, query, 0, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Get(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ServerTest, ZeroVectorUnderCosineIsInvalidArgument) {
  ASSERT_THAT(Create("cos", v1::METRIC_COSINE), IsOk());
  std::vector<float> vectors = RandomVectors(2, kDim, 81);
  std::fill(vectors.begin() + kDim, vectors.end(), 0.0f);
  EXPECT_THAT(Upsert(MakeUpsert("cos", {1, 2}, vectors, 0, 2)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<v1::IndexInfo> info = Get("cos");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->vector_count(), 0u);
  ASSERT_THAT(Upsert(MakeUpsert("cos", {1}, vectors, 0, 1)), IsOk());
  EXPECT_THAT(Find(MakeFind("cos", std::vector<float>(kDim, 0.0f), 10)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ServerTest, BatchOverMaxBatchSizeIsResourceExhaustedNamingTheLimit) {
  LoadMainIndex();
  const std::vector<float> queries = RandomVectors(1025, kDim, 91);
  EXPECT_THAT(Find(MakeFind("main", queries, 10)),
              StatusIs(absl::StatusCode::kResourceExhausted, "max_batch_size is 1024, got 1025"));
  std::vector<uint64_t> ids(1025);
  for (int i = 0; i < 1025; ++i) ids[i] = 100000 + i;
  EXPECT_THAT(Upsert(MakeUpsert("main", ids, queries, 0, 1025)),
              StatusIs(absl::StatusCode::kResourceExhausted, "max_batch_size is 1024, got 1025"));
  ExpectMainUnchanged();
  // Exactly at the limit is fine.
  const std::vector<float> at_limit(queries.begin(), queries.begin() + 1024 * kDim);
  absl::StatusOr<v1::FindNeighborsResponse> response = Find(MakeFind("main", at_limit, 10));
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->nearest_neighbors_size(), 1024);
}

TEST_F(ServerTest, EmptyIndexAnswersZeroResults) {
  ASSERT_THAT(Create("empty"), IsOk());
  absl::StatusOr<v1::FindNeighborsResponse> response =
      Find(MakeFind("empty", RandomVectors(3, kDim, 1), 10));
  ASSERT_THAT(response, IsOk());
  ASSERT_EQ(response->nearest_neighbors_size(), 3);
  for (const auto& list : response->nearest_neighbors()) EXPECT_EQ(list.neighbors_size(), 0);
  // A request with no queries answers no lists.
  v1::FindNeighborsRequest none;
  none.set_index("empty");
  response = Find(none);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->nearest_neighbors_size(), 0);
}

TEST_F(ServerTest, ConcurrentSearchesWhileUpserting) {
  LoadMainIndex();
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int batch = 0; batch < 20; ++batch) {
      std::vector<uint64_t> ids(100);
      for (int i = 0; i < 100; ++i) ids[i] = 10000 + batch * 100 + i;
      const std::vector<float> data = RandomVectors(100, kDim, 1000 + batch);
      if (!Upsert(MakeUpsert("main", ids, data, 0, 100)).ok()) ++failures;
    }
    writing = false;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int r = 0; r < 30; ++r) {
        const std::vector<float> queries = RandomVectors(8, kDim, 100 * t + r);
        absl::StatusOr<v1::FindNeighborsResponse> response = Find(MakeFind("main", queries, 10));
        if (!response.ok()) {
          ++failures;
          ADD_FAILURE() << response.status();
          continue;
        }
        for (const auto& list : response->nearest_neighbors()) {
          if (list.neighbors_size() != 10) ++failures;
          for (int j = 0; j < list.neighbors_size(); ++j) {
            const uint64_t id = list.neighbors(j).datapoint().datapoint_id();
            if (!(id < kNumVectors || (id >= 10000 && id < 12000))) ++failures;
            if (j > 0 && list.neighbors(j).distance() < list.neighbors(j - 1).distance()) {
              ++failures;
            }
          }
        }
      }
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<v1::IndexInfo> info = Get("main");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->vector_count(), static_cast<uint64_t>(kNumVectors + 2000));
}

TEST_F(ServerTest, AsManyConcurrentRpcsAsGrpcThreadsAreAllServed) {
  grpc_threads_ = 2;
  RestartServer();
  constexpr int kBigDim = 64;
  constexpr int kBig = 20000;
  ASSERT_NO_FATAL_FAILURE(LoadRandomExactIndex("big", kBig, kBigDim, 3));
  const v1::FindNeighborsRequest request =
      MakeFind("big", RandomVectors(64, kBigDim, 4), 10, 0, kBigDim);
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&] {
      for (int r = 0; r < 15; ++r) {
        absl::StatusOr<v1::FindNeighborsResponse> response = Find(request);
        if (!response.ok()) {
          ++failures;
          ADD_FAILURE() << response.status();
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(ServerTest, DeadlineTooShortIsDeadlineExceeded) {
  constexpr int kBigDim = 64;
  constexpr int kBig = 20000;
  ASSERT_NO_FATAL_FAILURE(LoadRandomExactIndex("big", kBig, kBigDim, 3));
  const std::vector<float> queries = RandomVectors(1024, kBigDim, 4);
  EXPECT_THAT(Find(MakeFind("big", queries, 100, 0, kBigDim), absl::Microseconds(1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // The server is still healthy afterwards.
  EXPECT_THAT(Find(MakeFind("big", RandomVectors(1, kBigDim, 5), 10, 0, kBigDim)), IsOk());
}

// A client that cancels a long search stops it on the server: the handler ends with
// CANCELLED (counted in nestor_requests_total) instead of finishing the search. The server
// asks gRPC about cancellation only after its poll interval (10 ms) of search and then
// every 10 ms, so the search (~26 GFLOP, 0.3-1 s on 2 cores) is first timed uncancelled,
// and the cancel comes at a fifth of that time, leaving at least 80% of it to notice.
TEST_F(ServerTest, CancelledSearchStopsOnTheServer) {
  constexpr int kLongDim = 128;
  constexpr int kLong = 100000;
  ASSERT_NO_FATAL_FAILURE(LoadRandomExactIndex("long", kLong, kLongDim, 11));
  const v1::FindNeighborsRequest request =
      MakeFind("long", RandomVectors(1024, kLongDim, 12), 10, 0, kLongDim);
  auto count = [this](const char* code) {
    return MetricValue(HttpGet(server_->metrics_port(), "/metrics"), "nestor_requests_total",
                       {"method=\"FindNeighbors\"", absl::StrCat("code=\"", code, "\"")});
  };

  const absl::Time start = absl::Now();
  ASSERT_THAT(Find(request), IsOk());
  const absl::Duration uncancelled = absl::Now() - start;
  if (uncancelled < absl::Milliseconds(150)) {
    GTEST_SKIP() << "the search took " << uncancelled << ": too fast to cancel reliably";
  }
  ASSERT_EQ(count("OK"), 1);

  grpc::ClientContext context;
  v1::FindNeighborsResponse response;
  const absl::Duration cancel_after = std::max(absl::Milliseconds(30), uncancelled / 5);
  std::thread canceller([&context, cancel_after] {
    absl::SleepFor(cancel_after);
    context.TryCancel();
  });
  const grpc::Status status = stub_->FindNeighbors(&context, request, &response);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();

  // The handler finishes on its own thread after the client has gone; wait for its count.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (count("CANCELLED") < 1 && count("OK") < 2 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(count("CANCELLED"), 1);
  EXPECT_EQ(count("OK"), 1);  // the cancelled search did not run to the end
}

TEST_F(ServerTest, RestartServesTheSameResults) {
  LoadMainIndex();
  std::vector<uint64_t> ids(kNumVectors);
  for (int i = 0; i < kNumVectors; ++i) ids[i] = i;
  ASSERT_THAT(Create("part", v1::METRIC_INNER_PRODUCT, 8), IsOk());
  UpsertAll("part", ids, data_);
  ASSERT_THAT(Build("part"), IsOk());
  absl::StatusOr<v1::FindNeighborsResponse> before = Find(MakeFind("part", probe_, 10, 2));
  ASSERT_THAT(before, IsOk());

  RestartServer();

  ExpectMainUnchanged();
  absl::StatusOr<v1::IndexInfo> info = Get("part");
  ASSERT_THAT(info, IsOk());
  EXPECT_TRUE(info->built());
  EXPECT_EQ(info->config().metric(), v1::METRIC_INNER_PRODUCT);
  absl::StatusOr<v1::FindNeighborsResponse> after = Find(MakeFind("part", probe_, 10, 2));
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());

  // A deleted index stays deleted across a restart (its snapshot is removed).
  ASSERT_THAT(Delete("part"), IsOk());
  RestartServer();
  EXPECT_THAT(Get("part"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ServerTest, DataDirThatIsAFileIsFailedPrecondition) {
  const std::filesystem::path file = data_dir_ / "a-file";
  std::ofstream(file) << "not a directory";
  ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_grpc_port(0);
  config.set_metrics_port(0);
  config.set_data_dir(file.string());
  EXPECT_THAT(NestorServer::Create(config),
              StatusIs(absl::StatusCode::kFailedPrecondition, "is not a directory"));
}

// A second server on a port already serving must fail to start, not share the port
// (gRPC's default SO_REUSEPORT would hand it a random share of the connections).
TEST_F(ServerTest, SecondServerOnABusyGrpcPortFailsToStart) {
  ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_grpc_port(static_cast<uint32_t>(server_->grpc_port()));
  config.set_metrics_port(0);
  config.set_data_dir((data_dir_ / "second").string());
  EXPECT_THAT(NestorServer::Create(config),
              StatusIs(absl::StatusCode::kUnavailable,
                       absl::StrCat("cannot serve gRPC on 127.0.0.1:", server_->grpc_port(),
                                    ": is the port in use")));
  // The first server still answers.
  EXPECT_THAT(Create("still-here"), IsOk());
}

TEST_F(ServerTest, CorruptSnapshotIsSkippedNotFatal) {
  LoadMainIndex();
  ASSERT_THAT(Create("doomed"), IsOk());
  UpsertAll("doomed", ids_, data_);
  {
    v1::SaveIndexRequest request;
    request.set_name("doomed");
    v1::SaveIndexResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->SaveIndex(&context, request, &response).ok());
    EXPECT_EQ(response.path(), (data_dir_ / "doomed").string());
  }
  stub_.reset();
  ASSERT_THAT(server_->Shutdown(), IsOk());
  server_.reset();
  // Truncate every file of the snapshot to half its size.
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_ / "doomed")) {
    std::filesystem::resize_file(entry.path(), std::filesystem::file_size(entry.path()) / 2);
  }
  std::filesystem::create_directories(data_dir_ / "not-an-index");
  StartServer();
  EXPECT_THAT(Get("doomed"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Get("not-an-index"), StatusIs(absl::StatusCode::kNotFound));
  ExpectMainUnchanged();
}

TEST_F(ServerTest, HealthServiceAnswersServing) {
  grpc::GenericStub generic(channel_);
  // grpc.health.v1.HealthCheckRequest{service: ""} encodes to zero bytes.
  grpc::ByteBuffer request;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  std::promise<grpc::Status> done;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&done](grpc::Status status) { done.set_value(status); });
  grpc::Status status = done.get_future().get();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  // HealthCheckResponse{status: SERVING (1)}: field 1, varint 1.
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(ServerTest, MetricsEndpointCountsRequestsAndQueries) {
  LoadMainIndex();  // one OK FindNeighbors (the probe baseline, 5 queries)
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(Find(MakeFind("main", RandomVectors(4, kDim, i), 10)), IsOk());
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(Find(MakeFind("main", RandomVectors(1, kDim, i), -1)),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  ASSERT_THAT(Create("gone"), IsOk());
  ASSERT_THAT(Delete("gone"), IsOk());
  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(MetricValue(text, "nestor_requests_total",
                        {"method=\"FindNeighbors\"", "code=\"OK\""}), 4);
  EXPECT_EQ(MetricValue(text, "nestor_requests_total",
                        {"method=\"FindNeighbors\"", "code=\"INVALID_ARGUMENT\""}), 2);
  EXPECT_EQ(MetricValue(text, "nestor_requests_total",
                        {"method=\"UpsertDatapoints\"", "code=\"OK\""}), 2);
  EXPECT_EQ(MetricValue(text, "nestor_queries_total", {"method=\"FindNeighbors\""}), 5 + 12);
  EXPECT_EQ(MetricValue(text, "nestor_request_duration_seconds_count",
                        {"method=\"FindNeighbors\""}), 6);
  EXPECT_THAT(text, HasSubstr("nestor_request_duration_seconds_bucket{"));
  EXPECT_THAT(text, HasSubstr("le=\"0.0001\""));
  EXPECT_EQ(MetricValue(text, "nestor_index_vectors", {"index=\"main\""}), kNumVectors);
  EXPECT_GT(MetricValue(text, "nestor_index_memory_bytes", {"index=\"main\""}),
            kNumVectors * kDim * 4 - 1);
  EXPECT_EQ(MetricValue(text, "nestor_index_vectors", {"index=\"gone\""}), -1);
  const double memory = MetricValue(text, "nestor_index_memory_bytes", {"index=\"main\""});
  EXPECT_NEAR(MetricValue(text, "nestor_index_bytes_per_vector", {"index=\"main\""}),
              memory / kNumVectors, 1e-6 * memory);
  EXPECT_GE(MetricValue(text, "nestor_index_build_seconds", {"index=\"main\""}), 0);
  EXPECT_EQ(MetricValue(text, "nestor_index_bytes_per_vector", {"index=\"gone\""}), -1);
}

// nestor_queries_by_prefix_dim_total counts each index's queries by the prefix they
// scored at (0 counts as the dimension), nestor_exact_queries_total its brute-force ones;
// a failed search counts nothing; deleting an index drops its series, and a new index of
// the same name starts from zero.
TEST_F(ServerTest, PrefixQueryCounterIsPerIndexAndGoesWithTheIndex) {
  std::vector<uint64_t> ids(200);
  for (int i = 0; i < 200; ++i) ids[i] = i;
  const std::vector<float> data = RandomVectors(200, kDim, 41);
  for (const char* name : {"pa", "pb"}) {
    ASSERT_THAT(Create(name), IsOk());
    UpsertAll(name, ids, data);
  }
  auto find = [&](const std::string& name, int num_queries, int prefix_dim,
                  int num_exact = 0) {
    v1::FindNeighborsRequest request =
        MakeFind(name, RandomVectors(num_queries, kDim, 42), 5);
    for (auto& query : *request.mutable_queries()) query.set_prefix_dim(prefix_dim);
    for (int i = 0; i < num_exact; ++i) request.mutable_queries(i)->set_exact(true);
    return Find(request).status();
  };
  ASSERT_THAT(find("pa", 3, 8, /*num_exact=*/2), IsOk());
  ASSERT_THAT(find("pa", 2, 0), IsOk());
  ASSERT_THAT(find("pa", 1, kDim), IsOk());
  ASSERT_THAT(find("pb", 4, 4), IsOk());
  EXPECT_THAT(find("pa", 6, kDim + 1), StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string metric = "nestor_queries_by_prefix_dim_total";
  auto count = [&](const std::string& text, const std::string& index, int prefix_dim) {
    return MetricValue(text, metric,
                       {absl::StrCat("index=\"", index, "\""),
                        absl::StrCat("prefix_dim=\"", prefix_dim, "\"")});
  };
  std::string text = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(count(text, "pa", 8), 3);
  EXPECT_EQ(count(text, "pa", kDim), 2 + 1);
  EXPECT_EQ(count(text, "pa", kDim + 1), -1);
  EXPECT_EQ(count(text, "pa", 4), -1);
  EXPECT_EQ(count(text, "pb", 4), 4);
  EXPECT_EQ(count(text, "pb", kDim), -1);
  // Of those, brute-force (Query.exact) queries are also counted on their own.
  EXPECT_EQ(MetricValue(text, "nestor_exact_queries_total", {"index=\"pa\""}), 2);
  EXPECT_EQ(MetricValue(text, "nestor_exact_queries_total", {"index=\"pb\""}), 0);

  ASSERT_THAT(Delete("pa"), IsOk());
  text = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(count(text, "pa", 8), -1);
  EXPECT_EQ(count(text, "pa", kDim), -1);
  EXPECT_EQ(MetricValue(text, "nestor_exact_queries_total", {"index=\"pa\""}), -1);
  EXPECT_EQ(count(text, "pb", 4), 4);

  ASSERT_THAT(Create("pa"), IsOk());
  UpsertAll("pa", ids, data);
  ASSERT_THAT(find("pa", 1, 8), IsOk());
  text = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(count(text, "pa", 8), 1);
  EXPECT_EQ(count(text, "pa", kDim), -1);
}

// Stray HTTP requests (browsers, scanners, probes) get 404/405 and never take the
// server down; Debian's civetweb used to crash writing its own error pages.
TEST_F(ServerTest, MetricsPortAnswersOtherPathsAndMethodsWithoutCrashing) {
  const int port = server_->metrics_port();
  ASSERT_THAT(Create("first"), IsOk());  // so that /metrics has a sample to show
  EXPECT_THAT(HttpRequest(port, "GET", "/favicon.ico"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(HttpRequest(port, "GET", "/"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(HttpRequest(port, "POST", "/metrics"), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(HttpRequest(port, "DELETE", "/metrics"), StartsWith("HTTP/1.1 405"));
  const std::string head = HttpRequest(port, "HEAD", "/metrics");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head, Not(HasSubstr("nestor_requests_total")));
  EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("nestor_requests_total"));
  ASSERT_THAT(Create("still_up"), IsOk());  // the gRPC side is still serving too
}

// An int8-coded partitioned index ("main8", 8 partitions) holding ids_ / data_.
v1::IndexConfig Int8Config(uint32_t default_reorder_k = 0) {
  v1::IndexConfig config;
  config.set_dimension(kDim);
  config.set_metric(v1::METRIC_L2);
  config.set_num_partitions(8);
  config.set_code_type(v1::CODE_TYPE_INT8);
  config.set_default_reorder_k(default_reorder_k);
  return config;
}

TEST_F(ServerTest, Int8IndexScanningEverythingWithFullReorderMatchesOracle) {
  LoadMainIndex();
  absl::StatusOr<v1::IndexInfo> created = Create("main8", Int8Config());
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->config().code_type(), v1::CODE_TYPE_INT8);
  EXPECT_EQ(created->code_type(), "int8");
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  // Every partition scanned and every vector re-scored exactly: the brute-force answer,
  // for a batch of 32 queries sharing their settings.
  const std::vector<float> queries = RandomVectors(32, kDim, 101);
  v1::FindNeighborsRequest request = MakeFind("main8", queries, 10, /*partitions_to_search=*/8);
  for (auto& query : *request.mutable_queries()) query.set_reorder_k(kNumVectors);
  absl::StatusOr<v1::FindNeighborsResponse> response = Find(request);
  ASSERT_THAT(response, IsOk());
  ExpectMatchesOracle(*response, ids_, data_, queries, v1::METRIC_L2, 10);
  // reorder_k above the vector count is clamped by the engine, not an error.
  request.mutable_queries(0)->set_reorder_k(10 * kNumVectors);
  EXPECT_THAT(Find(request), IsOk());
}

// Query.exact on a partitioned int8 index: in a batch where the other queries search one
// partition, the exact ones get the brute-force answer at the smallest settings, and a
// request of exact queries alone matches the oracle for all of them.
TEST_F(ServerTest, ExactQueriesOnAPartitionedIndexMatchTheOracle) {
  LoadMainIndex();
  ASSERT_THAT(Create("main8", Int8Config()), IsOk());
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  const std::vector<float> queries = RandomVectors(32, kDim, 103);
  v1::FindNeighborsRequest request = MakeFind("main8", queries, 10, /*partitions_to_search=*/1);
  for (auto& query : *request.mutable_queries()) query.set_reorder_k(10);
  v1::FindNeighborsRequest exact = request;
  for (auto& query : *exact.mutable_queries()) query.set_exact(true);
  absl::StatusOr<v1::FindNeighborsResponse> all_exact = Find(exact);
  ASSERT_THAT(all_exact, IsOk());
  ExpectMatchesOracle(*all_exact, ids_, data_, queries, v1::METRIC_L2, 10);

  for (int i = 0; i < 32; i += 2) request.mutable_queries(i)->set_exact(true);
  absl::StatusOr<v1::FindNeighborsResponse> mixed = Find(request);
  ASSERT_THAT(mixed, IsOk());
  int approximate_misses = 0;
  for (int i = 0; i < 32; ++i) {
    const std::string got = mixed->nearest_neighbors(i).SerializeAsString();
    if (i % 2 == 0) {
      EXPECT_EQ(got, all_exact->nearest_neighbors(i).SerializeAsString()) << "query " << i;
    } else {
      approximate_misses += got != all_exact->nearest_neighbors(i).SerializeAsString();
    }
  }
  // One partition of 8 misses part of the exact answer for some query, or this test
  // could not tell exact from approximate.
  EXPECT_GT(approximate_misses, 0);
}

TEST_F(ServerTest, MixedReorderKInOneBatchEachAnswersAsIfAlone) {
  LoadMainIndex();
  ASSERT_THAT(Create("main8", Int8Config()), IsOk());
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  const std::vector<float> queries = RandomVectors(4, kDim, 102);
  const int reorders[] = {kNumVectors, 10, 0, kNumVectors};
  v1::FindNeighborsRequest mixed = MakeFind("main8", queries, 10, 8);
  for (int i = 0; i < 4; ++i) mixed.mutable_queries(i)->set_reorder_k(reorders[i]);
  absl::StatusOr<v1::FindNeighborsResponse> together = Find(mixed);
  ASSERT_THAT(together, IsOk());
  ASSERT_EQ(together->nearest_neighbors_size(), 4);
  for (int i = 0; i < 4; ++i) {
    const std::vector<float> one(queries.begin() + i * kDim, queries.begin() + (i + 1) * kDim);
    v1::FindNeighborsRequest alone = MakeFind("main8", one, 10, 8);
    alone.mutable_queries(0)->set_reorder_k(reorders[i]);
    absl::StatusOr<v1::FindNeighborsResponse> single = Find(alone);
    ASSERT_THAT(single, IsOk());
    EXPECT_EQ(together->nearest_neighbors(i).SerializeAsString(),
              single->nearest_neighbors(0).SerializeAsString())
        << "query " << i << " reorder_k " << reorders[i];
  }
}

TEST_F(ServerTest, NegativeReorderKIsInvalidArgumentAndChangesNothing) {
  LoadMainIndex();
  const std::vector<float> queries(probe_.begin(), probe_.begin() + 2 * kDim);
  v1::FindNeighborsRequest request = MakeFind("main", queries, 10);
  request.mutable_queries(1)->set_reorder_k(-1);
  EXPECT_THAT(Find(request),
              StatusIs(absl::StatusCode::kInvalidArgument, "query 1: reorder_k must be >= 0"));
  ExpectMainUnchanged();

  ASSERT_THAT(Create("main8", Int8Config()), IsOk());
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  request.set_index("main8");
  EXPECT_THAT(Find(request), StatusIs(absl::StatusCode::kInvalidArgument, "reorder_k"));
  absl::StatusOr<v1::IndexInfo> info = Get("main8");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->vector_count(), static_cast<uint64_t>(kNumVectors));
}

// max_codes is checked for every query, also where it is ignored (an exact index, an
// exact query), and the error names the query as the other per-query checks do.
TEST_F(ServerTest, NegativeMaxCodesIsInvalidArgumentNamingTheQuery) {
  LoadMainIndex();
  const std::vector<float> queries(probe_.begin(), probe_.begin() + 2 * kDim);
  v1::FindNeighborsRequest request = MakeFind("main", queries, 10);
  request.mutable_queries(1)->set_max_codes(-1);
  EXPECT_THAT(Find(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "query 1: max_codes must be >= 0 (0 means the tuned max_codes or no "
                       "limit), got -1"));
  ExpectMainUnchanged();

  ASSERT_THAT(Create("main8", Int8Config()), IsOk());
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  request.set_index("main8");
  request.mutable_queries(1)->set_max_codes(std::numeric_limits<int64_t>::min());
  EXPECT_THAT(Find(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                      "query 1: max_codes must be >= 0"));
  request.mutable_queries(1)->set_exact(true);
  EXPECT_THAT(Find(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                      "query 1: max_codes must be >= 0"));
  // Ignored where it cannot apply: an exact index still answers exactly.
  v1::FindNeighborsRequest capped = MakeFind("main", queries, 10);
  for (auto& query : *capped.mutable_queries()) query.set_max_codes(1);
  absl::StatusOr<v1::FindNeighborsResponse> exact = Find(capped);
  ASSERT_THAT(exact, IsOk());
  ExpectMatchesOracle(*exact, ids_, data_, queries, v1::METRIC_L2, 10);
}

// max_codes 1: the nearest partition is opened and holds at least one vector, so no
// other is, whatever partitions_to_search allows: the answer of partitions_to_search 1.
// Queries of one batch with different max_codes are searched apart, each as if alone.
TEST_F(ServerTest, MaxCodesOneSearchesOnlyTheNearestPartition) {
  LoadMainIndex();
  ASSERT_THAT(Create("main8", Int8Config()), IsOk());
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  const std::vector<float> queries = RandomVectors(16, kDim, 104);
  v1::FindNeighborsRequest one_partition = MakeFind("main8", queries, 10, 1);
  v1::FindNeighborsRequest capped = MakeFind("main8", queries, 10, 8);
  v1::FindNeighborsRequest all_partitions = MakeFind("main8", queries, 10, 8);
  v1::FindNeighborsRequest mixed = MakeFind("main8", queries, 10, 8);
  for (int i = 0; i < 16; ++i) {
    for (auto* request : {&one_partition, &capped, &all_partitions, &mixed}) {
      request->mutable_queries(i)->set_reorder_k(40);
    }
    capped.mutable_queries(i)->set_max_codes(1);
    if (i % 2 == 0) mixed.mutable_queries(i)->set_max_codes(1);
  }
  absl::StatusOr<v1::FindNeighborsResponse> expected = Find(one_partition);
  absl::StatusOr<v1::FindNeighborsResponse> got = Find(capped);
  absl::StatusOr<v1::FindNeighborsResponse> uncapped = Find(all_partitions);
  absl::StatusOr<v1::FindNeighborsResponse> together = Find(mixed);
  for (const auto* r : {&expected, &got, &uncapped, &together}) ASSERT_THAT(*r, IsOk());
  EXPECT_EQ(got->SerializeAsString(), expected->SerializeAsString());
  // One partition of 8 misses part of the answer for some query, or this test could not
  // tell a capped search from an uncapped one.
  ASSERT_NE(got->SerializeAsString(), uncapped->SerializeAsString());
  // max_codes at least the index size is no limit.
  for (auto& query : *capped.mutable_queries()) query.set_max_codes(kNumVectors);
  absl::StatusOr<v1::FindNeighborsResponse> unlimited = Find(capped);
  ASSERT_THAT(unlimited, IsOk());
  EXPECT_EQ(unlimited->SerializeAsString(), uncapped->SerializeAsString());
  ASSERT_EQ(together->nearest_neighbors_size(), 16);
  for (int i = 0; i < 16; ++i) {
    const v1::FindNeighborsResponse& alone = i % 2 == 0 ? *got : *uncapped;
    EXPECT_EQ(together->nearest_neighbors(i).SerializeAsString(),
              alone.nearest_neighbors(i).SerializeAsString())
        << "query " << i;
  }
}

TEST_F(ServerTest, HugeCandidateCountsAreInvalidArgumentNotAnAllocation) {
  LoadMainIndex();
  ASSERT_THAT(Create("main8", Int8Config()), IsOk());
  UpsertAll("main8", ids_, data_);
  ASSERT_THAT(Build("main8"), IsOk());
  const std::vector<float> query(probe_.begin(), probe_.begin() + kDim);
  v1::FindNeighborsRequest request = MakeFind("main8", query, 10);
  request.mutable_queries(0)->set_reorder_k(2000000000);
  EXPECT_THAT(Find(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                      "reorder_k must be in [0, 1000000] (0 = index default), "
                                      "got 2000000000"));
  // Still serving.
  request.mutable_queries(0)->set_reorder_k(1000000);
  absl::StatusOr<v1::FindNeighborsResponse> found = Find(request);
  ASSERT_THAT(found, IsOk());
  EXPECT_EQ(found->nearest_neighbors(0).neighbors_size(), 10);
}

TEST_F(ServerTest, UnknownCodeTypeOrHugeReorderKIsInvalidArgumentAndCreatesNothing) {
  v1::IndexConfig config = Int8Config();
  config.set_code_type(static_cast<v1::CodeType>(7));
  EXPECT_THAT(Create("bad", config),
              StatusIs(absl::StatusCode::kInvalidArgument, "code_type: unknown value 7"));
  EXPECT_THAT(Get("bad"), StatusIs(absl::StatusCode::kNotFound));
  config = Int8Config(/*default_reorder_k=*/3000000000u);
  EXPECT_THAT(Create("bad", config),
              StatusIs(absl::StatusCode::kInvalidArgument, "default_reorder_k"));
  EXPECT_THAT(Get("bad"), StatusIs(absl::StatusCode::kNotFound));
}

// An exact index (num_partitions 0) is refused every option that only a partitioned index
// can use, with INVALID_ARGUMENT naming the option, the value given and the one expected,
// and nothing is created. Defaults, CODE_TYPE_FLOAT and the config GetIndex reports for
// an exact index are accepted.
TEST_F(ServerTest, ExactIndexWithPartitionedOnlyOptionsIsInvalidArgumentAndCreatesNothing) {
  v1::IndexConfig exact;
  exact.set_dimension(kDim);
  struct Case {
    const char* what;
    std::function<void(v1::IndexConfig*)> set;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"routing_dim", [](v1::IndexConfig* c) { c->set_routing_dim(8); },
       "routing_dim applies to partitioned indexes only (num_partitions > 0); the exact index "
       "got routing_dim=8, expected 0 (= dimension 16)"},
      {"matryoshka_dims",
       [](v1::IndexConfig* c) {
         c->add_matryoshka_dims(4);
         c->add_matryoshka_dims(8);
       },
       "the exact index got matryoshka_dims={4, 8}, expected {}"},
      {"code_type", [](v1::IndexConfig* c) { c->set_code_type(v1::CODE_TYPE_INT8); },
       "the exact index got code_type=CODE_TYPE_INT8, expected CODE_TYPE_UNSPECIFIED or "
       "CODE_TYPE_FLOAT"},
      {"default_reorder_k", [](v1::IndexConfig* c) { c->set_default_reorder_k(40); },
       "the exact index got reorder_k=40, expected 0"},
      {"default_partitions_to_search",
       [](v1::IndexConfig* c) { c->set_default_partitions_to_search(3); },
       "the exact index got default_partitions_to_search=3, expected 0"},
      {"pca_rotation", [](v1::IndexConfig* c) { c->set_pca_rotation(true); },
       "the exact index got pca_rotation=true, expected false"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    v1::IndexConfig config = exact;
    c.set(&config);
    EXPECT_THAT(Create("exact-bad", config),
                StatusIs(absl::StatusCode::kInvalidArgument, c.message));
    EXPECT_THAT(Get("exact-bad"), StatusIs(absl::StatusCode::kNotFound));
    // The same option is fine with partitions.
    config.set_num_partitions(4);
    ASSERT_THAT(Create("part-ok", config), IsOk());
    ASSERT_THAT(Delete("part-ok"), IsOk());
  }
  v1::ListIndexesResponse list;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListIndexes(&context, v1::ListIndexesRequest(), &list).ok());
  }
  EXPECT_EQ(list.indexes_size(), 0);

  v1::IndexConfig noop = exact;
  noop.set_code_type(v1::CODE_TYPE_FLOAT);
  noop.set_routing_dim(kDim);
  absl::StatusOr<v1::IndexInfo> created = Create("exact-ok", noop);
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created->kind(), "exact");
  // What GetIndex reports for an exact index creates the same index again.
  absl::StatusOr<v1::IndexInfo> again = Create("exact-again", created->config());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->config().SerializeAsString(), created->config().SerializeAsString());
}

TEST_F(ServerTest, GetIndexReportsCodeTypeSimdPathAndBytesPerVector) {
  absl::StatusOr<v1::IndexInfo> exact = Create("exact");
  ASSERT_THAT(exact, IsOk());
  EXPECT_EQ(exact->code_type(), "float");
  EXPECT_EQ(exact->bytes_per_vector(), 0.0);  // empty
  EXPECT_THAT(exact->simd_path(), ::testing::AnyOf("avx512", "avx2", "portable"));

  ASSERT_THAT(Create("main8", Int8Config(/*default_reorder_k=*/64)), IsOk());
  std::vector<uint64_t> ids(kNumVectors);
  for (int i = 0; i < kNumVectors; ++i) ids[i] = i;
  const std::vector<float> data = RandomVectors(kNumVectors, kDim, 103);
  UpsertAll("main8", ids, data);
  UpsertAll("exact", ids, data);
  absl::StatusOr<v1::IndexInfo> built = Build("main8");
  ASSERT_THAT(built, IsOk());
  absl::StatusOr<v1::IndexInfo> info = Get("main8");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->SerializeAsString(), built->SerializeAsString());
  EXPECT_EQ(info->kind(), "partitioned");
  EXPECT_EQ(info->code_type(), "int8");
  EXPECT_EQ(info->config().code_type(), v1::CODE_TYPE_INT8);
  EXPECT_EQ(info->config().default_reorder_k(), 64u);
  EXPECT_THAT(info->simd_path(), ::testing::AnyOf("avx512", "avx2", "portable"));
  EXPECT_EQ(info->simd_path(), exact->simd_path());  // one CPU, one kernel path
  EXPECT_DOUBLE_EQ(info->bytes_per_vector(),
                   static_cast<double>(info->memory_bytes()) / kNumVectors);
  EXPECT_GE(info->build_seconds(), 0.0);
  // The float vectors (kept for the exact reorder) plus at least one byte per coordinate.
  EXPECT_GE(info->bytes_per_vector(), kDim * sizeof(float) + kDim);
  absl::StatusOr<v1::IndexInfo> exact_info = Get("exact");
  ASSERT_THAT(exact_info, IsOk());
  EXPECT_GE(exact_info->bytes_per_vector(), kDim * sizeof(float));

  // The code type and reorder default survive a restart (they are in the snapshot).
  RestartServer();
  absl::StatusOr<v1::IndexInfo> restored = Get("main8");
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ(restored->code_type(), "int8");
  EXPECT_EQ(restored->config().code_type(), v1::CODE_TYPE_INT8);
  EXPECT_EQ(restored->config().default_reorder_k(), 64u);
  EXPECT_DOUBLE_EQ(restored->bytes_per_vector(), info->bytes_per_vector());
}

// Matryoshka fields over the wire: the ladder, routing_dim and pca_rotation round-trip
// through CreateIndex / GetIndex; prefix and funnel queries match the oracle where they
// must; bad values are INVALID_ARGUMENT naming what is allowed; queries are counted by
// prefix dimension.
TEST_F(ServerTest, MatryoshkaFieldsOverTheWire) {
  v1::IndexConfig config;
  config.set_dimension(kDim);
  config.set_num_partitions(8);
  config.add_matryoshka_dims(4);
  config.add_matryoshka_dims(8);
  config.set_routing_dim(8);
  config.set_pca_rotation(true);
  absl::StatusOr<v1::IndexInfo> created = Create("mrl", config);
  ASSERT_THAT(created, IsOk());
  EXPECT_THAT(created->config().matryoshka_dims(), ::testing::ElementsAre(4, 8, kDim));
  EXPECT_EQ(created->config().routing_dim(), 8u);
  EXPECT_TRUE(created->config().pca_rotation());
  v1::IndexConfig bad = config;
  bad.set_routing_dim(5);
  EXPECT_THAT(Create("bad-routing", bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "routing_dim 5 is not in"));
  bad = config;
  bad.add_matryoshka_dims(2);  // not ascending
  EXPECT_THAT(Create("bad-ladder", bad), StatusIs(absl::StatusCode::kInvalidArgument));

  std::vector<uint64_t> ids(kNumVectors);
  for (int i = 0; i < kNumVectors; ++i) ids[i] = i;
  const std::vector<float> data = RandomVectors(kNumVectors, kDim, 71);
  UpsertAll("mrl", ids, data);
  ASSERT_THAT(Build("mrl"), IsOk());
  const std::vector<float> queries = RandomVectors(10, kDim, 72);
  // Full dimension, every partition, reorder covering everything: the oracle (the
  // rotation is orthonormal).
  v1::FindNeighborsRequest full = MakeFind("mrl", queries, 10, /*partitions_to_search=*/8);
  for (auto& query : *full.mutable_queries()) query.set_reorder_k(kNumVectors);
  absl::StatusOr<v1::FindNeighborsResponse> response = Find(full);
  ASSERT_THAT(response, IsOk());
  ExpectMatchesOracle(*response, ids, data, queries, v1::METRIC_L2, 10);
  // The funnel and a prefix query are served (mixed in one batch).
  v1::FindNeighborsRequest mixed = MakeFind("mrl", queries, 10, 8);
  for (int i = 0; i < mixed.queries_size(); ++i) {
    auto* query = mixed.mutable_queries(i);
    if (i % 2 == 0) {
      query->set_shortlist_dim(4);
      query->set_shortlist_size(50);
    } else {
      query->set_prefix_dim(8);
    }
  }
  absl::StatusOr<v1::FindNeighborsResponse> served = Find(mixed);
  ASSERT_THAT(served, IsOk());
  for (const auto& list : served->nearest_neighbors()) EXPECT_EQ(list.neighbors_size(), 10);

  const std::vector<float> query(queries.begin(), queries.begin() + kDim);
  auto find_with = [&](int prefix_dim, int shortlist_dim, int shortlist_size) {
    v1::FindNeighborsRequest request = MakeFind("mrl", query, 10);
    request.mutable_queries(0)->set_prefix_dim(prefix_dim);
    request.mutable_queries(0)->set_shortlist_dim(shortlist_dim);
    request.mutable_queries(0)->set_shortlist_size(shortlist_size);
    return Find(request);
  };
  EXPECT_THAT(find_with(6, 0, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "prefix_dim 6 is not in matryoshka_dims {4, 8, 16}"));
  EXPECT_THAT(find_with(4, 8, 50),
              StatusIs(absl::StatusCode::kInvalidArgument, "must be <= prefix_dim 4"));
  EXPECT_THAT(find_with(0, 4, 5),
              StatusIs(absl::StatusCode::kInvalidArgument, "must be >= k 10"));
  EXPECT_THAT(find_with(0, 0, 50), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(find_with(0, -4, 0), StatusIs(absl::StatusCode::kInvalidArgument));

  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(MetricValue(text, "nestor_queries_by_prefix_dim_total",
                        {"index=\"mrl\"", "prefix_dim=\"8\""}), 5);
  EXPECT_EQ(MetricValue(text, "nestor_queries_by_prefix_dim_total",
                        {"index=\"mrl\"", "prefix_dim=\"16\""}), 10 + 5);
}

}  // namespace
}  // namespace nestor::server

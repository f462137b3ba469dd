// nestor.v1.TuningService through the real generated stubs against an in-process
// NestorServer on an ephemeral loopback port (the pattern of server_test.cc): tuned
// defaults are swapped in atomically while searches run, a search without settings then
// answers exactly as one with the tuned settings spelled out, and bad requests get their
// exact status codes.
#include "server/tuning_service.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "proto/nestor.grpc.pb.h"
#include "server/server.h"
#include "server/status_util.h"
#include "tests/server/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor::server {
namespace {

using ::nestor::testing::IsOk;
using ::nestor::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int kDim = 16;
constexpr int kNumVectors = 3000;
constexpr int kNumPartitions = 32;
constexpr int kK = 10;

class TuningServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = FreshDataDir("nestor_tuning_service_test");
    ASSERT_THAT(StartServer(), IsOk());
    queries_ = RandomVectors(20, kDim, 99);
  }

  void TearDown() override {
    StopServer();
    std::filesystem::remove_all(data_dir_);
  }

  // Starts a server on data_dir_ (loading its snapshots) with the given --tuning_file
  // specs, and connects the stubs to it.
  absl::Status StartServer(const std::vector<std::string>& tuning_files = {}) {
    absl::StatusOr<std::unique_ptr<NestorServer>> server =
        StartLoopbackServer(data_dir_, /*grpc_threads=*/8, tuning_files);
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    channel_ = LoopbackChannel(*server_);
    index_stub_ = v1::IndexService::NewStub(channel_);
    tuning_stub_ = v1::TuningService::NewStub(channel_);
    return absl::OkStatus();
  }

  // Stops the server as SIGTERM does (Shutdown saves every index).
  void StopServer() {
    index_stub_.reset();
    tuning_stub_.reset();
    channel_.reset();
    ExpectShutdown(server_);
  }

  absl::StatusOr<v1::IndexInfo> GetIndex(const std::string& name) {
    return server::GetIndex(*index_stub_, name);
  }

  // Creates, fills and builds an L2 index of kNumVectors random vectors;
  // num_partitions 0 = exact. `matryoshka_dims` (e.g. {4, 8}) lets queries use the funnel
  // on those prefixes.
  void CreateLoadedIndex(const std::string& name, uint32_t num_partitions,
                         const std::vector<uint32_t>& matryoshka_dims = {}) {
    v1::IndexConfig config;
    config.set_dimension(kDim);
    config.set_metric(v1::METRIC_L2);
    config.set_num_partitions(num_partitions);
    config.set_code_type(num_partitions > 0 ? v1::CODE_TYPE_INT8 : v1::CODE_TYPE_UNSPECIFIED);
    config.set_seed(5);
    for (uint32_t dim : matryoshka_dims) config.add_matryoshka_dims(dim);
    ASSERT_THAT(CreateIndex(*index_stub_, name, config), IsOk());
    std::vector<uint64_t> ids(kNumVectors);
    std::iota(ids.begin(), ids.end(), uint64_t{0});
    const std::vector<float> data = RandomVectors(kNumVectors, kDim, 7);
    for (size_t begin = 0; begin < ids.size(); begin += 1000) {
      const size_t end = std::min(ids.size(), begin + 1000);
      ASSERT_THAT(UpsertDatapoints(*index_stub_, UpsertRequest(name, ids, data, begin, end, kDim)),
                  IsOk());
    }
    if (num_partitions > 0) {
      ASSERT_THAT(BuildIndex(*index_stub_, name), IsOk());
    }
  }

  // Searches queries_ on `name`; 0 leaves a setting to the index (and its tuning).
  absl::StatusOr<v1::FindNeighborsResponse> Find(const std::string& name,
                                                 int partitions_to_search = 0,
                                                 int reorder_k = 0) {
    return FindWith(name, {.partitions_to_search = partitions_to_search,
                           .reorder_k = reorder_k});
  }

  // Every query setting FindWith may set; 0 leaves it to the index (and its tuning).
  struct Knobs {
    int partitions_to_search = 0;
    int reorder_k = 0;
    int prefix_dim = 0;
    int shortlist_dim = 0;
    int shortlist_size = 0;
    int64_t max_codes = 0;
  };

  // Searches queries_ on `name` with `knobs` on every query.
  absl::StatusOr<v1::FindNeighborsResponse> FindWith(const std::string& name,
                                                     const Knobs& knobs) {
    v1::FindNeighborsRequest request =
        FindRequest(name, queries_, kK, knobs.partitions_to_search, kDim);
    for (v1::FindNeighborsRequest::Query& query : *request.mutable_queries()) {
      query.set_reorder_k(knobs.reorder_k);
      query.set_prefix_dim(knobs.prefix_dim);
      query.set_shortlist_dim(knobs.shortlist_dim);
      query.set_shortlist_size(knobs.shortlist_size);
      query.set_max_codes(knobs.max_codes);
    }
    return FindNeighbors(*index_stub_, request);
  }

  // A TuningResult for the index CreateLoadedIndex builds, choosing (p, r).
  static v1::TuningResult Result(int partitions_to_search, int reorder_k,
                                 uint32_t num_partitions = kNumPartitions,
                                 uint32_t dimension = kDim) {
    v1::TuningResult result;
    result.set_dimension(dimension);
    result.set_metric(v1::METRIC_L2);
    result.set_code_type(v1::CODE_TYPE_INT8);
    result.set_num_partitions(num_partitions);
    result.set_neighbor_count(kK);
    result.mutable_goal()->set_target_recall(0.9);
    result.mutable_chosen()->set_partitions_to_search(partitions_to_search);
    result.mutable_chosen()->set_reorder_k(reorder_k);
    result.mutable_chosen()->set_num_partitions(num_partitions);
    return result;
  }

  // A TuningResult choosing (p, r) and the early stop max_codes m.
  static v1::TuningResult MaxCodesResult(int partitions_to_search, int reorder_k, uint64_t m) {
    v1::TuningResult result = Result(partitions_to_search, reorder_k);
    result.mutable_chosen()->set_max_codes(m);
    return result;
  }

  // A TuningResult choosing the funnel: partitions_to_search p, shortlist_dim s,
  // shortlist_size n (reorder_k 0, as the tuner writes funnel points).
  static v1::TuningResult FunnelResult(int p, int s, int n) {
    v1::TuningResult result = Result(p, 0);
    result.mutable_chosen()->set_shortlist_dim(s);
    result.mutable_chosen()->set_shortlist_size(n);
    return result;
  }

  absl::StatusOr<v1::ApplyTuningResponse> Apply(const std::string& name,
                                                const v1::TuningResult& result) {
    v1::ApplyTuningRequest request;
    request.set_index(name);
    *request.mutable_result() = result;
    v1::ApplyTuningResponse response;
    grpc::ClientContext context;
    absl::Status status = FromGrpcStatus(tuning_stub_->ApplyTuning(&context, request, &response));
    if (!status.ok()) return status;
    return response;
  }

  std::filesystem::path data_dir_;
  std::unique_ptr<NestorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IndexService::Stub> index_stub_;
  std::unique_ptr<v1::TuningService::Stub> tuning_stub_;
  std::vector<float> queries_;
};

TEST_F(TuningServiceTest, TunedDefaultsAnswerExactlyAsExplicitSettings) {
  CreateLoadedIndex("tuned", kNumPartitions);
  // Settings far from the defaults (num_partitions / 16 = 2 partitions, reorder 4k), so
  // that the tuned answer differs from the untuned one on these queries.
  constexpr int kP = 9;
  constexpr int kR = 15;
  absl::StatusOr<v1::FindNeighborsResponse> untuned = Find("tuned");
  absl::StatusOr<v1::FindNeighborsResponse> explicit_settings = Find("tuned", kP, kR);
  ASSERT_THAT(untuned, IsOk());
  ASSERT_THAT(explicit_settings, IsOk());
  ASSERT_NE(untuned->SerializeAsString(), explicit_settings->SerializeAsString());

  absl::StatusOr<v1::ApplyTuningResponse> applied = Apply("tuned", Result(kP, kR));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->previous_partitions_to_search(), 0u);
  EXPECT_EQ(applied->previous_reorder_k(), 0u);
  EXPECT_EQ(applied->partitions_to_search(), static_cast<uint32_t>(kP));
  EXPECT_EQ(applied->reorder_k(), static_cast<uint32_t>(kR));

  absl::StatusOr<v1::FindNeighborsResponse> tuned = Find("tuned");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), explicit_settings->SerializeAsString());
  // GetIndex reports the tuned defaults beside the index's own.
  {
    v1::GetIndexRequest get;
    get.set_name("tuned");
    v1::IndexInfo info;
    grpc::ClientContext context;
    ASSERT_THAT(FromGrpcStatus(index_stub_->GetIndex(&context, get, &info)), IsOk());
    EXPECT_EQ(info.tuned_partitions_to_search(), static_cast<uint32_t>(kP));
    EXPECT_EQ(info.tuned_reorder_k(), static_cast<uint32_t>(kR));
    EXPECT_EQ(info.config().default_partitions_to_search(), 0u);
  }
  // A query's own settings still win over the tuned defaults.
  absl::StatusOr<v1::FindNeighborsResponse> own = Find("tuned", 2, 40);
  ASSERT_THAT(own, IsOk());
  absl::StatusOr<v1::FindNeighborsResponse> own_again = Find("tuned", 2, 40);
  ASSERT_THAT(own_again, IsOk());
  EXPECT_EQ(own->SerializeAsString(), own_again->SerializeAsString());

  // A second apply reports the first as previous.
  applied = Apply("tuned", Result(4, 20));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->previous_partitions_to_search(), static_cast<uint32_t>(kP));
  EXPECT_EQ(applied->previous_reorder_k(), static_cast<uint32_t>(kR));
}

TEST_F(TuningServiceTest, ConcurrentSearchesWhileApplyingSeeOneWholeSettingEach) {
  CreateLoadedIndex("live", kNumPartitions);
  // Two tunings with distinct answers; every search must return one of them (never a mix
  // of A's partitions with B's reorder_k) or, before the first apply, the untuned answer.
  const int pa = 3, ra = 10, pb = 12, rb = 60;
  absl::StatusOr<v1::FindNeighborsResponse> untuned = Find("live");
  absl::StatusOr<v1::FindNeighborsResponse> a = Find("live", pa, ra);
  absl::StatusOr<v1::FindNeighborsResponse> b = Find("live", pb, rb);
  absl::StatusOr<v1::FindNeighborsResponse> mix1 = Find("live", pa, rb);
  absl::StatusOr<v1::FindNeighborsResponse> mix2 = Find("live", pb, ra);
  for (const auto* r : {&untuned, &a, &b, &mix1, &mix2}) ASSERT_THAT(*r, IsOk());
  const std::string untuned_bytes = untuned->SerializeAsString();
  const std::string a_bytes = a->SerializeAsString();
  const std::string b_bytes = b->SerializeAsString();
  ASSERT_NE(a_bytes, b_bytes);
  // The mixed settings must be told apart from A and B for the check to mean anything.
  ASSERT_NE(mix1->SerializeAsString(), a_bytes);
  ASSERT_NE(mix2->SerializeAsString(), b_bytes);

  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, not_ok{0}, unexpected{0};
  std::vector<std::thread> searchers;
  for (int t = 0; t < 4; ++t) {
    searchers.emplace_back([&] {
      while (!stop.load()) {
        absl::StatusOr<v1::FindNeighborsResponse> r = Find("live");
        searches.fetch_add(1);
        if (!r.ok()) {
          if (not_ok.fetch_add(1) == 0) ADD_FAILURE() << "search failed: " << r.status();
          continue;
        }
        const std::string bytes = r->SerializeAsString();
        if (bytes != a_bytes && bytes != b_bytes && bytes != untuned_bytes) {
          unexpected.fetch_add(1);
        }
      }
    });
  }
  int applies = 0;
  const absl::Time until = absl::Now() + absl::Seconds(2);
  while (absl::Now() < until || searches.load() < 50) {
    const bool use_a = applies % 2 == 0;
    ASSERT_THAT(Apply("live", use_a ? Result(pa, ra) : Result(pb, rb)), IsOk());
    ++applies;
  }
  stop.store(true);
  for (std::thread& t : searchers) t.join();
  EXPECT_GT(applies, 10);
  EXPECT_GE(searches.load(), 50);
  EXPECT_EQ(not_ok.load(), 0);
  EXPECT_EQ(unexpected.load(), 0);
  // The last apply wins.
  absl::StatusOr<v1::FindNeighborsResponse> last = Find("live");
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ(last->SerializeAsString(), applies % 2 == 1 ? a_bytes : b_bytes);
}

TEST_F(TuningServiceTest, UnknownIndexIsNotFound) {
  EXPECT_THAT(Apply("missing", Result(4, 20)), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TuningServiceTest, EmptyIndexNameIsInvalidArgument) {
  EXPECT_THAT(Apply("", Result(4, 20)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(TuningServiceTest, MismatchedDimensionOrPartitionsIsInvalidArgumentAndChangesNothing) {
  CreateLoadedIndex("tuned", kNumPartitions);
  absl::StatusOr<v1::FindNeighborsResponse> before = Find("tuned");
  ASSERT_THAT(before, IsOk());

  absl::StatusOr<v1::ApplyTuningResponse> wrong_dim =
      Apply("tuned", Result(4, 20, kNumPartitions, kDim + 1));
  EXPECT_THAT(wrong_dim, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(wrong_dim.status().message(), HasSubstr("dimension"));

  absl::StatusOr<v1::ApplyTuningResponse> wrong_partitions =
      Apply("tuned", Result(4, 20, 2 * kNumPartitions));
  EXPECT_THAT(wrong_partitions, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(wrong_partitions.status().message(), HasSubstr("num_partitions"));

  v1::TuningResult wrong_metric = Result(4, 20);
  wrong_metric.set_metric(v1::METRIC_INNER_PRODUCT);
  EXPECT_THAT(Apply("tuned", wrong_metric), StatusIs(absl::StatusCode::kInvalidArgument));

  EXPECT_THAT(Apply("tuned", Result(0, 20)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Apply("tuned", Result(kNumPartitions + 1, 20)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Apply("tuned", Result(4, 0)), StatusIs(absl::StatusCode::kInvalidArgument));

  absl::StatusOr<v1::FindNeighborsResponse> after = Find("tuned");
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());
}

TEST_F(TuningServiceTest, ExactIndexIsFailedPrecondition) {
  CreateLoadedIndex("exact", 0);
  v1::TuningResult result = Result(4, 20, 0);
  result.set_code_type(v1::CODE_TYPE_UNSPECIFIED);
  EXPECT_THAT(Apply("exact", result), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// The funnel index of these tests: Matryoshka ladder {4, 8, 16}.
const std::vector<uint32_t> kLadder = {4, 8};
constexpr int kFunnelP = 6;
constexpr int kFunnelDim = 8;
constexpr int kFunnelSize = 30;

// The tuned defaults GetIndex / ListIndexes report for an index.
void ExpectTuned(const v1::IndexInfo& info, uint32_t partitions_to_search, uint32_t reorder_k,
                 uint32_t shortlist_dim, uint32_t shortlist_size, uint64_t max_codes = 0) {
  EXPECT_EQ(info.tuned_partitions_to_search(), partitions_to_search);
  EXPECT_EQ(info.tuned_reorder_k(), reorder_k);
  EXPECT_EQ(info.tuned_shortlist_dim(), shortlist_dim);
  EXPECT_EQ(info.tuned_shortlist_size(), shortlist_size);
  EXPECT_EQ(info.tuned_max_codes(), max_codes);
}

// The tuned max_codes goes with the tuned partitions_to_search: a query leaving both at 0
// gets it; one that sets its own partitions_to_search does not (in the same batch too);
// one that sets its own max_codes keeps the tuned partitions_to_search.
TEST_F(TuningServiceTest, TunedMaxCodesGoesWithTheTunedPartitionsToSearch) {
  CreateLoadedIndex("tuned", kNumPartitions);
  constexpr int kP = 9;
  constexpr int kR = 15;
  constexpr int64_t kM = 200;  // about 2 of the 32 partitions of ~94 vectors
  absl::StatusOr<v1::FindNeighborsResponse> capped =
      FindWith("tuned", {.partitions_to_search = kP, .reorder_k = kR, .max_codes = kM});
  absl::StatusOr<v1::FindNeighborsResponse> uncapped = Find("tuned", kP, kR);
  absl::StatusOr<v1::FindNeighborsResponse> own_cap =
      FindWith("tuned", {.partitions_to_search = kP, .reorder_k = kR, .max_codes = 1});
  for (const auto* r : {&capped, &uncapped, &own_cap}) ASSERT_THAT(*r, IsOk());
  // The checks below tell these apart (needs the engine's max_codes).
  ASSERT_NE(capped->SerializeAsString(), uncapped->SerializeAsString());
  ASSERT_NE(own_cap->SerializeAsString(), capped->SerializeAsString());

  absl::StatusOr<v1::ApplyTuningResponse> applied =
      Apply("tuned", MaxCodesResult(kP, kR, kM));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->previous_max_codes(), 0u);
  EXPECT_EQ(applied->max_codes(), static_cast<uint64_t>(kM));
  EXPECT_EQ(applied->partitions_to_search(), static_cast<uint32_t>(kP));
  absl::StatusOr<v1::IndexInfo> info = GetIndex("tuned");
  ASSERT_THAT(info, IsOk());
  ExpectTuned(*info, kP, kR, 0, 0, kM);

  absl::StatusOr<v1::FindNeighborsResponse> tuned = Find("tuned");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), capped->SerializeAsString());
  // Its own partitions_to_search: no tuned max_codes (the tuned reorder_k still applies).
  absl::StatusOr<v1::FindNeighborsResponse> own_partitions = Find("tuned", kP);
  ASSERT_THAT(own_partitions, IsOk());
  EXPECT_EQ(own_partitions->SerializeAsString(), uncapped->SerializeAsString());
  // Its own max_codes with the tuned partitions_to_search.
  absl::StatusOr<v1::FindNeighborsResponse> own_max_codes =
      FindWith("tuned", {.max_codes = 1});
  ASSERT_THAT(own_max_codes, IsOk());
  EXPECT_EQ(own_max_codes->SerializeAsString(), own_cap->SerializeAsString());
  // One batch: even queries leave everything to the tuning, odd ones set
  // partitions_to_search; they differ only in the effective max_codes, and each answers
  // as if alone.
  v1::FindNeighborsRequest mixed = FindRequest("tuned", queries_, kK, 0, kDim);
  for (int i = 1; i < mixed.queries_size(); i += 2) {
    mixed.mutable_queries(i)->set_partitions_to_search(kP);
  }
  absl::StatusOr<v1::FindNeighborsResponse> together = FindNeighbors(*index_stub_, mixed);
  ASSERT_THAT(together, IsOk());
  ASSERT_EQ(together->nearest_neighbors_size(), capped->nearest_neighbors_size());
  for (int i = 0; i < together->nearest_neighbors_size(); ++i) {
    const v1::FindNeighborsResponse& alone = i % 2 == 0 ? *capped : *uncapped;
    EXPECT_EQ(together->nearest_neighbors(i).SerializeAsString(),
              alone.nearest_neighbors(i).SerializeAsString())
        << "query " << i;
  }

  // Out of range: refused, naming the field; nothing changes.
  const uint64_t too_many = (uint64_t{1} << 40) + 1;
  EXPECT_THAT(Apply("tuned", MaxCodesResult(kP, kR, too_many)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.max_codes must be in 0..1099511627776 (0 = no limit), got "
                       "1099511627777"));
  EXPECT_THAT(Apply("tuned", MaxCodesResult(kP, kR, ~uint64_t{0})),
              StatusIs(absl::StatusCode::kInvalidArgument, "chosen.max_codes must be in"));
  info = GetIndex("tuned");
  ASSERT_THAT(info, IsOk());
  ExpectTuned(*info, kP, kR, 0, 0, kM);

  // A tuning without max_codes removes it.
  applied = Apply("tuned", Result(kP, kR));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->previous_max_codes(), static_cast<uint64_t>(kM));
  EXPECT_EQ(applied->max_codes(), 0u);
  tuned = Find("tuned");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), uncapped->SerializeAsString());
}

TEST_F(TuningServiceTest, TunedFunnelAnswersExactlyAsTheExplicitFunnel) {
  CreateLoadedIndex("mrl", kNumPartitions, kLadder);
  const Knobs funnel = {.partitions_to_search = kFunnelP,
                        .shortlist_dim = kFunnelDim,
                        .shortlist_size = kFunnelSize};
  absl::StatusOr<v1::FindNeighborsResponse> untuned = Find("mrl");
  absl::StatusOr<v1::FindNeighborsResponse> explicit_funnel = FindWith("mrl", funnel);
  // The same partitions without the funnel (reorder_k the index default, 4k).
  absl::StatusOr<v1::FindNeighborsResponse> no_funnel = Find("mrl", kFunnelP);
  // Prefix 8 at the tuned partitions, without a funnel.
  absl::StatusOr<v1::FindNeighborsResponse> prefix =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .prefix_dim = 8});
  // A query's own funnel.
  const Knobs own = {.shortlist_dim = 4, .shortlist_size = 50};
  absl::StatusOr<v1::FindNeighborsResponse> own_funnel =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .shortlist_dim = 4,
                       .shortlist_size = 50});
  // A tuned shortlist_size below k is raised to k.
  absl::StatusOr<v1::FindNeighborsResponse> size_k =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .shortlist_dim = kFunnelDim,
                       .shortlist_size = kK});
  for (const auto* r : {&untuned, &explicit_funnel, &no_funnel, &prefix, &own_funnel, &size_k}) {
    ASSERT_THAT(*r, IsOk());
  }
  // The checks below tell these apart.
  ASSERT_NE(untuned->SerializeAsString(), explicit_funnel->SerializeAsString());
  ASSERT_NE(no_funnel->SerializeAsString(), explicit_funnel->SerializeAsString());
  ASSERT_NE(own_funnel->SerializeAsString(), explicit_funnel->SerializeAsString());
  ASSERT_NE(size_k->SerializeAsString(), explicit_funnel->SerializeAsString());

  absl::StatusOr<v1::ApplyTuningResponse> applied =
      Apply("mrl", FunnelResult(kFunnelP, kFunnelDim, kFunnelSize));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->previous_shortlist_dim(), 0u);
  EXPECT_EQ(applied->previous_shortlist_size(), 0u);
  EXPECT_EQ(applied->partitions_to_search(), static_cast<uint32_t>(kFunnelP));
  EXPECT_EQ(applied->reorder_k(), 0u);
  EXPECT_EQ(applied->shortlist_dim(), static_cast<uint32_t>(kFunnelDim));
  EXPECT_EQ(applied->shortlist_size(), static_cast<uint32_t>(kFunnelSize));

  // No knobs: exactly the explicit funnel; also with prefix_dim spelled as the dimension.
  absl::StatusOr<v1::FindNeighborsResponse> tuned = Find("mrl");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), explicit_funnel->SerializeAsString());
  absl::StatusOr<v1::FindNeighborsResponse> tuned_full = FindWith("mrl", {.prefix_dim = kDim});
  ASSERT_THAT(tuned_full, IsOk());
  EXPECT_EQ(tuned_full->SerializeAsString(), explicit_funnel->SerializeAsString());
  // A smaller prefix gets the tuned partitions but not the funnel.
  absl::StatusOr<v1::FindNeighborsResponse> tuned_prefix = FindWith("mrl", {.prefix_dim = 8});
  ASSERT_THAT(tuned_prefix, IsOk());
  EXPECT_EQ(tuned_prefix->SerializeAsString(), prefix->SerializeAsString());
  // Opting out: shortlist_dim = prefix dimension, shortlist_size 0 -> funnel off.
  absl::StatusOr<v1::FindNeighborsResponse> opted_out =
      FindWith("mrl", {.shortlist_dim = kDim});
  ASSERT_THAT(opted_out, IsOk());
  EXPECT_EQ(opted_out->SerializeAsString(), no_funnel->SerializeAsString());
  // A query's own funnel wins.
  absl::StatusOr<v1::FindNeighborsResponse> own_tuned = FindWith("mrl", own);
  ASSERT_THAT(own_tuned, IsOk());
  EXPECT_EQ(own_tuned->SerializeAsString(), own_funnel->SerializeAsString());

  absl::StatusOr<v1::IndexInfo> info = GetIndex("mrl");
  ASSERT_THAT(info, IsOk());
  ExpectTuned(*info, kFunnelP, 0, kFunnelDim, kFunnelSize);
  {
    v1::ListIndexesResponse list;
    grpc::ClientContext context;
    ASSERT_THAT(FromGrpcStatus(index_stub_->ListIndexes(&context, {}, &list)), IsOk());
    ASSERT_EQ(list.indexes_size(), 1);
    EXPECT_EQ(list.indexes(0).tuned_shortlist_dim(), static_cast<uint32_t>(kFunnelDim));
    EXPECT_EQ(list.indexes(0).tuned_shortlist_size(), static_cast<uint32_t>(kFunnelSize));
  }

  // A tuned shortlist_size below k (10) is raised to k.
  applied = Apply("mrl", FunnelResult(kFunnelP, kFunnelDim, 3));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->previous_shortlist_dim(), static_cast<uint32_t>(kFunnelDim));
  EXPECT_EQ(applied->previous_shortlist_size(), static_cast<uint32_t>(kFunnelSize));
  tuned = Find("mrl");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), size_k->SerializeAsString());

  // A tuning without the funnel removes it.
  applied = Apply("mrl", Result(kFunnelP, 4 * kK));
  ASSERT_THAT(applied, IsOk());
  EXPECT_EQ(applied->shortlist_dim(), 0u);
  tuned = Find("mrl");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), no_funnel->SerializeAsString());
}

TEST_F(TuningServiceTest, OptOutOnAnUntunedIndexIsTheFunnelOff) {
  CreateLoadedIndex("mrl", kNumPartitions, kLadder);
  absl::StatusOr<v1::FindNeighborsResponse> off = Find("mrl", kFunnelP, 15);
  absl::StatusOr<v1::FindNeighborsResponse> opted_out =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .reorder_k = 15, .shortlist_dim = kDim});
  // With shortlist_size set it is a one-stage funnel: the scan at the full dimension keeps
  // shortlist_size candidates for the exact re-score, as reorder_k would.
  absl::StatusOr<v1::FindNeighborsResponse> one_stage =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .shortlist_dim = kDim,
                       .shortlist_size = 15});
  absl::StatusOr<v1::FindNeighborsResponse> prefix_off =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .prefix_dim = 8});
  absl::StatusOr<v1::FindNeighborsResponse> prefix_opted_out = FindWith(
      "mrl", {.partitions_to_search = kFunnelP, .prefix_dim = 8, .shortlist_dim = 8});
  for (const auto* r : {&off, &opted_out, &one_stage, &prefix_off, &prefix_opted_out}) {
    ASSERT_THAT(*r, IsOk());
  }
  EXPECT_EQ(opted_out->SerializeAsString(), off->SerializeAsString());
  EXPECT_EQ(one_stage->SerializeAsString(), off->SerializeAsString());
  EXPECT_EQ(prefix_opted_out->SerializeAsString(), prefix_off->SerializeAsString());
}

TEST_F(TuningServiceTest, BadFunnelSettingsAreInvalidArgumentAndChangeNothing) {
  CreateLoadedIndex("mrl", kNumPartitions, kLadder);
  ASSERT_THAT(Apply("mrl", FunnelResult(kFunnelP, kFunnelDim, kFunnelSize)), IsOk());
  absl::StatusOr<v1::FindNeighborsResponse> before = Find("mrl");
  ASSERT_THAT(before, IsOk());

  // Not on the ladder.
  EXPECT_THAT(Apply("mrl", FunnelResult(kFunnelP, 6, kFunnelSize)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.shortlist_dim must be an allowed Matryoshka prefix below "
                       "dimension 16 (matryoshka_dims {4, 8, 16}), got 6"));
  // The full dimension is no funnel.
  EXPECT_THAT(Apply("mrl", FunnelResult(kFunnelP, kDim, kFunnelSize)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.shortlist_dim must be an allowed Matryoshka prefix below "
                       "dimension 16 (matryoshka_dims {4, 8, 16}), got 16"));
  EXPECT_THAT(Apply("mrl", FunnelResult(kFunnelP, kFunnelDim, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.shortlist_size must be in 1..1000000 with shortlist_dim 8, got 0"));
  EXPECT_THAT(Apply("mrl", FunnelResult(kFunnelP, kFunnelDim, kMaxTunedReorderK + 1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.shortlist_size must be in 1..1000000 with shortlist_dim 8, got "
                       "1000001"));
  v1::TuningResult size_without_dim = Result(kFunnelP, 20);
  size_without_dim.mutable_chosen()->set_shortlist_size(kFunnelSize);
  EXPECT_THAT(Apply("mrl", size_without_dim),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.shortlist_size 30 needs the funnel: shortlist_dim must be an "
                       "allowed prefix below dimension 16"));
  v1::TuningResult huge_reorder = FunnelResult(kFunnelP, kFunnelDim, kFunnelSize);
  huge_reorder.mutable_chosen()->set_reorder_k(kMaxTunedReorderK + 1);
  EXPECT_THAT(Apply("mrl", huge_reorder),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.reorder_k must be in 0..1000000 with the funnel"));
  v1::TuningResult past_int = FunnelResult(kFunnelP, kFunnelDim, kFunnelSize);
  past_int.mutable_chosen()->set_shortlist_dim(3000000000u);
  EXPECT_THAT(Apply("mrl", past_int),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "chosen.shortlist_dim must be at most 2147483647, got 3000000000"));

  absl::StatusOr<v1::IndexInfo> info = GetIndex("mrl");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->tuned_shortlist_dim(), static_cast<uint32_t>(kFunnelDim));
  EXPECT_EQ(info->tuned_shortlist_size(), static_cast<uint32_t>(kFunnelSize));
  absl::StatusOr<v1::FindNeighborsResponse> after = Find("mrl");
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());
}

TEST_F(TuningServiceTest, TunedDefaultsSurviveARestart) {
  CreateLoadedIndex("mrl", kNumPartitions, kLadder);
  CreateLoadedIndex("plain", kNumPartitions);
  absl::StatusOr<v1::FindNeighborsResponse> explicit_funnel =
      FindWith("mrl", {.partitions_to_search = kFunnelP, .shortlist_dim = kFunnelDim,
                       .shortlist_size = kFunnelSize});
  absl::StatusOr<v1::FindNeighborsResponse> untuned = Find("mrl");
  absl::StatusOr<v1::FindNeighborsResponse> plain_explicit =
      FindWith("plain", {.partitions_to_search = 9, .reorder_k = 15, .max_codes = 300});
  for (const auto* r : {&explicit_funnel, &untuned, &plain_explicit}) ASSERT_THAT(*r, IsOk());
  ASSERT_NE(untuned->SerializeAsString(), explicit_funnel->SerializeAsString());
  ASSERT_THAT(Apply("mrl", FunnelResult(kFunnelP, kFunnelDim, kFunnelSize)), IsOk());
  ASSERT_THAT(Apply("plain", MaxCodesResult(9, 15, 300)), IsOk());
  // SaveIndex writes "mrl" now; "plain" is saved by the shutdown, as on SIGTERM.
  {
    v1::SaveIndexRequest save;
    save.set_name("mrl");
    v1::SaveIndexResponse response;
    grpc::ClientContext context;
    ASSERT_THAT(FromGrpcStatus(index_stub_->SaveIndex(&context, save, &response)), IsOk());
  }
  StopServer();

  ASSERT_THAT(StartServer(), IsOk());
  absl::StatusOr<v1::IndexInfo> info = GetIndex("mrl");
  ASSERT_THAT(info, IsOk());
  ExpectTuned(*info, kFunnelP, 0, kFunnelDim, kFunnelSize);
  absl::StatusOr<v1::FindNeighborsResponse> tuned = Find("mrl");
  ASSERT_THAT(tuned, IsOk());
  EXPECT_EQ(tuned->SerializeAsString(), explicit_funnel->SerializeAsString());
  info = GetIndex("plain");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->tuned_partitions_to_search(), 9u);
  EXPECT_EQ(info->tuned_reorder_k(), 15u);
  EXPECT_EQ(info->tuned_shortlist_dim(), 0u);
  EXPECT_EQ(info->tuned_max_codes(), 300u);
  absl::StatusOr<v1::FindNeighborsResponse> plain_tuned = Find("plain");
  ASSERT_THAT(plain_tuned, IsOk());
  EXPECT_EQ(plain_tuned->SerializeAsString(), plain_explicit->SerializeAsString());
  StopServer();

  // --tuning_file at start replaces what was saved.
  const std::string path = (data_dir_ / "override.textproto").string();
  {
    std::ofstream out(path);
    out << "dimension: 16 metric: METRIC_L2 code_type: CODE_TYPE_INT8 num_partitions: 32\n"
        << "chosen { partitions_to_search: 3 reorder_k: 20 max_codes: 150 }\n";
  }
  ASSERT_THAT(StartServer({"mrl=" + path}), IsOk());
  info = GetIndex("mrl");
  ASSERT_THAT(info, IsOk());
  ExpectTuned(*info, 3, 20, 0, 0, 150);
  absl::StatusOr<v1::FindNeighborsResponse> overridden = Find("mrl");
  absl::StatusOr<v1::FindNeighborsResponse> overridden_explicit =
      FindWith("mrl", {.partitions_to_search = 3, .reorder_k = 20, .max_codes = 150});
  ASSERT_THAT(overridden, IsOk());
  ASSERT_THAT(overridden_explicit, IsOk());
  EXPECT_EQ(overridden->SerializeAsString(), overridden_explicit->SerializeAsString());
  // "plain" keeps its saved tuning.
  info = GetIndex("plain");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->tuned_partitions_to_search(), 9u);
  EXPECT_EQ(info->tuned_max_codes(), 300u);
}

// A directory, an empty file or a message without a dimension (not a file nestor tune
// wrote) is named as such, not as 'tuning result is for dimension 0'.
TEST_F(TuningServiceTest, ReadTuningResultNamesWhatTheFileIsNot) {
  const std::string dir = data_dir_.string();
  EXPECT_THAT(ReadTuningResult(dir),
              StatusIs(absl::StatusCode::kInvalidArgument, dir + " is a directory"));
  const std::string empty = (data_dir_ / "empty.textproto").string();
  std::ofstream(empty) << "  \n";
  EXPECT_THAT(ReadTuningResult(empty),
              StatusIs(absl::StatusCode::kInvalidArgument, empty + " is empty"));
  const std::string shapeless = (data_dir_ / "shapeless.textproto").string();
  std::ofstream(shapeless) << "chosen { partitions_to_search: 3 }\n";
  EXPECT_THAT(ReadTuningResult(shapeless),
              StatusIs(absl::StatusCode::kInvalidArgument, shapeless + " has no dimension"));
  EXPECT_THAT(ReadTuningResult((data_dir_ / "missing").string()),
              StatusIs(absl::StatusCode::kNotFound));
  const std::string garbage = (data_dir_ / "garbage.textproto").string();
  std::ofstream(garbage) << "dimension: 16\nno_such_field: 3\n";
  EXPECT_THAT(ReadTuningResult(garbage),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       garbage + " is not a text-format TuningResult (line 2 column"));
  const std::string good = (data_dir_ / "good.json").string();
  std::ofstream(good) << R"({"dimension": 16, "numPartitions": 32})";
  absl::StatusOr<v1::TuningResult> read = ReadTuningResult(good);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->dimension(), 16u);
  EXPECT_EQ(read->num_partitions(), 32u);
}

TEST_F(TuningServiceTest, SavedTunedDefaultsTheIndexRefusesAreDroppedAtLoad) {
  CreateLoadedIndex("mrl", kNumPartitions, kLadder);
  absl::StatusOr<v1::FindNeighborsResponse> untuned = Find("mrl");
  ASSERT_THAT(untuned, IsOk());
  StopServer();
  // Rewrite the snapshot with defaults no index of 32 partitions accepts.
  const std::string dir = (data_dir_ / "mrl").string();
  absl::StatusOr<std::unique_ptr<Index>> index = LoadIndex(dir);
  ASSERT_THAT(index, IsOk());
  ASSERT_THAT((*index)->Save(dir, {.partitions_to_search = kNumPartitions + 1, .reorder_k = 20}),
              IsOk());
  ASSERT_THAT(StartServer(), IsOk());
  absl::StatusOr<v1::IndexInfo> info = GetIndex("mrl");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->tuned_partitions_to_search(), 0u);
  EXPECT_EQ(info->tuned_reorder_k(), 0u);
  absl::StatusOr<v1::FindNeighborsResponse> loaded = Find("mrl");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->SerializeAsString(), untuned->SerializeAsString());
}

}  // namespace
}  // namespace nestor::server

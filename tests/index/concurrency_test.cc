// Searches on several threads while another thread writes: no crash, every result valid.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "tests/index/test_util.h"
#include "tests/testing/status_matchers.h"

namespace nestor {
namespace {

using ::nestor::testing::IsOk;

constexpr int kDim = 16;
constexpr size_t kStable = 2000;  // ids 0..1999 are never touched by the writer
constexpr DatapointId kChurnBase = 1000000;

class ConcurrencyTest : public ::testing::TestWithParam<int> {};

TEST_P(ConcurrencyTest, SearchesWhileUpsertingAndRemoving) {
  IndexOptions options;
  options.dimension = kDim;
  options.num_partitions = GetParam();
  auto created = CreateIndex(options);
  ASSERT_THAT(created, IsOk());
  std::unique_ptr<Index> index = std::move(created).value();
  ASSERT_THAT(index->Upsert(testing::SequentialIds(kStable),
                            testing::ClusteredVectors(kStable, kDim, 10, 0.2f, 1)),
              IsOk());
  ASSERT_THAT(index->Build(), IsOk());

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> searches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      const std::vector<float> queries = testing::ClusteredVectors(8, kDim, 10, 0.2f, 100 + t);
      SearchParams params;
      params.k = 20;
      params.num_threads = 1 + t % 2;
      params.partitions_to_search = 3;
      while (!stop.load()) {
        auto results = index->Search(queries, params);
        if (!results.ok() || results->size() != 8) {
          ++failures;
          continue;
        }
        for (const auto& list : *results) {
          absl::flat_hash_set<DatapointId> seen;
          bool ok = list.size() <= 20;
          for (size_t i = 0; i < list.size(); ++i) {
            ok &= seen.insert(list[i].id).second;
            ok &= list[i].id < kStable || list[i].id >= kChurnBase;
            if (i > 0) ok &= list[i - 1].distance <= list[i].distance;
          }
          if (!ok) ++failures;
        }
        ++searches;
      }
    });
  }
  // Writer: insert, replace and remove churn ids for a while.
  for (int round = 0; round < 60; ++round) {
    const std::vector<DatapointId> ids = testing::SequentialIds(50, kChurnBase + (round % 5) * 50);
    ASSERT_THAT(index->Upsert(ids, testing::ClusteredVectors(50, kDim, 10, 0.2f, 1000 + round)),
                IsOk());
    if (round % 3 == 2) {
      ASSERT_THAT(index->Remove(ids), IsOk());
    }
    (void)index->stats();
  }
  // Let the readers run at least a few searches before stopping them.
  while (searches.load() < 30) std::this_thread::yield();
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(index->size(), kStable);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ConcurrencyTest, ::testing::Values(0, 16),
                         [](const auto& info) {
                           return info.param == 0 ? std::string("Exact")
                                                  : std::string("Partitioned");
                         });

}  // namespace
}  // namespace nestor

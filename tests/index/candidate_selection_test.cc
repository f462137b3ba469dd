#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "index/partitioned_index.h"

namespace nestor {
namespace {

// Offers `offers` to a selection of `keep` the way OfferInt8Scores does (append below the
// bound, compact when full) and returns what Finish() keeps.
std::vector<ScanCandidate> Select(const std::vector<ScanCandidate>& offers, size_t keep) {
  std::vector<ScanCandidate> slots(CandidateSelection::Capacity(keep));
  CandidateSelection selection;
  selection.slots = slots.data();
  selection.keep = keep;
  for (size_t b = 0; b < offers.size(); b += 64) {
    const size_t nb = std::min<size_t>(64, offers.size() - b);
    if (selection.size + nb > CandidateSelection::Limit(keep)) selection.Compact();
    for (size_t i = b; i < b + nb; ++i) {
      if (offers[i].first <= selection.bound) slots[selection.size++] = offers[i];
    }
  }
  absl::Span<const ScanCandidate> kept = selection.Finish();
  return {kept.begin(), kept.end()};
}

TEST(CandidateSelectionTest, KeepsTheSmallestPairsInOrderLikeSortingAll) {
  std::mt19937 rng(7);
  for (size_t keep : {1u, 10u, 24u, 100u}) {
    for (size_t n : {0u, 5u, 64u, 1000u, 5000u}) {
      std::vector<ScanCandidate> offers(n);
      // Few distinct keys, so ties between keys are common and the location decides.
      std::uniform_int_distribution<int> key(0, 50);
      for (size_t i = 0; i < n; ++i) offers[i] = {static_cast<float>(key(rng)), rng() % 4096};
      std::vector<ScanCandidate> expected = offers;
      std::sort(expected.begin(), expected.end());
      expected.resize(std::min(keep, n));
      EXPECT_EQ(Select(offers, keep), expected) << "keep=" << keep << " n=" << n;
    }
  }
}

TEST(CandidateSelectionTest, BoundIsTheLargestKeptKeyAfterCompaction) {
  std::vector<ScanCandidate> slots(CandidateSelection::Capacity(3));
  CandidateSelection selection;
  selection.slots = slots.data();
  selection.keep = 3;
  const float keys[] = {9, 2, 7, 4, 8, 1};
  for (uint64_t i = 0; i < 6; ++i) slots[selection.size++] = {keys[i], i};
  EXPECT_EQ(selection.bound, std::numeric_limits<float>::infinity());
  selection.Compact();
  EXPECT_EQ(selection.size, 3u);
  EXPECT_EQ(selection.bound, 4.0f);
  absl::Span<const ScanCandidate> kept = selection.Finish();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0], ScanCandidate(1.0f, 5));
  EXPECT_EQ(kept[1], ScanCandidate(2.0f, 1));
  EXPECT_EQ(kept[2], ScanCandidate(4.0f, 3));
}

}  // namespace
}  // namespace nestor

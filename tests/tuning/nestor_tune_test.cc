// The real nestor-tune binary (tools/nestor_tune.cc) end to end on a small seeded .fvecs:
// a reachable goal exits 0 with a JSON TuningResult whose chosen point meets the target;
// an unreachable one exits 3 and says the best achievable recall. The binary's path
// comes from CMake (NESTOR_TUNE_BINARY).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index/index_factory.h"
#include "proto/nestor.pb.h"

namespace nestor::tuning {
namespace {

using ::testing::HasSubstr;

constexpr int kDim = 16;
constexpr int kNumVectors = 3000;

struct RunResult {
  int exit_code = -1;
  std::string stderr_text;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class NestorTuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("nestor_tune_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // Clustered data (32 overlapping Gaussian blobs), so partitions mean something but
    // one partition does not hold every neighbour: fvecs rows are
    // an int32 dimension followed by the floats.
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> centres(32 * kDim);
    for (float& x : centres) x = 1.5f * normal(rng);  // overlapping blobs
    std::ofstream out(data_path(), std::ios::binary);
    for (int i = 0; i < kNumVectors; ++i) {
      const int32_t dim = kDim;
      out.write(reinterpret_cast<const char*>(&dim), sizeof(dim));
      const float* centre = &centres[(i % 32) * kDim];
      for (int j = 0; j < kDim; ++j) {
        const float x = centre[j] + normal(rng);
        out.write(reinterpret_cast<const char*>(&x), sizeof(x));
      }
    }
    ASSERT_TRUE(out.good());
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path data_path() const { return dir_ / "data.fvecs"; }

  // Runs nestor-tune on the data with `flags`; stderr is captured to a file.
  RunResult Run(const std::string& flags) {
    const std::filesystem::path err = dir_ / "stderr.txt";
    const std::string command =
        absl::StrCat("'", NESTOR_TUNE_BINARY, "' --data '", data_path().string(),
                     "' --num_partitions 16 --sample_queries 200 --calibration_queries 50 "
                     "--measure_points 2 --seed 7 ",
                     flags, " >/dev/null 2>'", err.string(), "'");
    const int status = std::system(command.c_str());
    RunResult result;
    if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    result.stderr_text = ReadFile(err);
    return result;
  }

  std::filesystem::path dir_;
};

TEST_F(NestorTuneTest, ReachableTargetWritesJsonWhoseChosenPointMeetsIt) {
  const std::filesystem::path output = dir_ / "tuning.json";
  const RunResult run =
      Run(absl::StrCat("--target_recall 0.9 --output '", output.string(), "'"));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;

  v1::TuningResult result;
  const auto parsed = google::protobuf::util::JsonStringToMessage(ReadFile(output), &result);
  ASSERT_TRUE(parsed.ok()) << parsed.ToString();
  EXPECT_EQ(result.dimension(), static_cast<uint32_t>(kDim));
  EXPECT_EQ(result.num_partitions(), 16u);
  EXPECT_EQ(result.num_vectors(), static_cast<uint64_t>(kNumVectors));
  EXPECT_EQ(result.neighbor_count(), 10u);
  EXPECT_EQ(result.num_queries(), 200u);
  EXPECT_EQ(result.query_source(), "sample");
  EXPECT_DOUBLE_EQ(result.goal().target_recall(), 0.9);
  ASSERT_TRUE(result.has_chosen());
  const v1::OperatingPoint& chosen = result.chosen();
  EXPECT_GE(chosen.partitions_to_search(), 1u);
  EXPECT_LE(chosen.partitions_to_search(), 16u);
  EXPECT_GE(chosen.reorder_k(), 10u);
  EXPECT_GE(chosen.predicted_recall(), 0.9);
  // The chosen point was measured on the tuning queries; the trace is exact, so the
  // measurement agrees with the prediction.
  ASSERT_TRUE(chosen.has_measured_recall());
  EXPECT_NEAR(chosen.measured_recall(), chosen.predicted_recall(), 1e-9);
  EXPECT_GT(chosen.measured_qps(), 0.0);
  EXPECT_FALSE(result.pareto().empty());
  EXPECT_FALSE(result.frontier().empty());
}

// --shortlist_dims / --shortlist_sizes: the funnel candidates are searched (calibrated
// and on the Pareto set's candidate list) and every point says which knobs it uses.
TEST_F(NestorTuneTest, FunnelFlagsSearchShortlistSpace) {
  const std::filesystem::path output = dir_ / "funnel.json";
  const RunResult run =
      Run(absl::StrCat("--target_recall 0.9 --shortlist_dims 0,8 --shortlist_sizes 10,20,40 "
                       "--output '", output.string(), "'"));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  v1::TuningResult result;
  const auto parsed = google::protobuf::util::JsonStringToMessage(ReadFile(output), &result);
  ASSERT_TRUE(parsed.ok()) << parsed.ToString();
  bool funnel_calibrated = false;
  for (const auto& c : result.calibration()) {
    if (c.shortlist_dim() == 0) continue;
    funnel_calibrated = true;
    EXPECT_EQ(c.shortlist_dim(), 8u);
    EXPECT_EQ(c.reorder_k(), 0u);
    EXPECT_GE(c.shortlist_size(), 10u);
  }
  EXPECT_TRUE(funnel_calibrated);
  const v1::OperatingPoint& chosen = result.chosen();
  EXPECT_GE(chosen.predicted_recall(), 0.9);
  EXPECT_NEAR(chosen.measured_recall(), chosen.predicted_recall(), 1e-9);
  // Either the funnel (reorder_k 0) or the full-dimension scan (no shortlist).
  EXPECT_TRUE((chosen.shortlist_dim() == 8 && chosen.reorder_k() == 0 &&
               chosen.shortlist_size() >= 10) ||
              (chosen.shortlist_dim() == 0 && chosen.shortlist_size() == 0))
      << chosen.ShortDebugString();
  EXPECT_THAT(run.stderr_text, HasSubstr("shortlist_dim="));
}

TEST_F(NestorTuneTest, UnreachableTargetExitsThreeStatingBestAchievableRecall) {
  // One partition at most cannot find every neighbour of clustered data with 16
  // partitions; recall 1.0 is out of reach.
  const RunResult run = Run(absl::StrCat("--target_recall 1.0 --max_partitions 1 --output '",
                                         (dir_ / "unused.json").string(), "'"));
  EXPECT_EQ(run.exit_code, 3) << run.stderr_text;
  EXPECT_THAT(run.stderr_text, HasSubstr("unreachable"));
  EXPECT_THAT(run.stderr_text, HasSubstr("best achievable is recall"));
}

// Rows sampled from a snapshot trained its partitions, which makes their predicted recall
// high for unseen queries (most of all with max_codes budgets): nestor tune says so, and
// only then.
TEST_F(NestorTuneTest, SnapshotSampleWarnsThatPredictionsRunHigh) {
  IndexOptions options;
  options.dimension = kDim;
  options.num_partitions = 16;
  options.code_type = CodeType::kInt8;
  auto index = CreateIndex(options);
  ASSERT_TRUE(index.ok()) << index.status();
  // The fvecs rows: a 4-byte dimension, then the floats.
  const std::string bytes = ReadFile(data_path());
  std::vector<float> rows;
  std::vector<DatapointId> ids;
  for (int i = 0; i < kNumVectors; ++i) {
    const char* row = bytes.data() + static_cast<size_t>(i) * (4 + 4 * kDim) + 4;
    const float* x = reinterpret_cast<const float*>(row);
    rows.insert(rows.end(), x, x + kDim);
    ids.push_back(static_cast<DatapointId>(i));
  }
  ASSERT_TRUE((*index)->Upsert(ids, rows).ok());
  ASSERT_TRUE((*index)->Build().ok());
  const std::filesystem::path snapshot = dir_ / "snapshot";
  ASSERT_TRUE((*index)->Save(snapshot.string()).ok());
  const std::filesystem::path err = dir_ / "snapshot-stderr.txt";
  auto run = [&](const std::string& source) {
    const std::string command = absl::StrCat(
        "'", NESTOR_TUNE_BINARY, "' ", source,
        " --sample_queries 200 --calibration_queries 50 --measure_points 2 "
        "--target_recall 0.9 >/dev/null 2>'",
        err.string(), "'");
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run(absl::StrCat("--snapshot '", snapshot.string(), "'")), 0) << ReadFile(err);
  EXPECT_THAT(ReadFile(err), HasSubstr("warning: the sampled rows trained the snapshot's "
                                       "partitions"));
  EXPECT_THAT(ReadFile(err), HasSubstr("up to 0.01 with them"));
  EXPECT_EQ(run(absl::StrCat("--data '", data_path().string(), "' --num_partitions 16")), 0)
      << ReadFile(err);
  EXPECT_THAT(ReadFile(err), ::testing::Not(HasSubstr("warning")));
}

TEST_F(NestorTuneTest, BadFlagsExitTwo) {
  RunResult run = Run("--target_recall 1.5");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text, HasSubstr("nestor tune: error: INVALID_ARGUMENT: "
                                         "--target_recall must be in [0, 1], got 1.5"));
  // An output nobody could write is refused before the tuning, not after it.
  const std::string nowhere = (dir_ / "no-such-dir" / "t.json").string();
  run = Run(absl::StrCat("--output '", nowhere, "'"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text, HasSubstr("--output " + nowhere + ": directory"));
  EXPECT_THAT(run.stderr_text, HasSubstr("does not exist"));
  run = Run(absl::StrCat("--plot '", dir_.string(), "'"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text, HasSubstr("--plot " + dir_.string() + " is a directory"));
  run = Run("--max_codes_steps 0,nan");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text,
              HasSubstr("INVALID_ARGUMENT: --max_codes_steps must be finite numbers, got nan"));
  run = Run("--max_codes_steps 0 --no_max_codes");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.stderr_text, HasSubstr("--max_codes_steps excludes --no_max_codes"));
}

}  // namespace
}  // namespace nestor::tuning

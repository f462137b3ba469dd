#include "bench/tune_bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "bench/pca_rotation.h"
#include "client/datasets.h"
#include "client/latency_stats.h"
#include "faiss/AutoTune.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexIVFFlat.h"
#include "index/index.h"
#include "index/index_factory.h"
#include "nlohmann/json.hpp"
#include "tuning/autotuner.h"
#include "tuning/trace.h"

namespace nestor::bench {
namespace {

using FaissId = faiss::Index::idx_t;  // int64_t in FAISS 1.7.3

// A measured query-time setting on the held-out queries (one thread, one query a call).
struct Measured {
  double recall = 0;
  double qps = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// One row of the table: a method's choice for one target.
struct Choice {
  std::string method;  // "nestor-tuner", "grid", "faiss-autotune"
  double target = 0;
  bool found = false;
  std::string settings;  // e.g. "P=256 p=12 r=40" or "nprobe=16"
  std::string note;      // why nothing was found
  int build = -1;        // Nestor build index (nestor methods)
  int partitions_to_search = 0;
  int reorder_k = 0;
  int shortlist_dim = 0;  // funnel (0 = off)
  int shortlist_size = 0;
  int64_t max_codes = 0;  // budget (0 = none)
  int nprobe = 0;
  std::optional<double> predicted_recall;
  // Standard error of predicted_recall over the tuning queries (nestor-tuner only).
  std::optional<double> predicted_stderr;
  double tuning_seconds = 0;
  Measured held_out;
};

struct NestorBuild {
  int num_partitions = 0;
  std::unique_ptr<Index> index;
  double build_seconds = 0;
  double memory_bytes = 0;
  std::vector<int> p_axis, r_axis;
  // Funnel space (fashion-mnist-pca): scan dimensions (0 = full-dimension scan over
  // r_axis) and shortlist sizes; {0} and empty on fashion-mnist.
  std::vector<int> s_dims = {0};
  std::vector<int> s_axis;
  // Budget space (SearchParams::max_codes, full-dimension scan): caps P x
  // MaxCodesAxis(P, mean_partition_size, budget_steps) x budget_r; empty steps: none.
  std::vector<int> budget_p, budget_r;
  std::vector<double> budget_steps;
  double mean_partition_size = 0;
};

// One grid point measured on the held-out queries.
struct GridPoint {
  int build = 0;
  int partitions_to_search = 0;
  int reorder_k = 0;
  int shortlist_dim = 0;
  int shortlist_size = 0;
  int64_t max_codes = 0;
  Measured m;
};

Measured FromPoint(const tuning::OperatingPoint& p) {
  Measured m;
  m.recall = p.measured_recall.value_or(0);
  m.qps = p.measured_qps.value_or(0);
  m.p50_us = p.latency_p50 ? absl::ToDoubleMicroseconds(*p.latency_p50) : 0;
  m.p99_us = p.latency_p99 ? absl::ToDoubleMicroseconds(*p.latency_p99) : 0;
  return m;
}

// Builds an index of every row of `base` (id = row number). The rows listed in
// `held_back` (the tuning queries sampled from the data) are not there when Build trains
// the partitions and the int8 quantizer: they are upserted after it, into their nearest
// partitions without retraining, so the tuning queries are in the database (and left out
// of their own results) but unseen by training, like the held-out queries.
std::unique_ptr<Index> BuildIndex(const client::FloatMatrix& base, const IndexOptions& options,
                                  const std::vector<DatapointId>& held_back,
                                  double* build_seconds) {
  auto index = CreateIndex(options);
  if (!index.ok()) {
    std::fprintf(stderr, "nestor: %s\n", index.status().ToString().c_str());
    return nullptr;
  }
  const int d = static_cast<int>(base.cols);
  std::vector<bool> later(base.rows, false);
  for (DatapointId id : held_back) later[id] = true;
  std::vector<DatapointId> ids, late_ids;
  std::vector<float> rows, late_rows;
  ids.reserve(base.rows - held_back.size());
  rows.reserve(ids.capacity() * d);
  for (int64_t r = 0; r < base.rows; ++r) {
    (later[r] ? late_ids : ids).push_back(static_cast<DatapointId>(r));
    std::vector<float>& to = later[r] ? late_rows : rows;
    to.insert(to.end(), base.row(r), base.row(r) + d);
  }
  const auto start = Clock::now();
  absl::Status status = (*index)->Upsert(ids, rows);
  if (status.ok()) status = (*index)->Build();
  if (status.ok() && !late_ids.empty()) status = (*index)->Upsert(late_ids, late_rows);
  if (!status.ok()) {
    std::fprintf(stderr, "nestor: %s\n", status.ToString().c_str());
    return nullptr;
  }
  *build_seconds = SecondsSince(start);
  return std::move(*index);
}

// The standard error of the recall@k the tuner predicts for (p, r) or the funnel (p, sd,
// ss): the standard deviation of the per-query recall over the tuning queries divided by
// the square root of their number, from the same kind of trace the tuner predicts with
// (max_codes > 0: each query opens QueryTrace::PartitionsOpened(p, max_codes)).
// It is the sampling error of the tuning sample: unseen queries' recall differs from the
// prediction by about this much (1,000 queries at recall 0.95: about 0.003).
absl::StatusOr<double> PredictedRecallStdErr(const Index& index, absl::Span<const float> tq,
                                             absl::Span<const DatapointId> truth, int k,
                                             absl::Span<const DatapointId> self_ids, int p,
                                             int r, int sd, int ss, int64_t max_codes) {
  absl::StatusOr<tuning::Trace> trace =
      tuning::BuildIndexTrace(index, tq, truth, k, p, self_ids, sd);
  if (!trace.ok()) return trace.status();
  const uint32_t candidates = static_cast<uint32_t>(std::max(sd > 0 ? ss : r, k));
  double sum = 0, sum_squares = 0;
  for (const tuning::QueryTrace& q : trace->queries) {
    const int opened = q.PartitionsOpened(p, max_codes);
    int found = 0;
    for (const tuning::NeighborTrace& n : q.neighbors) {
      found += n.reachable_at(opened) && n.CodeRank(opened) < candidates;
    }
    const double recall = static_cast<double>(found) / k;
    sum += recall;
    sum_squares += recall * recall;
  }
  const double nq = static_cast<double>(trace->queries.size());
  const double mean = sum / nq;
  return std::sqrt(std::max(0.0, sum_squares / nq - mean * mean) / nq);
}

// Recall@k of FAISS results for queries drawn from the data (leave-one-out): each query
// asks for k + 1 neighbours, its own id is dropped, the first k others are compared with
// its exact top-k (which exclude it). The leave-one-out form of
// faiss::IntersectionCriterion(nq, k), so that FAISS tunes on the same queries and the
// same ground truth as the Nestor tuner.
struct LeaveOneOutRecallCriterion : faiss::AutoTuneCriterion {
  LeaveOneOutRecallCriterion(FaissId nq, int k, std::vector<FaissId> self_ids)
      : faiss::AutoTuneCriterion(nq, k + 1), k_(k), self_ids_(std::move(self_ids)) {}

  double evaluate(const float* /*D*/, const FaissId* I) const override {
    size_t hits = 0;
    for (FaissId q = 0; q < nq; ++q) {
      const FaissId* truth = &gt_I[q * gt_nnn];
      int taken = 0;
      for (FaissId i = 0; i < nnn && taken < k_; ++i) {
        const FaissId id = I[q * nnn + i];
        if (id == self_ids_[q]) continue;
        ++taken;
        if (id >= 0 && std::find(truth, truth + k_, id) != truth + k_) ++hits;
      }
    }
    return static_cast<double>(hits) / (static_cast<double>(nq) * k_);
  }

 private:
  int k_;
  std::vector<FaissId> self_ids_;
};

// FAISS, one thread, one query per call, on the held-out queries.
Measured MeasureFaiss(const faiss::Index& index, const client::FloatMatrix& queries,
                      const std::vector<DatapointId>& truth, int k) {
  omp_set_num_threads(1);
  std::vector<float> distances(k);
  std::vector<FaissId> ids(k);
  std::vector<double> latencies_us(queries.rows);
  size_t hits = 0;
  const auto start = Clock::now();
  for (int64_t q = 0; q < queries.rows; ++q) {
    const auto t0 = Clock::now();
    index.search(1, queries.row(q), k, distances.data(), ids.data());
    latencies_us[q] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    const DatapointId* t = &truth[q * k];
    for (int i = 0; i < k; ++i) {
      if (ids[i] >= 0 && std::find(t, t + k, static_cast<DatapointId>(ids[i])) != t + k) ++hits;
    }
  }
  Measured m;
  m.qps = queries.rows / SecondsSince(start);
  m.recall = static_cast<double>(hits) / (static_cast<double>(queries.rows) * k);
  m.p50_us = client::Percentile(latencies_us, 50);
  m.p99_us = client::Percentile(latencies_us, 99);
  return m;
}

const char* Verdict(bool pass) { return pass ? "PASS" : "MISS"; }

}  // namespace

int RunTuneBench(int argc, char** argv) {
  CLI::App app{"nestor-bench --mode tune: Nestor's autotuner vs exhaustive grid search vs "
               "FAISS autotuning on Fashion-MNIST (issue #5)"};
  std::string mode = "tune";
  int64_t num_queries = 10000;
  int tune_queries = 1000;
  std::string json_path = "tune-results.json";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::vector<int> partitions = {256};
  std::vector<double> targets = {0.90, 0.95, 0.99};
  uint64_t seed = 1234;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int repeats = 3;
  int faiss_nlist = 256;
  std::string dataset = "fashion-mnist";
  std::string tune_source = "train";
  int routing_dim = 64;
  std::vector<int> shortlist_dims = {32, 64, 128};
  std::vector<int> shortlist_sizes = {20, 40, 80, 160};
  bool budgets = true;
  app.add_option("--mode", mode, "tune")->check(CLI::IsMember({"tune"}));
  app.add_option("--dataset", dataset,
                 "fashion-mnist, or fashion-mnist-pca (PCA rotation learned on the train set "
                 "with FAISS; the index gets a Matryoshka ladder and the tuned space adds "
                 "the funnel knobs shortlist_dim x shortlist_size)")
      ->check(CLI::IsMember({"fashion-mnist", "fashion-mnist-pca"}))
      ->capture_default_str();
  app.add_option("--tune_source", tune_source,
                 "tuning queries: train (a seeded sample of train rows, each leaving itself "
                 "out) or test-tail (the last --tune_queries rows of the 10,000 test queries, "
                 "disjoint from the first --queries held-out ones: queries from the query "
                 "distribution, as a query log would give)")
      ->check(CLI::IsMember({"train", "test-tail"}))
      ->capture_default_str();
  app.add_option("--routing_dim", routing_dim,
                 "fashion-mnist-pca: prefix the index trains and routes partitions on")
      ->capture_default_str();
  app.add_option("--shortlist_dims", shortlist_dims,
                 "fashion-mnist-pca: funnel scan dimensions in the space (besides 0 = off)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--shortlist_sizes", shortlist_sizes,
                 "fashion-mnist-pca: funnel shortlist sizes in the space")
      ->delimiter(',')
      ->capture_default_str();
  bool no_budgets = false;
  app.add_flag("--no_max_codes", no_budgets,
               "fashion-mnist: leave the max_codes budget points out of the space (tuner and "
               "grid alike; they are never in the fashion-mnist-pca space)");
  AddFashionMnistOptions(app, "held-out test queries (first N of 10,000)", &num_queries,
                         &data_dir);
  app.add_option("--tune_queries", tune_queries,
                 "tuning queries sampled from the train set (leave-one-out)")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  app.add_option("--json", json_path, "operating points written here")->capture_default_str();
  app.add_option("--nestor_partitions", partitions,
                 "int8 builds tuned and gridded (comma-separated num_partitions)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--targets", targets, "target recalls@10 (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the tuning sample and of the builds")
      ->capture_default_str();
  app.add_option("--threads", threads,
                 "threads for ground truth, FAISS training and FAISS's explore()")
      ->capture_default_str();
  app.add_option("--repeats", repeats,
                 "head-to-head re-measurements of each chosen setting (the fastest counts)")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  app.add_option("--faiss_nlist", faiss_nlist, "nlist of the FAISS IndexIVFFlat")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  budgets = !no_budgets;
  constexpr int k = 10;

  // --------------------------------------------------------------------------- data
  auto base = client::LoadIdx(data_dir + "/train-images-idx3-ubyte.gz");
  const bool test_tail = tune_source == "test-tail";
  auto test = client::LoadIdx(data_dir + "/t10k-images-idx3-ubyte.gz",
                              test_tail ? 0 : num_queries);
  if (!base.ok() || !test.ok()) {
    std::fprintf(stderr, "cannot load Fashion-MNIST from %s: %s\n", data_dir.c_str(),
                 (!base.ok() ? base.status() : test.status()).ToString().c_str());
    return 1;
  }
  const int d = static_cast<int>(base->cols);
  const int64_t n = base->rows;
  const bool pca = dataset == "fashion-mnist-pca";
  // As nestor_bench.cc's --dataset fashion-mnist-pca, the same rotation. The PCA is part of
  // the dataset's definition (as an embedding model would be), so it is learned on the
  // whole train set, tuning rows included; only the index builds hold them out.
  if (pca) RotateByTrainPca(&*base, &*test);
  tune_queries = static_cast<int>(std::min<int64_t>(tune_queries, n));
  std::vector<DatapointId> self_ids;
  std::vector<float> tq(static_cast<size_t>(tune_queries) * d);
  if (test_tail) {
    // Tuning queries: the last tune_queries test rows, disjoint from the held-out ones.
    if (num_queries + tune_queries > test->rows) {
      std::fprintf(stderr, "--tune_source test-tail needs --queries + --tune_queries <= %ld\n",
                   static_cast<long>(test->rows));
      return 2;
    }
    std::copy_n(test->row(test->rows - tune_queries), tq.size(), tq.begin());
    test->rows = num_queries;
    test->data.resize(static_cast<size_t>(num_queries) * d);
  } else {
    // Tuning queries: a seeded sample of train rows; each leaves itself out.
    self_ids.resize(n);
    std::iota(self_ids.begin(), self_ids.end(), DatapointId{0});
    std::mt19937_64 rng(seed);
    std::shuffle(self_ids.begin(), self_ids.end(), rng);
    self_ids.resize(tune_queries);
    for (int i = 0; i < tune_queries; ++i) {
      std::copy_n(base->row(static_cast<int64_t>(self_ids[i])), d,
                  tq.begin() + size_t{1} * i * d);
    }
  }
  std::printf("tune: %s-784-euclidean, %ld base vectors, %ld held-out test queries, "
              "%d tuning queries %s (seed %lu), k=%d\n",
              dataset.c_str(), static_cast<long>(n), static_cast<long>(test->rows), tune_queries,
              test_tail ? "from the tail of the test set (disjoint from the held-out ones)"
                        : "sampled from train (leave-one-out; held out of the builds' "
                          "training, added after it)",
              static_cast<unsigned long>(seed), k);

  // Ground truth of both query sets from Nestor's exact index.
  std::vector<DatapointId> truth, tune_truth;
  {
    const auto start = Clock::now();
    IndexOptions exact_options;
    exact_options.dimension = d;
    double unused = 0;
    std::unique_ptr<Index> exact = BuildIndex(*base, exact_options, {}, &unused);
    if (exact == nullptr) return 1;
    SearchParams params;
    params.k = k;
    params.num_threads = threads;
    auto results = exact->Search(test->data, params);
    if (!results.ok()) {
      std::fprintf(stderr, "ground truth: %s\n", results.status().ToString().c_str());
      return 1;
    }
    truth.assign(test->rows * k, 0);
    for (int64_t q = 0; q < test->rows; ++q) {
      for (int i = 0; i < k; ++i) truth[q * k + i] = (*results)[q][i].id;
    }
    auto loo = tuning::ExactNeighborIds(*exact, tq, k, self_ids);
    if (!loo.ok()) {
      std::fprintf(stderr, "tuning ground truth: %s\n", loo.status().ToString().c_str());
      return 1;
    }
    tune_truth = *std::move(loo);
    std::printf("ground truth (exact index): %.1f s\n", SecondsSince(start));
  }

  // ----------------------------------------------------------------- Nestor builds
  std::vector<NestorBuild> builds;
  for (int num_partitions : partitions) {
    NestorBuild b;
    b.num_partitions = num_partitions;
    IndexOptions options;
    options.dimension = d;
    options.num_partitions = num_partitions;
    options.code_type = CodeType::kInt8;
    options.seed = seed;
    if (pca) {
      // The funnel index of nestor_bench.cc: Matryoshka ladder, routing on a prefix.
      options.matryoshka_dims = {16, 32, 64, 128, 256};
      options.routing_dim = routing_dim;
    }
    b.index = BuildIndex(*base, options, self_ids, &b.build_seconds);
    if (b.index == nullptr) return 1;
    b.memory_bytes = static_cast<double>(b.index->stats().memory_bytes);
    b.p_axis = tuning::DefaultPartitionsAxis(tuning::DefaultMaxPartitions(num_partitions));
    b.r_axis = tuning::DefaultReorderAxis(k, /*uses_codes=*/true);
    if (pca) {
      // The funnel space is about 4x larger: the exhaustive grid is capped to fewer P and
      // reorder values (the tuner searches the same capped space).
      std::vector<int> p_axis;
      for (int p : b.p_axis) {
        if (p <= 6 || p == 8 || p == 10 || p == 12 || p == 16 || p == 20 || p == 24 ||
            p == 30 || p == 37 || p == 46 || p == b.p_axis.back()) {
          p_axis.push_back(p);
        }
      }
      b.p_axis = p_axis;
      b.r_axis = {10, 15, 20, 30, 40, 60, 80, 100};
      b.s_dims = {0};
      for (int sd : shortlist_dims) b.s_dims.push_back(sd);
      b.s_axis = shortlist_sizes;
    }
    b.mean_partition_size =
        static_cast<double>(b.index->stats().vector_count) / num_partitions;
    if (!pca && budgets) {
      // Budgets with the caps that matter for recall 0.90-0.99 here (P <= 16), at the two
      // smallest reorder depths, to keep the exhaustive grid within about 1.5x its time.
      for (int p : b.p_axis) {
        if (p >= 2 && p <= 16) b.budget_p.push_back(p);
      }
      b.budget_r = {b.r_axis[0], b.r_axis[std::min<size_t>(2, b.r_axis.size() - 1)]};
      b.budget_steps = tuning::DefaultMaxCodesSteps();
    }
    size_t budget_points = 0;
    for (int p : b.budget_p) {
      budget_points += tuning::MaxCodesAxis(p, b.mean_partition_size, b.budget_steps).size() *
                       b.budget_r.size();
    }
    size_t points = b.p_axis.size() * b.r_axis.size() + budget_points;
    for (int sd : b.s_dims) points += sd > 0 ? b.p_axis.size() * b.s_axis.size() : 0;
    std::printf("nestor int8 P=%d%s: built in %.1f s; space partitions_to_search {%s} x "
                "(reorder_k {%s}%s) = %zu points%s\n",
                num_partitions, pca ? absl::StrFormat(" routing_dim=%d", routing_dim).c_str() : "",
                b.build_seconds, absl::StrJoin(b.p_axis, ",").c_str(),
                absl::StrJoin(b.r_axis, ",").c_str(),
                pca ? absl::StrFormat(" + funnel shortlist_dim {%s} x shortlist_size {%s}",
                                      absl::StrJoin(shortlist_dims, ","),
                                      absl::StrJoin(b.s_axis, ",")).c_str()
                    : "",
                points, pca ? " (grid capped: fewer P and reorder_k values)" : "");
    if (budget_points > 0) {
      std::printf("  of which %zu budget points: P {%s} x max_codes round((P + {%s}) x %.1f) "
                  "x reorder_k {%s}\n",
                  budget_points, absl::StrJoin(b.budget_p, ",").c_str(),
                  absl::StrJoin(b.budget_steps, ",").c_str(), b.mean_partition_size,
                  absl::StrJoin(b.budget_r, ",").c_str());
    }
    builds.push_back(std::move(b));
  }
  std::fflush(stdout);
  auto settings_of = [&](int build, int p, int r, int sd = 0, int ss = 0, int64_t m = 0) {
    if (m > 0) {
      return absl::StrFormat("P=%d p=%d m=%d r=%d", builds[build].num_partitions, p, m, r);
    }
    if (sd > 0) {
      return absl::StrFormat("P=%d p=%d f=%dx%d", builds[build].num_partitions, p, sd, ss);
    }
    return absl::StrFormat("P=%d p=%d r=%d", builds[build].num_partitions, p, r);
  };

  std::vector<Choice> choices;
  // -------------------------------------------------------------- 1. Nestor tuner
  for (double target : targets) {
    Choice c;
    c.method = "nestor-tuner";
    c.target = target;
    double best_cost = 0;
    std::vector<std::string> errors;
    for (size_t b = 0; b < builds.size(); ++b) {
      tuning::AutotuneOptions options;
      options.k = k;
      options.target_recall = target;
      options.partitions_to_search = builds[b].p_axis;
      options.reorder_k = builds[b].r_axis;
      options.shortlist_dims = builds[b].s_dims;
      options.shortlist_sizes = builds[b].s_axis;
      options.max_codes_steps = builds[b].budget_steps;
      options.max_codes_partitions = builds[b].budget_p;
      options.max_codes_reorder_k = builds[b].budget_r;
      const auto start = Clock::now();
      auto result = tuning::Autotune(*builds[b].index, tq, tune_truth, options, self_ids);
      c.tuning_seconds += SecondsSince(start);
      if (!result.ok()) {
        errors.push_back(absl::StrFormat("P=%d: %s", builds[b].num_partitions,
                                         result.status().message()));
        continue;
      }
      const tuning::OperatingPoint& chosen = result->chosen;
      if (!c.found || chosen.predicted_seconds_per_query < best_cost) {
        c.found = true;
        best_cost = chosen.predicted_seconds_per_query;
        c.build = static_cast<int>(b);
        c.partitions_to_search = chosen.partitions_to_search;
        c.reorder_k = chosen.reorder_k;
        c.shortlist_dim = chosen.shortlist_dim;
        c.shortlist_size = chosen.shortlist_size;
        c.max_codes = chosen.max_codes;
        c.predicted_recall = chosen.predicted_recall;
      }
    }
    if (c.found) {
      c.settings = settings_of(c.build, c.partitions_to_search, c.reorder_k, c.shortlist_dim,
                               c.shortlist_size, c.max_codes);
      // Outside the tuner's time: a report of its sampling error, not part of tuning.
      auto se = PredictedRecallStdErr(*builds[c.build].index, tq, tune_truth, k, self_ids,
                                      c.partitions_to_search, c.reorder_k, c.shortlist_dim,
                                      c.shortlist_size, c.max_codes);
      if (!se.ok()) {
        std::fprintf(stderr, "standard error: %s\n", se.status().ToString().c_str());
        return 1;
      }
      c.predicted_stderr = *se;
    } else {
      c.note = absl::StrJoin(errors, "; ");
    }
    std::printf("nestor-tuner target %.2f: %s predicted recall %.4f (standard error %.4f), "
                "tuned in %.2f s%s%s\n",
                target, c.found ? c.settings.c_str() : "none",
                c.predicted_recall.value_or(0), c.predicted_stderr.value_or(0),
                c.tuning_seconds, c.found ? "" : " -- ", c.note.c_str());
    std::fflush(stdout);
    choices.push_back(c);
  }

  // ---------------------------------------------------- 2. Exhaustive grid search
  std::vector<GridPoint> grid;
  const auto grid_start = Clock::now();
  for (size_t b = 0; b < builds.size(); ++b) {
    for (int p : builds[b].p_axis) {
      for (int sd : builds[b].s_dims) {
        for (int r : sd > 0 ? builds[b].s_axis : builds[b].r_axis) {
          auto m = tuning::MeasureOperatingPoint(*builds[b].index, test->data, truth, k, p,
                                                 sd > 0 ? 0 : r, 0, {}, sd, sd > 0 ? r : 0);
          if (!m.ok()) {
            std::fprintf(stderr, "grid: %s\n", m.status().ToString().c_str());
            return 1;
          }
          grid.push_back({static_cast<int>(b), p, sd > 0 ? 0 : r, sd, sd > 0 ? r : 0, 0,
                          FromPoint(*m)});
        }
      }
      if (std::find(builds[b].budget_p.begin(), builds[b].budget_p.end(), p) !=
          builds[b].budget_p.end()) {
        for (int64_t mc : tuning::MaxCodesAxis(p, builds[b].mean_partition_size,
                                               builds[b].budget_steps)) {
          for (int r : builds[b].budget_r) {
            auto m = tuning::MeasureOperatingPoint(*builds[b].index, test->data, truth, k, p, r,
                                                   0, {}, 0, 0, mc);
            if (!m.ok()) {
              std::fprintf(stderr, "grid: %s\n", m.status().ToString().c_str());
              return 1;
            }
            grid.push_back({static_cast<int>(b), p, r, 0, 0, mc, FromPoint(*m)});
          }
        }
      }
      std::printf("\rgrid: P=%d p=%d done (%zu points, %.0f s)", builds[b].num_partitions, p,
                  grid.size(), SecondsSince(grid_start));
      std::fflush(stdout);
    }
  }
  const double grid_seconds = SecondsSince(grid_start);
  std::printf("\ngrid: %zu points on %ld held-out queries in %.1f s\n", grid.size(),
              static_cast<long>(test->rows), grid_seconds);
  for (double target : targets) {
    Choice c;
    c.method = "grid";
    c.target = target;
    c.tuning_seconds = grid_seconds;
    double best_recall = 0;
    for (const GridPoint& g : grid) {
      best_recall = std::max(best_recall, g.m.recall);
      if (g.m.recall < target || (c.found && g.m.qps <= c.held_out.qps)) continue;
      c.found = true;
      c.build = g.build;
      c.partitions_to_search = g.partitions_to_search;
      c.reorder_k = g.reorder_k;
      c.shortlist_dim = g.shortlist_dim;
      c.shortlist_size = g.shortlist_size;
      c.max_codes = g.max_codes;
      c.held_out = g.m;
    }
    if (c.found) {
      c.settings = settings_of(c.build, c.partitions_to_search, c.reorder_k, c.shortlist_dim,
                               c.shortlist_size, c.max_codes);
    } else {
      c.note = absl::StrFormat("no grid point reaches it (best %.4f)", best_recall);
    }
    choices.push_back(c);
  }

  // ------------------------------------------------------- 3. FAISS autotuning
  {
    omp_set_num_threads(threads);
    faiss::IndexFlatL2 quantizer(d);
    faiss::IndexIVFFlat ivf(&quantizer, d, faiss_nlist);
    auto start = Clock::now();
    {
      // Trained without the tuning queries sampled from the data, as the Nestor builds
      // are; every row is added.
      std::vector<bool> tuning_row(n, false);
      for (DatapointId id : self_ids) tuning_row[id] = true;
      std::vector<float> training;
      training.reserve(static_cast<size_t>(n - self_ids.size()) * d);
      for (int64_t r = 0; r < n; ++r) {
        if (!tuning_row[r]) training.insert(training.end(), base->row(r), base->row(r) + d);
      }
      ivf.train(static_cast<FaissId>(training.size() / d), training.data());
    }
    ivf.add(n, base->data.data());
    const double faiss_build_seconds = SecondsSince(start);
    faiss::ParameterSpace space;
    space.verbose = 0;
    space.initialize(&ivf);
    // No self to leave out for test-tail queries: -1 matches no id.
    std::vector<FaissId> self64(self_ids.begin(), self_ids.end());
    if (self64.empty()) self64.assign(tune_queries, FaissId{-1});
    std::vector<FaissId> gt64(tune_truth.begin(), tune_truth.end());
    LeaveOneOutRecallCriterion criterion(tune_queries, k, self64);
    criterion.set_groundtruth(k, nullptr, gt64.data());
    faiss::OperatingPoints ops;
    start = Clock::now();
    space.explore(&ivf, tune_queries, tq.data(), criterion, &ops);
    const double explore_seconds = SecondsSince(start);
    std::printf("faiss-autotune: IVF%d,Flat built in %.1f s; explore() over %zu combinations "
                "in %.2f s, %zu optimal points\n",
                faiss_nlist, faiss_build_seconds, space.n_combinations(), explore_seconds,
                ops.optimal_pts.size());
    for (double target : targets) {
      Choice c;
      c.method = "faiss-autotune";
      c.target = target;
      c.tuning_seconds = explore_seconds;
      const faiss::OperatingPoint* pick = nullptr;
      double best_perf = 0;
      for (const faiss::OperatingPoint& op : ops.optimal_pts) {
        best_perf = std::max(best_perf, op.perf);
        if (op.perf >= target && (pick == nullptr || op.t < pick->t)) pick = &op;
      }
      if (pick == nullptr) {
        c.note = absl::StrFormat("explore() reached at most %.4f", best_perf);
      } else {
        c.found = true;
        c.settings = pick->key;
        c.predicted_recall = pick->perf;
        space.set_index_parameters(&ivf, pick->cno);
        c.nprobe = static_cast<int>(ivf.nprobe);
        c.held_out = MeasureFaiss(ivf, *test, truth, k);
      }
      choices.push_back(c);
    }
    omp_set_num_threads(threads);
    for (Choice& c : choices) {
      if (c.method == "faiss-autotune") {
        c.settings = c.found ? absl::StrFormat("nlist=%d %s", faiss_nlist, c.settings)
                             : std::string("none");
      }
    }
    const double faiss_memory =
        static_cast<double>(n) * (d * sizeof(float) + sizeof(FaissId)) +
        static_cast<double>(faiss_nlist) * d * sizeof(float);
    // Head-to-head: the tuner's and the grid's choices, re-measured alternately on the
    // held-out queries (the fastest of --repeats runs counts), so that both QPS come
    // from the same minutes of this shared machine rather than from a grid maximum over
    // hundreds of noisy runs.
    for (double target : targets) {
      Choice* tuner = nullptr;
      Choice* best = nullptr;
      for (Choice& c : choices) {
        if (c.target != target || !c.found) continue;
        if (c.method == "nestor-tuner") tuner = &c;
        if (c.method == "grid") best = &c;
      }
      std::vector<Choice*> both;
      if (tuner != nullptr) both.push_back(tuner);
      if (best != nullptr) both.push_back(best);
      for (Choice* c : both) c->held_out.qps = 0;
      for (int rep = 0; rep < repeats; ++rep) {
        for (Choice* c : both) {
          auto m = tuning::MeasureOperatingPoint(*builds[c->build].index, test->data, truth, k,
                                                 c->partitions_to_search, c->reorder_k, 0, {},
                                                 c->shortlist_dim, c->shortlist_size,
                                                 c->max_codes);
          if (!m.ok()) {
            std::fprintf(stderr, "measure: %s\n", m.status().ToString().c_str());
            return 1;
          }
          if (m->measured_qps.value_or(0) > c->held_out.qps) c->held_out = FromPoint(*m);
        }
      }
    }

    // ------------------------------------------------------------------ report
    auto grid_choice = [&](double target) -> const Choice* {
      for (const Choice& c : choices) {
        if (c.method == "grid" && c.target == target && c.found) return &c;
      }
      return nullptr;
    };
    std::printf("\nTune: recall@10 targets on %ld held-out queries (QPS: one thread, one query "
                "per call; Nestor choices re-measured head-to-head, best of %d)\n",
                static_cast<long>(test->rows), repeats);
    std::printf("(predicted: on the tuning queries, +- its standard error over them)\n");
    std::printf("%-6s | %-14s | %-22s | %-15s | %-8s | %8s | %8s | %9s | %9s\n", "target",
                "method", "settings", "predicted", "held-out", "QPS", "QPS/grid", "tuning s",
                "time/grid");
    for (double target : targets) {
      const Choice* g = grid_choice(target);
      for (const Choice& c : choices) {
        if (c.target != target) continue;
        std::string predicted =
            c.predicted_recall ? absl::StrFormat("%.4f", *c.predicted_recall) : "-";
        if (c.predicted_stderr) absl::StrAppendFormat(&predicted, " +-%.4f", *c.predicted_stderr);
        if (!c.found) {
          std::printf("%-6.2f | %-14s | %-22s | %-15s | %-8s | %8s | %8s | %9.2f | %9s  (%s)\n",
                      target, c.method.c_str(), "none", predicted.c_str(), "-", "-", "-",
                      c.tuning_seconds, "-", c.note.c_str());
          continue;
        }
        const std::string qps_ratio =
            g != nullptr ? absl::StrFormat("%.3f", c.held_out.qps / g->held_out.qps) : "-";
        std::printf("%-6.2f | %-14s | %-22s | %-15s | %-8.4f | %8.0f | %8s | %9.2f | %9.4f\n",
                    target, c.method.c_str(), c.settings.c_str(), predicted.c_str(),
                    c.held_out.recall, c.held_out.qps, qps_ratio.c_str(), c.tuning_seconds,
                    c.tuning_seconds / grid_seconds);
      }
    }
    std::printf("\nChecks (issue #5), nestor-tuner vs grid:\n");
    for (double target : targets) {
      const Choice* g = grid_choice(target);
      const Choice* t = nullptr;
      for (const Choice& c : choices) {
        if (c.method == "nestor-tuner" && c.target == target && c.found) t = &c;
      }
      if (t == nullptr) {
        std::printf("  target %.2f: MISS tuner found no setting\n", target);
        continue;
      }
      std::printf("  target %.2f: %s held-out recall %.4f >= %.4f (target - 0.005); predicted "
                  "%.4f, standard error %.4f\n",
                  target, Verdict(t->held_out.recall >= target - 0.005), t->held_out.recall,
                  target - 0.005, t->predicted_recall.value_or(0),
                  t->predicted_stderr.value_or(0));
      if (g != nullptr) {
        std::printf("  target %.2f: %s tuner QPS %.0f >= 0.95 x grid QPS %.0f (ratio %.3f)\n",
                    target, Verdict(t->held_out.qps >= 0.95 * g->held_out.qps),
                    t->held_out.qps, g->held_out.qps, t->held_out.qps / g->held_out.qps);
      } else {
        std::printf("  target %.2f: n/a  grid has no point reaching it\n", target);
      }
      std::printf("  target %.2f: %s tuner time %.2f s <= grid time / 10 = %.2f s (ratio %.4f)\n",
                  target, Verdict(t->tuning_seconds <= grid_seconds / 10), t->tuning_seconds,
                  grid_seconds / 10, t->tuning_seconds / grid_seconds);
    }

    // ------------------------------------------------------------------- JSON
    nlohmann::json out = nlohmann::json::array();
    for (const Choice& c : choices) {
      if (!c.found) continue;
      const bool nestor = c.method != "faiss-autotune";
      nlohmann::json j = {
          {"system", nestor ? "nestor" : "faiss-ivf-flat"},
          {"config", nestor ? "int8 " + c.settings : c.settings},
          {"mode", "single"},
          {"recall_at_10", c.held_out.recall},
          {"qps", c.held_out.qps},
          {"p50_us", c.held_out.p50_us},
          {"p99_us", c.held_out.p99_us},
          {"build_seconds", nestor ? builds[c.build].build_seconds : faiss_build_seconds},
          {"memory_bytes", nestor ? builds[c.build].memory_bytes : faiss_memory},
          {"target_recall", c.target},
          {"predicted_recall", c.predicted_recall ? nlohmann::json(*c.predicted_recall)
                                                  : nlohmann::json(nullptr)},
          {"predicted_recall_stderr", c.predicted_stderr ? nlohmann::json(*c.predicted_stderr)
                                                         : nlohmann::json(nullptr)},
          {"tuning_seconds", c.tuning_seconds},
          {"method", c.method},
          {"grid_seconds", grid_seconds},
          {"held_out_queries", test->rows},
          {"tuning_queries", tune_queries}};
      if (nestor) {
        j["num_partitions"] = builds[c.build].num_partitions;
        j["partitions_to_search"] = c.partitions_to_search;
        j["reorder_k"] = c.reorder_k;
        j["shortlist_dim"] = c.shortlist_dim;
        j["shortlist_size"] = c.shortlist_size;
        j["max_codes"] = c.max_codes;
        j["dataset"] = dataset;
      } else {
        j["nlist"] = faiss_nlist;
        j["nprobe"] = c.nprobe;
      }
      out.push_back(j);
    }
    if (!WriteJsonFile(json_path, out)) return 1;
    std::printf("\njson: %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace nestor::bench

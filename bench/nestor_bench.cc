// nestor-bench: Nestor beside its peers (hnswlib, FAISS) on one dataset, in one process,
// with the same queries and the same exact ground truth.
//
// Protocol (ann-benchmarks, Aumüller et al. 2020): recall@10 against exact neighbours,
// queries per second, latency percentiles. Two modes:
//   single  one thread, one query per call (the ann-benchmarks protocol);
//   batch   all queries in one call (or, with --batch_size N, in calls of N queries),
//           all threads.
// `--mode tune` (bench/tune_bench.h) and `--mode grpc` (bench/grpc_bench.h) are separate
// programs sharing this binary.
// Every speed claim is a ratio of systems measured in this run, because the machines
// this runs on are shared and noisy.
//
// Datasets: fashion-mnist (784 raw pixels) or fashion-mnist-pca (the same vectors rotated
// by a PCA learned on the train set with FAISS, so coordinates come in order of decreasing
// variance and prefixes behave like Matryoshka prefixes; every system gets the rotated
// vectors). On fashion-mnist-pca Nestor also runs the funnel (shortlist on int8 codes of
// the first shortlist_dim coordinates, exact rerank at full dimension; MRL, Kusupati et al.
// NeurIPS 2022; AdANNS, Rege et al. 2023) and prefix queries at d = 32, 64, 128, 256 with
// ground truth computed at d; "nestor (no funnel)" is the best of both Nestor indexes
// (full-dimension routing, and the funnel's index routed on routing_dim) searched without
// the funnel.
//
// Output: a table on stdout, a JSON array of operating points (--json), and a PNG of the
// recall–QPS curves next to it (gnuplot, when installed).

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/bench_util.h"
#include "bench/grpc_bench.h"
#include "bench/pca_rotation.h"
#include "bench/tune_bench.h"
#include "client/datasets.h"
#include "client/latency_stats.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexIVFFlat.h"
#include "faiss/IndexIVFPQFastScan.h"
#include "faiss/IndexRefine.h"
#include "faiss/VectorTransform.h"
#include "faiss/utils/utils.h"
#include "hnswlib/hnswlib.h"
#include "index/index.h"
#include "index/index_factory.h"
#include "index/kernels/simd.h"
#include "nlohmann/json.hpp"

namespace nestor::bench {
namespace {

// One measured configuration of one system.
struct OperatingPoint {
  std::string system;
  std::string config;
  std::string mode;
  double recall_at_10 = 0;
  double qps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double build_seconds = 0;
  double memory_bytes = 0;
  double memory_bytes_per_vector = 0;
  // Matryoshka settings (0 where not applicable).
  int prefix_dim = 0;
  int shortlist_dim = 0;
  int shortlist_size = 0;
};

// The data every system sees: base vectors, queries and exact top-10 ids per query.
struct Workload {
  client::FloatMatrix base;
  client::FloatMatrix queries;
  int k = 10;
  std::vector<int64_t> truth;  // queries.rows × k ids, nearest first
};

// Searches all queries; returns ids (rows × k, -1 where fewer were found).
// `single` is called per query in single mode, `batch` once in batch mode.
struct SearchFns {
  std::function<void(const float* query, int64_t* ids)> single;
  std::function<void(int64_t n, const float* queries, int64_t* ids)> batch;
};

double Recall(const Workload& w, const std::vector<int64_t>& ids) {
  double hits = 0;
  for (int64_t q = 0; q < w.queries.rows; ++q) {
    const int64_t* truth = &w.truth[q * w.k];
    const int64_t* got = &ids[q * w.k];
    for (int i = 0; i < w.k; ++i) {
      if (got[i] < 0) continue;
      if (std::find(truth, truth + w.k, got[i]) != truth + w.k) ++hits;
    }
  }
  return hits / (static_cast<double>(w.queries.rows) * w.k);
}

// Queries per call in batch mode; 0 = the whole query set in one call.
int64_t g_batch_size = 0;

OperatingPoint Measure(const Workload& w, const std::string& mode, const SearchFns& fns) {
  const int64_t n = w.queries.rows;
  std::vector<int64_t> ids(n * w.k, -1);
  OperatingPoint point;
  point.mode = mode;
  if (mode == "single") {
    std::vector<double> latencies_us(n);
    const auto start = Clock::now();
    for (int64_t q = 0; q < n; ++q) {
      const auto t0 = Clock::now();
      fns.single(w.queries.row(q), &ids[q * w.k]);
      latencies_us[q] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    }
    point.qps = n / SecondsSince(start);
    point.p50_us = client::Percentile(latencies_us, 50);
    point.p99_us = client::Percentile(latencies_us, 99);
  } else {
    // Median of three runs of the whole batch; latency is that of the whole batch.
    std::vector<double> seconds;
    const int64_t per_call = g_batch_size > 0 ? g_batch_size : n;
    for (int run = 0; run < 3; ++run) {
      const auto start = Clock::now();
      for (int64_t q = 0; q < n; q += per_call) {
        fns.batch(std::min(per_call, n - q), w.queries.row(q), ids.data() + q * w.k);
      }
      seconds.push_back(SecondsSince(start));
    }
    std::sort(seconds.begin(), seconds.end());
    point.qps = n / seconds[1];
    // Latency: that of one call (the whole batch, or one call of --batch_size queries).
    point.p50_us = point.p99_us = seconds[1] * 1e6 * per_call / n;
  }
  point.recall_at_10 = Recall(w, ids);
  return point;
}

void Report(const OperatingPoint& p) {
  std::printf("  %-22s %-34s %-6s recall@10=%.4f qps=%9.0f p50_us=%9.1f p99_us=%9.1f\n",
              p.system.c_str(), p.config.c_str(), p.mode.c_str(), p.recall_at_10, p.qps,
              p.p50_us, p.p99_us);
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------- Nestor

std::unique_ptr<Index> BuildNestor(const Workload& w, const IndexOptions& options,
                                   double* build_seconds) {
  auto index = CreateIndex(options);
  if (!index.ok()) {
    std::fprintf(stderr, "nestor: %s\n", index.status().ToString().c_str());
    std::exit(1);
  }
  std::vector<DatapointId> ids(w.base.rows);
  for (int64_t i = 0; i < w.base.rows; ++i) ids[i] = i;
  const auto start = Clock::now();
  absl::Status status = (*index)->Upsert(ids, w.base.data);
  if (status.ok()) status = (*index)->Build();
  if (!status.ok()) {
    std::fprintf(stderr, "nestor: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  *build_seconds = SecondsSince(start);
  return std::move(*index);
}

SearchFns NestorFns(const Index& index, const Workload& w, SearchParams params,
                    int threads) {
  auto copy_out = [&w](const std::vector<std::vector<Neighbor>>& results, int64_t* ids) {
    for (size_t q = 0; q < results.size(); ++q) {
      for (size_t i = 0; i < results[q].size() && i < static_cast<size_t>(w.k); ++i) {
        ids[q * w.k + i] = static_cast<int64_t>(results[q][i].id);
      }
    }
  };
  params.k = w.k;
  SearchFns fns;
  fns.single = [&index, &w, params, copy_out](const float* query, int64_t* ids) {
    SearchParams one = params;
    one.num_threads = 1;
    auto results = index.Search(absl::MakeConstSpan(query, w.base.cols), one);
    if (results.ok()) copy_out(*results, ids);
  };
  fns.batch = [&index, &w, params, threads, copy_out](int64_t n, const float* queries,
                                                      int64_t* ids) {
    SearchParams all = params;
    all.num_threads = threads;
    auto results = index.Search(absl::MakeConstSpan(queries, n * w.base.cols), all);
    if (results.ok()) copy_out(*results, ids);
  };
  return fns;
}

// ------------------------------------------------------------------------------ FAISS

SearchFns FaissFns(const faiss::Index& index, const Workload& w,
                   const faiss::SearchParameters* params) {
  SearchFns fns;
  fns.single = [&index, &w, params](const float* query, int64_t* ids) {
    float distances[64];  // w.k <= 64
    index.search(1, query, w.k, distances, ids, params);
  };
  fns.batch = [&index, &w, params](int64_t n, const float* queries, int64_t* ids) {
    std::vector<float> distances(n * w.k);
    index.search(n, queries, w.k, distances.data(), ids, params);
  };
  return fns;
}

// ---------------------------------------------------------------------------- hnswlib

SearchFns HnswFns(hnswlib::HierarchicalNSW<float>& index, const Workload& w, int threads) {
  auto one = [&index, &w](const float* query, int64_t* ids) {
    auto result = index.searchKnn(query, w.k);
    for (int i = static_cast<int>(result.size()) - 1; i >= 0; --i) {
      ids[i] = static_cast<int64_t>(result.top().second);
      result.pop();
    }
  };
  SearchFns fns;
  fns.single = one;
  fns.batch = [one, &w, threads](int64_t n, const float* queries, int64_t* ids) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([=, &w] {
        for (int64_t q = t; q < n; q += threads) one(queries + q * w.base.cols, ids + q * w.k);
      });
    }
    for (auto& worker : workers) worker.join();
  };
  return fns;
}

const char* HnswSimdPath() {
#if defined(USE_AVX512)
  return "AVX-512 (compile time)";
#elif defined(USE_AVX)
  return "AVX (compile time)";
#elif defined(USE_SSE)
  return "SSE (compile time)";
#else
  return "scalar";
#endif
}

// ----------------------------------------------------------------------------- report

void PrintSummary(const std::vector<OperatingPoint>& points, const std::string& mode) {
  const double thresholds[] = {0.90, 0.95, 0.99};
  std::map<std::string, std::map<double, double>> best;
  std::vector<std::string> order;
  for (const auto& p : points) {
    if (p.mode != mode) continue;
    std::string system = p.system + (p.config.rfind("exact", 0) == 0 ? " (exact)" : "");
    if (!best.count(system)) order.push_back(system);
    auto& row = best[system];
    for (double t : thresholds) {
      if (p.recall_at_10 >= t) row[t] = std::max(row[t], p.qps);
    }
  }
  if (order.empty()) return;
  std::printf("\nSummary, mode=%s: best QPS at recall@10 >= threshold (ratio = nestor / system)\n",
              mode.c_str());
  std::printf("  %-24s %22s %22s %22s\n", "system", ">=0.90", ">=0.95", ">=0.99");
  const auto& nestor = best["nestor"];
  for (const auto& system : order) {
    std::printf("  %-24s", system.c_str());
    for (double t : thresholds) {
      auto it = best[system].find(t);
      if (it == best[system].end()) {
        std::printf(" %22s", "-");
        continue;
      }
      auto n = nestor.find(t);
      std::string ratio = (n != nestor.end() && system != "nestor")
                              ? absl::StrFormat(" (%.2fx)", n->second / it->second)
                              : "";
      std::printf(" %22s", absl::StrFormat("%.0f%s", it->second, ratio).c_str());
    }
    std::printf("\n");
  }
}

// Best QPS at recall@10 >= `threshold` of the points of `mode` that `keep` accepts; 0 if
// none reaches it.
double BestQps(const std::vector<OperatingPoint>& points, const std::string& mode,
               double threshold, const std::function<bool(const OperatingPoint&)>& keep,
               std::string* config = nullptr) {
  double best = 0;
  for (const auto& p : points) {
    if (p.mode != mode || p.recall_at_10 < threshold || !keep(p)) continue;
    if (p.qps > best) {
      best = p.qps;
      if (config != nullptr) *config = p.config;
    }
  }
  return best;
}

// The Matryoshka summary (issue #4 targets): funnel vs hnswlib vs Nestor without the
// funnel at recall@10 >= 0.95 (ground truth at full dimension), and per prefix d the best
// QPS at >= 0.95 (ground truth at d).
void PrintMatryoshkaSummary(const std::vector<OperatingPoint>& points, const std::string& mode) {
  constexpr double kThreshold = 0.95;
  std::string funnel_config, plain_config, hnsw_config;
  const double funnel = BestQps(points, mode, kThreshold,
                                [](const auto& p) { return p.system == "nestor-funnel"; },
                                &funnel_config);
  const double plain = BestQps(points, mode, kThreshold,
                               [](const auto& p) {
                                 return p.system == "nestor" && p.config.rfind("exact", 0) != 0;
                               },
                               &plain_config);
  const double hnsw = BestQps(points, mode, kThreshold,
                              [](const auto& p) { return p.system == "hnswlib"; }, &hnsw_config);
  auto ratio = [](double a, double b) {
    return b > 0 && a > 0 ? absl::StrFormat("%.2fx", a / b) : std::string("-");
  };
  std::printf("\nMatryoshka summary, mode=%s: best QPS at recall@10 >= %.2f (truth at full "
              "dimension)\n", mode.c_str(), kThreshold);
  std::printf("  %-18s %9.0f  %s\n", "nestor-funnel", funnel, funnel_config.c_str());
  std::printf("  %-18s %9.0f  %s\n", "hnswlib", hnsw, hnsw_config.c_str());
  std::printf("  %-18s %9.0f  %s\n", "nestor (no funnel)", plain, plain_config.c_str());
  std::printf("  funnel / hnswlib = %s (target >= 2.5x); funnel / nestor-no-funnel = %s "
              "(target >= 3x)\n", ratio(funnel, hnsw).c_str(), ratio(funnel, plain).c_str());
  std::printf("Prefix queries: best QPS at recall@10 >= %.2f, truth at d\n", kThreshold);
  for (int d : {32, 64, 128, 256}) {
    const std::string system = absl::StrFormat("nestor-prefix-%d", d);
    std::string config;
    double max_recall = 0;
    for (const auto& p : points) {
      if (p.mode == mode && p.system == system) max_recall = std::max(max_recall, p.recall_at_10);
    }
    const double qps = BestQps(points, mode, kThreshold,
                               [&](const auto& p) { return p.system == system; }, &config);
    std::printf("  d=%-4d best qps=%9.0f  max recall@10=%.4f  %s\n", d, qps, max_recall,
                config.c_str());
  }
}

// One line per built index: build wall time and memory per stored vector.
void PrintBuildTable(const std::vector<OperatingPoint>& points) {
  std::printf("\nBuilds: wall seconds and memory per vector (bytes)\n");
  std::vector<std::pair<std::string, std::pair<double, double>>> seen;
  for (const auto& p : points) {
    const std::pair<double, double> key(p.build_seconds, p.memory_bytes);
    bool found = false;
    for (const auto& s : seen) found |= s.first == p.system && s.second == key;
    if (found) continue;
    seen.push_back({p.system, key});
    // The index-level part of the config (drop per-query knobs).
    std::string config = p.config.substr(0, p.config.find(" partitions_to_search"));
    config = config.substr(0, config.find(" nprobe"));
    config = config.substr(0, config.find(" ef="));
    std::printf("  %-22s %-40s build_seconds=%7.1f bytes_per_vector=%7.0f\n", p.system.c_str(),
                config.c_str(), p.build_seconds, p.memory_bytes_per_vector);
  }
}

void WriteJson(const std::vector<OperatingPoint>& points, const std::string& path) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& p : points) {
    array.push_back({{"system", p.system},
                     {"config", p.config},
                     {"mode", p.mode},
                     {"recall_at_10", p.recall_at_10},
                     {"qps", p.qps},
                     {"p50_us", p.p50_us},
                     {"p99_us", p.p99_us},
                     {"build_seconds", p.build_seconds},
                     {"memory_bytes", p.memory_bytes},
                     {"memory_bytes_per_vector", p.memory_bytes_per_vector},
                     {"prefix_dim", p.prefix_dim},
                     {"shortlist_dim", p.shortlist_dim},
                     {"shortlist_size", p.shortlist_size},
                     {"batch_size", p.mode == "batch" ? g_batch_size : 1}});
  }
  std::ofstream(path) << array.dump(2) << "\n";
}

// Writes one data file per (system, mode) and a gnuplot script; runs gnuplot if present.
// Each curve is the system's Pareto frontier (no other point of it has both higher recall
// and higher QPS), as in ann-benchmarks' plots; the JSON keeps every point.
void WritePlot(const std::vector<OperatingPoint>& points, const std::string& json_path) {
  const std::string stem = json_path.substr(0, json_path.rfind('.'));
  std::map<std::string, std::vector<const OperatingPoint*>> curves;
  for (const auto& p : points) {
    if (p.config.rfind("exact", 0) == 0) continue;
    curves[p.system + " " + p.mode].push_back(&p);
  }
  std::string plot = absl::StrFormat(
      "set terminal pngcairo size 1100,700 noenhanced\nset output '%s.png'\n"
      "set logscale y\nset xlabel 'recall@10'\nset ylabel 'queries per second'\n"
      "set key bottom left\nset grid\nset xrange [0.8:1.0]\nplot ",
      stem);
  std::vector<std::string> parts;
  for (auto& [name, curve] : curves) {
    std::sort(curve.begin(), curve.end(), [](auto* a, auto* b) {
      return a->recall_at_10 < b->recall_at_10;
    });
    std::string file = stem + "-" + name + ".dat";
    std::replace(file.begin(), file.end(), ' ', '-');
    // Walking from the highest recall down, a point stays when it is faster than every
    // point of higher (or equal) recall.
    std::vector<const OperatingPoint*> frontier;
    double best_qps = -1;
    for (auto it = curve.rbegin(); it != curve.rend(); ++it) {
      if ((*it)->qps <= best_qps) continue;
      best_qps = (*it)->qps;
      frontier.push_back(*it);
    }
    std::ofstream out(file);
    for (auto it = frontier.rbegin(); it != frontier.rend(); ++it) {
      out << (*it)->recall_at_10 << " " << (*it)->qps << "\n";
    }
    parts.push_back(absl::StrFormat("'%s' using 1:2 with linespoints title '%s'", file, name));
  }
  plot += absl::StrJoin(parts, ", ") + "\n";
  std::ofstream(stem + ".gnuplot") << plot;
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const std::string command = "gnuplot '" + stem + ".gnuplot'";
    if (std::system(command.c_str()) == 0) std::printf("\nplot: %s.png\n", stem.c_str());
  }
}

int Main(int argc, char** argv) {
  CLI::App app{"nestor-bench: Nestor, hnswlib and FAISS side by side on Fashion-MNIST"};
  std::string mode = "both";
  int64_t num_queries = 10000;
  std::string json_path = "bench-results.json";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string systems = "nestor,hnswlib,faiss-ivf-flat,faiss-ivfpq-fastscan,faiss-flat";
  app.add_option("--mode", mode, "single (one thread, one query per call), batch (all "
                 "queries per call, all threads) or both; tune (the autotuner against a grid; "
                 "--mode tune --help) and grpc (gRPC against in-process; --mode grpc --help) "
                 "have their own flags")
      ->check(CLI::IsMember({"single", "batch", "both", "tune", "grpc"}))
      ->capture_default_str();
  AddFashionMnistOptions(app, "test queries used (first N of 10,000)", &num_queries,
                         &data_dir);
  app.add_option("--json", json_path, "operating points written here; PNG plot beside it")
      ->capture_default_str();
  app.add_option("--threads", threads, "threads in batch mode")->capture_default_str();
  app.add_option("--systems", systems, "comma-separated systems to run")
      ->capture_default_str();
  app.add_option("--batch_size", g_batch_size,
                 "batch mode: queries per call (all threads each call); 0 = all in one call")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  std::vector<int> nestor_partitions = {256, 1024};
  app.add_option("--nestor_partitions", nestor_partitions,
                 "Nestor partition counts swept (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  std::string dataset = "fashion-mnist";
  app.add_option("--dataset", dataset,
                 "fashion-mnist, or fashion-mnist-pca (PCA rotation learned on the train set "
                 "with FAISS; adds the Matryoshka funnel and prefix sweeps)")
      ->check(CLI::IsMember({"fashion-mnist", "fashion-mnist-pca"}))
      ->capture_default_str();
  int routing_dim = 64;
  app.add_option("--routing_dim", routing_dim,
                 "fashion-mnist-pca: prefix the funnel index trains and routes partitions on")
      ->capture_default_str();
  std::vector<int> shortlist_dims = {16, 32, 64, 128};
  app.add_option("--shortlist_dims", shortlist_dims,
                 "fashion-mnist-pca: funnel shortlist dimensions swept (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  bool float_sweeps = true;
  app.add_option("--nestor_float", float_sweeps,
                 "also sweep Nestor's float (IVF-flat) codes beside int8")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // bad flags exit 2, as in the other modes and the CLI
  }
  auto wants = [&systems](const std::string& s) {
    return ("," + systems + ",").find("," + s + ",") != std::string::npos;
  };
  std::vector<std::string> modes;
  if (mode != "batch") modes.push_back("single");
  if (mode != "single") modes.push_back("batch");

  Workload w;
  auto base = client::LoadIdx(data_dir + "/train-images-idx3-ubyte.gz");
  auto queries = client::LoadIdx(data_dir + "/t10k-images-idx3-ubyte.gz", num_queries);
  if (!base.ok() || !queries.ok()) {
    std::fprintf(stderr, "cannot load Fashion-MNIST from %s: %s\n", data_dir.c_str(),
                 (!base.ok() ? base.status() : queries.status()).ToString().c_str());
    return 1;
  }
  w.base = std::move(*base);
  w.queries = std::move(*queries);
  const int d = static_cast<int>(w.base.cols);
  const bool pca = dataset == "fashion-mnist-pca";
  if (pca) RotateByTrainPca(&w.base, &w.queries);  // ground truth at d: fashion-mnist's
  std::printf("%s-784-euclidean: %ld base vectors, %ld queries, d=%d, k=%d, "
              "batch threads=%d, batch_size=%ld%s\n",
              dataset.c_str(), static_cast<long>(w.base.rows), static_cast<long>(w.queries.rows), d, w.k,
              threads, static_cast<long>(g_batch_size), g_batch_size == 0 ? " (all)" : "");
  std::printf("SIMD: nestor %s (run time; NESTOR_SIMD forces lower); hnswlib %s; "
              "FAISS compile options \"%s\"\n",
              kernels::ActivePathName(), HnswSimdPath(), faiss::get_compile_options().c_str());

  // Ground truth: Nestor's exact index, which the tests hold to a double-precision loop.
  std::vector<OperatingPoint> points;
  {
    IndexOptions exact_options;
    exact_options.dimension = d;
    double build_seconds = 0;
    auto exact = BuildNestor(w, exact_options, &build_seconds);
    SearchParams params;
    params.k = w.k;
    params.num_threads = threads;
    auto truth = exact->Search(w.queries.data, params);
    if (!truth.ok()) {
      std::fprintf(stderr, "ground truth: %s\n", truth.status().ToString().c_str());
      return 1;
    }
    w.truth.assign(w.queries.rows * w.k, -1);
    for (int64_t q = 0; q < w.queries.rows; ++q) {
      for (int i = 0; i < w.k; ++i) w.truth[q * w.k + i] = (*truth)[q][i].id;
    }
    if (wants("nestor") && mode != "single") {
      OperatingPoint p = Measure(w, "batch", NestorFns(*exact, w, SearchParams{}, threads));
      p.system = "nestor";
      p.config = "exact";
      p.build_seconds = build_seconds;
      p.memory_bytes = exact->stats().memory_bytes;
      Report(p);
      points.push_back(p);
    }
  }

  const std::vector<int> probes = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 48, 64, 96};
  if (wants("nestor")) {
    // Fine steps near recall 0.95: the frontier's knee sits between 10 and 40 candidates.
    const std::vector<int> reorders = {10, 15, 20, 30, 40};
    for (int num_partitions : nestor_partitions) {
      for (CodeType code_type : {CodeType::kFloat, CodeType::kInt8}) {
        if (code_type == CodeType::kFloat && !float_sweeps) continue;
        IndexOptions options;
        options.dimension = d;
        options.num_partitions = num_partitions;
        options.code_type = code_type;
        double build_seconds = 0;
        auto index = BuildNestor(w, options, &build_seconds);
        const std::string codes =
            code_type == CodeType::kInt8 ? "ivf-int8" : "ivf-flat";
        std::printf("nestor %s partitions=%d: built in %.1f s (kernels %s)\n", codes.c_str(),
                    num_partitions, build_seconds, index->stats().simd_path.c_str());
        // reorder_k only matters with int8 codes.
        const std::vector<int> sweep =
            code_type == CodeType::kInt8 ? reorders : std::vector<int>{0};
        for (const auto& m : modes) {
          for (int reorder : sweep) {
            for (int p : probes) {
              SearchParams params;
              params.partitions_to_search = p;
              params.reorder_k = reorder;
              OperatingPoint point = Measure(w, m, NestorFns(*index, w, params, threads));
              point.system = "nestor";
              point.config = code_type == CodeType::kInt8
                                 ? absl::StrFormat(
                                       "%s partitions=%d partitions_to_search=%d reorder_k=%d",
                                       codes, num_partitions, p, reorder)
                                 : absl::StrFormat("%s partitions=%d partitions_to_search=%d",
                                                   codes, num_partitions, p);
              point.build_seconds = build_seconds;
              point.memory_bytes = index->stats().memory_bytes;
              Report(point);
              points.push_back(point);
              if (point.recall_at_10 > 0.999 || p > num_partitions) break;
            }
          }
        }
      }
    }
  }

  if (wants("nestor") && pca) {
    // The funnel index: ladder 16..784, partitions trained and routed on routing_dim.
    for (int num_partitions : nestor_partitions) {
      IndexOptions options;
      options.dimension = d;
      options.num_partitions = num_partitions;
      options.code_type = CodeType::kInt8;
      options.matryoshka_dims = {16, 32, 64, 128, 256};
      options.routing_dim = routing_dim;
      double build_seconds = 0;
      auto index = BuildNestor(w, options, &build_seconds);
      std::printf("nestor funnel index partitions=%d routing_dim=%d: built in %.1f s\n",
                  num_partitions, routing_dim, build_seconds);
      const double memory = index->stats().memory_bytes;
      for (const auto& m : modes) {
        // Measures one setting of this index, records it, and returns its recall@10.
        auto run = [&](const SearchParams& params, const std::string& system,
                       const std::string& config) {
          OperatingPoint point = Measure(w, m, NestorFns(*index, w, params, threads));
          point.system = system;
          point.config = config;
          point.prefix_dim = params.prefix_dim > 0 ? params.prefix_dim : d;
          point.shortlist_dim = params.shortlist_dim;
          point.shortlist_size = params.shortlist_size;
          point.build_seconds = build_seconds;
          point.memory_bytes = memory;
          Report(point);
          points.push_back(point);
          return point.recall_at_10;
        };
        // (0) The same index without the funnel (full-dimension int8 scan and reorder,
        // partitions routed on routing_dim): part of Nestor's best without the funnel.
        for (int reorder : {10, 15, 20, 30, 40}) {
          for (int p : probes) {
            SearchParams params;
            params.partitions_to_search = p;
            params.reorder_k = reorder;
            const double recall = run(params, "nestor",
                                      absl::StrFormat("ivf-int8 partitions=%d routing_dim=%d "
                                                      "matryoshka_dims=16..256 "
                                                      "partitions_to_search=%d reorder_k=%d",
                                                      num_partitions, routing_dim, p, reorder));
            if (recall > 0.995 || p > num_partitions) break;
          }
        }
        // (1) The funnel, truth at full dimension.
        // (shortlist_size, reorder_k): one stage (exact rerank of the whole shortlist,
        // reorder_k 0) with fine steps near recall 0.95, and two stages (the shortlist
        // re-scored on full int8 codes, the best reorder_k re-scored exactly).
        std::vector<std::pair<int, int>> funnel_sizes;
        for (int shortlist_size : {20, 24, 32, 40, 80, 160}) {
          funnel_sizes.emplace_back(shortlist_size, 0);
        }
        for (int shortlist_size : {40, 80}) {
          for (int reorder : {10, 15, 20, 30}) funnel_sizes.emplace_back(shortlist_size, reorder);
        }
        for (int shortlist_dim : shortlist_dims) {
          for (const auto& [shortlist_size, reorder] : funnel_sizes) {
            for (int p : probes) {
              SearchParams params;
              params.partitions_to_search = p;
              params.shortlist_dim = shortlist_dim;
              params.shortlist_size = shortlist_size;
              params.reorder_k = reorder;
              const double recall = run(
                  params, "nestor-funnel",
                  absl::StrFormat("funnel partitions=%d routing_dim=%d shortlist_dim=%d "
                                  "shortlist_size=%d reorder_k=%d prefix_dim=%d "
                                  "partitions_to_search=%d",
                                  num_partitions, routing_dim, shortlist_dim, shortlist_size,
                                  reorder, d, p));
              if (recall > 0.995 || p > num_partitions) break;
            }
          }
        }
        // (2) Prefix queries at d, truth at d (exact index with prefix_dim = d).
        const std::vector<int64_t> full_truth = w.truth;
        for (int prefix : {32, 64, 128, 256}) {
          {
            IndexOptions exact_options;
            exact_options.dimension = d;
            double unused = 0;
            auto exact = BuildNestor(w, exact_options, &unused);
            SearchParams params;
            params.k = w.k;
            params.prefix_dim = prefix;
            params.num_threads = threads;
            auto truth = exact->Search(w.queries.data, params);
            if (!truth.ok()) {
              std::fprintf(stderr, "ground truth: %s\n", truth.status().ToString().c_str());
              return 1;
            }
            for (int64_t q = 0; q < w.queries.rows; ++q) {
              for (int i = 0; i < w.k; ++i) w.truth[q * w.k + i] = (*truth)[q][i].id;
            }
          }
          for (int reorder : {20, 40}) {
            for (int p : probes) {
              SearchParams params;
              params.partitions_to_search = p;
              params.prefix_dim = prefix;
              params.reorder_k = reorder;
              const double recall =
                  run(params, absl::StrFormat("nestor-prefix-%d", prefix),
                      absl::StrFormat("prefix partitions=%d routing_dim=%d prefix_dim=%d "
                                      "partitions_to_search=%d reorder_k=%d",
                                      num_partitions, routing_dim, prefix, p, reorder));
              if (recall > 0.995 || p > num_partitions) break;
            }
          }
        }
        w.truth = full_truth;
      }
    }
  }

  if (wants("hnswlib")) {
    hnswlib::L2Space space(d);
    hnswlib::HierarchicalNSW<float> hnsw(&space, w.base.rows, 16, 200, 100);
    const auto start = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int64_t i = t; i < w.base.rows; i += threads) hnsw.addPoint(w.base.row(i), i);
      });
    }
    for (auto& worker : workers) worker.join();
    const double build_seconds = SecondsSince(start);
    std::printf("hnswlib M=16 ef_construction=200: built in %.1f s\n", build_seconds);
    const double memory = static_cast<double>(w.base.rows) *
                          (hnsw.size_data_per_element_ + sizeof(void*) + 16);
    for (const auto& m : modes) {
      for (int ef : {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384}) {
        hnsw.setEf(ef);
        OperatingPoint point = Measure(w, m, HnswFns(hnsw, w, threads));
        point.system = "hnswlib";
        point.config = absl::StrFormat("M=16 ef_construction=200 ef=%d", ef);
        point.build_seconds = build_seconds;
        point.memory_bytes = memory;
        Report(point);
        points.push_back(point);
        if (point.recall_at_10 > 0.999) break;
      }
    }
  }

  auto run_faiss = [&](const std::vector<std::string>& run_modes, const std::string& system,
                       faiss::Index& index, double build_seconds, double memory,
                       const std::string& config, const faiss::SearchParameters* params) {
    for (const auto& m : run_modes) {
      omp_set_num_threads(m == "single" ? 1 : threads);
      OperatingPoint point = Measure(w, m, FaissFns(index, w, params));
      point.system = system;
      point.config = config;
      point.build_seconds = build_seconds;
      point.memory_bytes = memory;
      Report(point);
      points.push_back(point);
    }
    omp_set_num_threads(threads);
  };

  if (wants("faiss-flat") && mode != "single") {
    faiss::IndexFlatL2 flat(d);
    const auto start = Clock::now();
    flat.add(w.base.rows, w.base.data.data());
    const double build_seconds = SecondsSince(start);
    run_faiss({"batch"}, "faiss-flat", flat, build_seconds, 4.0 * d * w.base.rows, "exact",
              nullptr);
  }

  if (wants("faiss-ivf-flat")) {
    faiss::IndexFlatL2 quantizer(d);
    faiss::IndexIVFFlat ivf(&quantizer, d, 1024);
    const auto start = Clock::now();
    ivf.train(w.base.rows, w.base.data.data());
    ivf.add(w.base.rows, w.base.data.data());
    const double build_seconds = SecondsSince(start);
    std::printf("faiss IVF-Flat nlist=1024: built in %.1f s\n", build_seconds);
    const double memory = (4.0 * d + 8) * w.base.rows + 4.0 * d * 1024;
    for (int p : probes) {
      faiss::SearchParametersIVF params;
      params.nprobe = p;
      run_faiss(modes, "faiss-ivf-flat", ivf, build_seconds, memory,
                absl::StrFormat("nlist=1024 nprobe=%d", p), &params);
    }
  }

  if (wants("faiss-ivfpq-fastscan")) {
    faiss::IndexFlatL2 quantizer(d);
    const int m = d / 4;  // 4 dimensions per 4-bit sub-quantizer
    faiss::IndexIVFPQFastScan ivfpq(&quantizer, d, 1024, m, 4);
    faiss::IndexRefineFlat refine(&ivfpq);
    const auto start = Clock::now();
    refine.train(w.base.rows, w.base.data.data());
    refine.add(w.base.rows, w.base.data.data());
    const double build_seconds = SecondsSince(start);
    std::printf("faiss IVF-PQ fast-scan nlist=1024 M=%d nbits=4 + refine: built in %.1f s\n",
                m, build_seconds);
    const double memory = (m / 2.0 + 8 + 4.0 * d) * w.base.rows + 4.0 * d * 1024;
    // FAISS 1.7.3's IndexRefine takes no per-call parameters: set the knobs on the index.
    for (int p : {4, 8, 16, 32, 64}) {
      for (float k_factor : {2.0f, 8.0f}) {
        ivfpq.nprobe = p;
        refine.k_factor = k_factor;
        run_faiss(modes, "faiss-ivfpq-fastscan", refine, build_seconds, memory,
                  absl::StrFormat("nlist=1024 M=%d nprobe=%d k_factor=%.0f", m, p, k_factor),
                  nullptr);
      }
    }
  }

  for (auto& p : points) p.memory_bytes_per_vector = p.memory_bytes / w.base.rows;
  for (const auto& m : modes) PrintSummary(points, m);
  if (pca) {
    for (const auto& m : modes) PrintMatryoshkaSummary(points, m);
  }
  PrintBuildTable(points);
  WriteJson(points, json_path);
  std::printf("\njson: %s\n", json_path.c_str());
  WritePlot(points, json_path);
  return 0;
}

}  // namespace
}  // namespace nestor::bench

// The value of --mode ("--mode X" or "--mode=X"), or "" when absent: tune and grpc are
// separate programs with their own flags.
std::string ModeOf(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--mode=", 0) == 0) return arg.substr(7);
    if (arg == "--mode" && i + 1 < argc) return argv[i + 1];
  }
  return "";
}

int main(int argc, char** argv) {
  const std::string mode = ModeOf(argc, argv);
  if (mode == "tune") return nestor::bench::RunTuneBench(argc, argv);
  if (mode == "grpc") return nestor::bench::RunGrpcBench(argc, argv);
  return nestor::bench::Main(argc, argv);
}

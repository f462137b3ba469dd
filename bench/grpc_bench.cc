#include "bench/grpc_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "client/datasets.h"
#include "client/ground_truth.h"
#include "client/latency_stats.h"
#include "client/nestor_client.h"
#include "client/request_load.h"
#include "index/index.h"
#include "index/kernels/simd.h"
#include "nlohmann/json.hpp"
#include "proto/nestor.pb.h"
#include "server/server.h"

namespace nestor::bench {
namespace {

// One pass of one variant over the whole query set.
struct Measurement {
  double qps = 0;
  double recall = 0;
  double p50_us = 0;  // per call (in-process) or per request (gRPC)
  double p99_us = 0;
};

// The variants measured in every round, in this order within a round (reversed every
// other round, so neither side always runs first).
enum Variant { kInProcessBatch, kGrpcBatchOne, kGrpcBatchMany, kInProcessSingle, kGrpcSingle };
constexpr int kNumVariants = 5;

// The temporary data_dir's path for the signal handler (the index lives in memory until
// shutdown, so an interrupted run's data_dir is empty and rmdir removes it).
char g_temp_dir[4096] = {0};

void RemoveTempDirAndReraise(int signal) {
  if (g_temp_dir[0] != '\0') ::rmdir(g_temp_dir);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

// A temporary data_dir, removed with everything in it when this goes out of scope, or on
// SIGINT / SIGTERM.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "nestor-bench-grpc.XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr && pattern.size() < sizeof(g_temp_dir)) {
      path_ = pattern;
      std::memcpy(g_temp_dir, pattern.c_str(), pattern.size() + 1);
      std::signal(SIGINT, RemoveTempDirAndReraise);
      std::signal(SIGTERM, RemoveTempDirAndReraise);
    }
  }
  ~TempDir() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    g_temp_dir[0] = '\0';
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// In-process search of all queries in calls of `batch` (each with params.num_threads);
// ids per query into `ids`.
Measurement MeasureInProcess(const Index& index, const client::FloatMatrix& queries,
                             int64_t batch, const SearchParams& params,
                             const std::vector<int64_t>& truth, int k, bool* ok) {
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(queries.rows));
  std::vector<double> latencies_us;
  latencies_us.reserve(static_cast<size_t>((queries.rows + batch - 1) / batch));
  const auto start = Clock::now();
  for (int64_t q = 0; q < queries.rows; q += batch) {
    const int64_t n = std::min(batch, queries.rows - q);
    const auto t0 = Clock::now();
    auto results = index.Search(absl::MakeConstSpan(queries.row(q), n * queries.cols), params);
    latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!results.ok()) {
      std::fprintf(stderr, "in-process search: %s\n", results.status().ToString().c_str());
      *ok = false;
      return {};
    }
    for (int64_t i = 0; i < n; ++i) {
      for (const Neighbor& neighbor : (*results)[i]) {
        ids[q + i].push_back(static_cast<int64_t>(neighbor.id));
      }
    }
  }
  Measurement m;
  m.qps = queries.rows / SecondsSince(start);
  m.recall = client::RecallAtK(ids, truth, k, k);
  m.p50_us = client::Percentile(latencies_us, 50);
  m.p99_us = client::Percentile(latencies_us, 99);
  return m;
}

Measurement MeasureGrpc(client::NestorClient& client,
                        const std::vector<v1::FindNeighborsRequest>& requests, int in_flight,
                        int64_t num_queries, const std::vector<int64_t>& truth, int k,
                        bool* ok) {
  absl::StatusOr<client::LoadPass> pass = client::SendRequests(client, requests, in_flight);
  if (!pass.ok()) {
    std::fprintf(stderr, "gRPC FindNeighbors: %s\n", pass.status().ToString().c_str());
    *ok = false;
    return {};
  }
  Measurement m;
  m.qps = num_queries / pass->wall_seconds;
  m.recall = client::RecallAtK(pass->ids, truth, k, k);
  m.p50_us = 1e3 * client::Percentile(pass->latencies_ms, 50);
  m.p99_us = 1e3 * client::Percentile(pass->latencies_ms, 99);
  return m;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

int RunGrpcBench(int argc, char** argv) {
  CLI::App app{"nestor-bench --mode grpc: QPS through a loopback nestor server against the "
               "same index searched in-process, rounds alternating (issue #3)"};
  std::string mode = "grpc";
  int64_t num_queries = 10000;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string json_path = "bench-grpc.json";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t batch = 32;
  int concurrency = 4;
  int rounds = 5;
  int num_partitions = 256;
  int partitions_to_search = 6;
  int reorder_k = 40;
  uint64_t seed = 1234;
  app.add_option("--mode", mode, "grpc (this comparison)")
      ->check(CLI::IsMember({"grpc"}))
      ->capture_default_str();
  AddFashionMnistOptions(app, "test queries used (first N of 10,000)", &num_queries,
                         &data_dir);
  app.add_option("--json", json_path, "median operating points written here")
      ->capture_default_str();
  app.add_option("--threads", threads,
                 "threads per batched search: the server's --search_threads and the "
                 "in-process num_threads (default: the cores)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--batch_size", batch, "queries per batched call and per gRPC request")
      ->check(CLI::Range(int64_t{2}, int64_t{1024}))
      ->capture_default_str();
  app.add_option("--concurrency", concurrency,
                 "gRPC requests in flight for the loaded batch line (client threads)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--rounds", rounds,
                 "timed rounds (after one untimed warm-up round); ratios are medians over "
                 "rounds")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--num_partitions", num_partitions, "partitions of the int8 index")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--partitions_to_search", partitions_to_search, "partitions scanned per query")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--reorder_k", reorder_k, "int8 candidates re-scored exactly per query")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--seed", seed, "k-means seed of the index")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  const int k = 10;
  if (partitions_to_search > num_partitions) {
    std::fprintf(stderr, "--partitions_to_search %d exceeds --num_partitions %d\n",
                 partitions_to_search, num_partitions);
    return 2;
  }
  {
    // Fail before minutes of work, not after; a file the probe created is removed again,
    // so a failed run leaves none.
    const bool existed = std::filesystem::exists(json_path);
    std::ofstream probe(json_path, std::ios::app);
    if (!probe) {
      std::fprintf(stderr, "--json %s cannot be written (does its directory exist?)\n",
                   json_path.c_str());
      return 2;
    }
    probe.close();
    std::error_code ignored;
    if (!existed) std::filesystem::remove(json_path, ignored);
  }
  auto base = client::LoadIdx(data_dir + "/train-images-idx3-ubyte.gz");
  auto queries = client::LoadIdx(data_dir + "/t10k-images-idx3-ubyte.gz", num_queries);
  if (!base.ok() || !queries.ok()) {
    std::fprintf(stderr, "cannot load Fashion-MNIST from %s: %s\n", data_dir.c_str(),
                 (!base.ok() ? base.status() : queries.status()).ToString().c_str());
    return 1;
  }
  const int64_t d = base->cols;
  std::printf("fashion-mnist-784-euclidean: %ld base vectors, %ld queries, k=%d; int8 codes, "
              "%d partitions, partitions_to_search=%d, reorder_k=%d; %d search threads, "
              "batches of %ld, %d requests in flight on the loaded line; SIMD %s\n",
              static_cast<long>(base->rows), static_cast<long>(queries->rows), k,
              num_partitions, partitions_to_search, reorder_k, threads,
              static_cast<long>(batch), concurrency, kernels::ActivePathName());

  TempDir temp;
  if (temp.path().empty()) {
    std::fprintf(stderr, "cannot create a temporary data_dir\n");
    return 1;
  }
  server::ServerConfig config;
  config.set_listen_address("127.0.0.1");
  config.set_grpc_port(0);
  config.set_metrics_port(0);
  config.set_data_dir(temp.path());
  config.set_search_threads(static_cast<uint32_t>(threads));
  config.set_grpc_threads(static_cast<uint32_t>(std::max(8, concurrency)));
  config.set_max_batch_size(static_cast<uint32_t>(std::max<int64_t>(1024, batch)));
  auto server = server::NestorServer::Create(config);
  if (!server.ok()) {
    std::fprintf(stderr, "nestor server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  client::NestorClientOptions client_options;
  client_options.server = absl::StrCat("127.0.0.1:", (*server)->grpc_port());
  auto client = client::NestorClient::Create(client_options);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", client.status().ToString().c_str());
    return 1;
  }

  // Create, load and build over gRPC, as `nestor create/load/build` do.
  const std::string name = "fashion_mnist_int8";
  v1::IndexConfig index_config;
  index_config.set_dimension(static_cast<uint32_t>(d));
  index_config.set_metric(v1::METRIC_L2);
  index_config.set_num_partitions(static_cast<uint32_t>(num_partitions));
  index_config.set_default_partitions_to_search(static_cast<uint32_t>(partitions_to_search));
  index_config.set_code_type(v1::CODE_TYPE_INT8);
  index_config.set_default_reorder_k(static_cast<uint32_t>(reorder_k));
  index_config.set_seed(seed);
  const auto build_start = Clock::now();
  absl::Status status = (*client)->CreateIndex(name, index_config).status();
  std::vector<uint64_t> ids(static_cast<size_t>(base->rows));
  for (int64_t i = 0; i < base->rows; ++i) ids[i] = static_cast<uint64_t>(i);
  constexpr int64_t kUpsertBatch = 1000;
  for (int64_t r = 0; status.ok() && r < base->rows; r += kUpsertBatch) {
    const int64_t n = std::min(kUpsertBatch, base->rows - r);
    status = (*client)
                 ->UpsertDatapoints(name, absl::MakeConstSpan(ids.data() + r, n),
                                    absl::MakeConstSpan(base->row(r), n * d), d)
                 .status();
  }
  if (status.ok()) status = (*client)->BuildIndex(name).status();
  if (!status.ok()) {
    std::fprintf(stderr, "create/load/build over gRPC: %s\n", status.ToString().c_str());
    return 1;
  }
  const double build_seconds = SecondsSince(build_start);
  auto index = (*server)->registry()->Get(name);
  if (!index.ok()) {
    std::fprintf(stderr, "registry: %s\n", index.status().ToString().c_str());
    return 1;
  }
  const double memory_bytes = static_cast<double>((*index)->stats().memory_bytes);
  std::printf("loaded and built over gRPC in %.1f s (%.0f bytes per vector)\n", build_seconds,
              memory_bytes / static_cast<double>(base->rows));

  client::GroundTruthOptions gt_options;
  gt_options.metric = client::GroundTruthMetric::kL2;
  gt_options.k = k;
  auto exact = client::ExactNeighbors(*base, *queries, gt_options);
  if (!exact.ok()) {
    std::fprintf(stderr, "ground truth: %s\n", exact.status().ToString().c_str());
    return 1;
  }
  const std::vector<int64_t>& truth = exact->ids;

  // Requests are built before any clock starts, as `nestor bench` does.
  auto build_requests = [&](int64_t per_request) {
    std::vector<v1::FindNeighborsRequest> requests;
    for (int64_t q = 0; q < queries->rows; q += per_request) {
      v1::FindNeighborsRequest& request = requests.emplace_back();
      request.set_index(name);
      const int64_t n = std::min(per_request, queries->rows - q);
      request.mutable_queries()->Reserve(static_cast<int>(n));
      for (int64_t i = 0; i < n; ++i) {
        auto* query = request.add_queries();
        client::FillDatapoint(0, queries->row(q + i), d, query->mutable_datapoint());
        query->set_neighbor_count(k);
        query->set_partitions_to_search(partitions_to_search);
        query->set_reorder_k(reorder_k);
      }
    }
    return requests;
  };
  const std::vector<v1::FindNeighborsRequest> batch_requests = build_requests(batch);
  const std::vector<v1::FindNeighborsRequest> single_requests = build_requests(1);
  SearchParams batch_params;
  batch_params.k = k;
  batch_params.partitions_to_search = partitions_to_search;
  batch_params.reorder_k = reorder_k;
  batch_params.num_threads = threads;
  SearchParams single_params = batch_params;
  single_params.num_threads = 1;

  const std::string names[kNumVariants] = {
      absl::StrFormat("in-process batch %d", batch),
      absl::StrFormat("gRPC batch %d, 1 in flight", batch),
      absl::StrFormat("gRPC batch %d, %d in flight", batch, concurrency),
      "in-process single", "gRPC batch 1, 1 in flight"};
  // measured[v][r]: variant v in timed round r.
  std::vector<std::vector<Measurement>> measured(kNumVariants);
  bool ok = true;
  for (int round = 0; round <= rounds && ok; ++round) {
    Measurement m[kNumVariants];
    for (int step = 0; step < kNumVariants && ok; ++step) {
      const int v = round % 2 == 1 ? step : kNumVariants - 1 - step;
      switch (v) {
        case kInProcessBatch:
          m[v] = MeasureInProcess(**index, *queries, batch, batch_params, truth, k, &ok);
          break;
        case kGrpcBatchOne:
          m[v] = MeasureGrpc(**client, batch_requests, 1, queries->rows, truth, k, &ok);
          break;
        case kGrpcBatchMany:
          m[v] = MeasureGrpc(**client, batch_requests, concurrency, queries->rows, truth, k,
                             &ok);
          break;
        case kInProcessSingle:
          m[v] = MeasureInProcess(**index, *queries, 1, single_params, truth, k, &ok);
          break;
        case kGrpcSingle:
          m[v] = MeasureGrpc(**client, single_requests, 1, queries->rows, truth, k, &ok);
          break;
      }
    }
    if (!ok) break;
    // Same index, same settings, same batches: the neighbours must be the same.
    for (int v = 1; v < kNumVariants; ++v) {
      if (m[v].recall != m[0].recall) {
        std::fprintf(stderr, "%s: recall@10 %.6f differs from in-process %.6f\n",
                     names[v].c_str(), m[v].recall, m[0].recall);
        ok = false;
      }
    }
    std::printf("%s: recall@10=%.4f  QPS: %s %.0f | %s %.0f (%.2f) | %s %.0f (%.2f) | "
                "%s %.0f | %s %.0f (%.2f)\n",
                round == 0 ? "warm-up" : absl::StrCat("round ", round).c_str(), m[0].recall,
                names[0].c_str(), m[0].qps, names[1].c_str(), m[1].qps, m[1].qps / m[0].qps,
                names[2].c_str(), m[2].qps, m[2].qps / m[0].qps, names[3].c_str(), m[3].qps,
                names[4].c_str(), m[4].qps, m[4].qps / m[3].qps);
    std::fflush(stdout);
    if (round == 0) continue;
    for (int v = 0; v < kNumVariants; ++v) measured[v].push_back(m[v]);
  }
  // Nothing is kept: delete the index so that shutting down saves no snapshot.
  (void)(*client)->DeleteIndex(name);
  (void)(*server)->Shutdown();
  if (!ok) return 1;

  // Per-round ratios against the same round's in-process figure.
  auto ratios = [&](int grpc, int in_process) {
    std::vector<double> out;
    for (int r = 0; r < rounds; ++r) {
      out.push_back(measured[grpc][r].qps / measured[in_process][r].qps);
    }
    return out;
  };
  auto median_qps = [&](int v) {
    std::vector<double> qps;
    for (const Measurement& m : measured[v]) qps.push_back(m.qps);
    return Median(qps);
  };
  const int base_of[kNumVariants] = {kInProcessBatch, kInProcessBatch, kInProcessBatch,
                                     kInProcessSingle, kInProcessSingle};
  std::printf("\nmedian of %d round%s (recall@10=%.4f on every line):\n", rounds,
              rounds == 1 ? "" : "s",
              measured[0][0].recall);
  nlohmann::json points = nlohmann::json::array();
  for (int v = 0; v < kNumVariants; ++v) {
    const bool grpc = v == kGrpcBatchOne || v == kGrpcBatchMany || v == kGrpcSingle;
    const std::vector<double> r = ratios(v, base_of[v]);
    const double ratio = Median(r);
    std::printf("  %-30s qps=%.0f", (names[v] + ":").c_str(), median_qps(v));
    if (grpc) {
      std::printf("  ratio to %s: %.2f (rounds %.2f..%.2f)%s", names[base_of[v]].c_str(),
                  ratio, *std::min_element(r.begin(), r.end()),
                  *std::max_element(r.begin(), r.end()),
                  v == kGrpcSingle ? "" : "  (target >= 0.80)");
    }
    std::printf("\n");
    // The round whose QPS is the median (the lower middle for even counts) gives latency.
    std::vector<Measurement> sorted = measured[v];
    std::sort(sorted.begin(), sorted.end(),
              [](const Measurement& a, const Measurement& b) { return a.qps < b.qps; });
    const Measurement& mid = sorted[(sorted.size() - 1) / 2];
    const int per_call = v == kInProcessSingle || v == kGrpcSingle ? 1 : static_cast<int>(batch);
    const int in_flight = v == kGrpcBatchMany ? concurrency : 1;
    nlohmann::json point = {
        {"system", grpc ? "nestor-grpc" : "nestor"},
        {"config", absl::StrFormat("ivf-int8 partitions=%d partitions_to_search=%d "
                                   "reorder_k=%d batch_size=%d in_flight=%d threads=%d",
                                   num_partitions, partitions_to_search, reorder_k, per_call,
                                   in_flight, v == kInProcessSingle || v == kGrpcSingle
                                                  ? (grpc ? threads : 1)
                                                  : threads)},
        {"mode", per_call == 1 ? "single" : "batch"},
        {"recall_at_10", mid.recall},
        {"qps", median_qps(v)},
        {"p50_us", mid.p50_us},
        {"p99_us", mid.p99_us},
        {"build_seconds", build_seconds},
        {"memory_bytes", memory_bytes},
        {"memory_bytes_per_vector", memory_bytes / static_cast<double>(base->rows)},
        {"batch_size", per_call},
        {"in_flight", in_flight},
        {"rounds", rounds}};
    if (grpc) point["ratio_to_in_process"] = ratio;
    points.push_back(point);
  }
  if (!WriteJsonFile(json_path, points)) return 1;
  std::printf("wrote %s\n", json_path.c_str());
  return 0;
}

}  // namespace nestor::bench

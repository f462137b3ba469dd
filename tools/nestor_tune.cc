// nestor-tune: the offline autotuner (issue #5; Sun, Guo & Kumar, ICLR 2023) as a
// command. Input: a dataset file (idx/.gz, fvecs, bvecs, npy) from which it builds one
// partitioned index per --num_partitions value, or an index snapshot directory; tuning
// queries from a file or sampled from the data (leave-one-out; with a dataset they are
// also held out of the build's training and added after it); a goal. Output: a
// nestor.v1.TuningResult (text proto, or JSON when the path ends in .json), a PNG plot of
// the frontier (gnuplot), and a summary on stdout. `nestor tune ...` runs this program.
//
// Exit codes: 0 tuned; 1 error (bad file, build failure); 2 bad flags; 3 goal unreachable
// (the message states the best achievable recall or the cheapest latency).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/datasets.h"
#include "index/index_factory.h"
#include "index/tuning_trace.h"
#include "proto/nestor.pb.h"
#include "tuning/autotuner.h"

namespace {

using nestor::DatapointId;
using nestor::Index;
namespace tuning = nestor::tuning;
namespace v1 = nestor::v1;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Flags {
  std::string data, snapshot, queries, output, plot;
  int sample_queries = 1000;
  uint64_t seed = 1234;
  int k = 10;
  double target_recall = 0.95;
  double max_latency_us = 0.0;
  std::vector<int> num_partitions = {256};
  std::string metric = "l2", code_type = "int8";
  int max_partitions = 0;
  int64_t limit = 0;
  int calibration_queries = 200;
  int measure_points = 8;
  std::vector<int> shortlist_dims;
  std::vector<int> shortlist_sizes;
  std::vector<double> max_codes_steps = tuning::DefaultMaxCodesSteps();
  bool no_max_codes = false;
  bool progress = false;
};

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void Update(const std::string& label, double fraction) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * kWidth);
    std::cerr << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, ' ')
              << "] " << absl::StrFormat("%3d%% %-32s", static_cast<int>(fraction * 100), label)
              << std::flush;
    if (fraction >= 1.0) std::cerr << "\n";
  }

 private:
  bool enabled_;
};

nestor::Metric ParseMetric(const std::string& m) {
  if (m == "ip" || m == "inner_product") return nestor::Metric::kInnerProduct;
  if (m == "cosine") return nestor::Metric::kCosine;
  return nestor::Metric::kL2;
}

v1::Metric MetricProto(nestor::Metric m) {
  switch (m) {
    case nestor::Metric::kInnerProduct: return v1::METRIC_INNER_PRODUCT;
    case nestor::Metric::kCosine: return v1::METRIC_COSINE;
    default: return v1::METRIC_L2;
  }
}

v1::OperatingPoint PointProto(const tuning::OperatingPoint& p, int num_partitions) {
  v1::OperatingPoint out;
  out.set_partitions_to_search(p.partitions_to_search);
  out.set_reorder_k(p.reorder_k);
  out.set_shortlist_dim(p.shortlist_dim);
  out.set_shortlist_size(p.shortlist_size);
  out.set_max_codes(static_cast<uint64_t>(p.max_codes));
  out.set_num_partitions(num_partitions);
  out.set_predicted_recall(p.predicted_recall);
  out.set_predicted_latency_us(p.predicted_seconds_per_query * 1e6);
  if (p.measured_recall) out.set_measured_recall(*p.measured_recall);
  if (p.measured_qps) out.set_measured_qps(*p.measured_qps);
  if (p.latency_p50) out.set_latency_p50_us(absl::ToDoubleMicroseconds(*p.latency_p50));
  if (p.latency_p99) out.set_latency_p99_us(absl::ToDoubleMicroseconds(*p.latency_p99));
  return out;
}

// The ids of a loaded index (the Index interface has no iterator): the tuning scan's
// dense layout lists them; the scan is stopped before its first query is scored.
absl::StatusOr<std::vector<DatapointId>> IndexedIds(const Index& index) {
  nestor::TuningScanLayout layout;
  std::vector<float> probe(index.dimension(), 1.0f);
  absl::Status s = nestor::ScanForTuning(
      index, probe, 1, &layout,
      [](size_t, absl::Span<const uint32_t>, absl::Span<float>) {
        return absl::CancelledError("ids only");
      });
  if (!s.ok() && s.code() != absl::StatusCode::kCancelled) return s;
  return layout.ids;
}

absl::Status WritePlot(const std::string& png, const v1::TuningResult& result) {
  const std::string dat = png + ".dat";
  {
    std::ofstream out(dat);
    out << "# pareto: recall qps\n";
    for (const auto& p : result.pareto()) {
      out << p.predicted_recall() << " " << 1e6 / std::max(1e-3, p.predicted_latency_us())
          << "\n";
    }
    out << "\n\n# measured: recall qps\n";
    for (const auto& p : result.frontier()) {
      if (p.has_measured_recall()) out << p.measured_recall() << " " << p.measured_qps() << "\n";
    }
    out << "\n\n# chosen\n";
    const auto& c = result.chosen();
    out << (c.has_measured_recall() ? c.measured_recall() : c.predicted_recall()) << " "
        << (c.has_measured_qps() ? c.measured_qps() : 1e6 / c.predicted_latency_us()) << "\n";
  }
  const std::string script = absl::StrCat(
      "set terminal pngcairo size 900,600 noenhanced\n", "set output '", png, "'\n",
      "set title 'Nestor speed-recall frontier (", result.num_partitions(),
      " partitions, recall@", result.neighbor_count(), ")'\n",
      "set xlabel 'recall@", result.neighbor_count(), "'\nset ylabel 'QPS (1 thread)'\n",
      "set logscale y\nset grid\nset key bottom left\n", "plot '", dat,
      "' index 0 with linespoints title 'predicted (Pareto)', '", dat,
      "' index 1 with points pt 7 ps 1.5 title 'measured', '", dat,
      "' index 2 with points pt 9 ps 3 title 'chosen'\n");
  FILE* gp = popen("gnuplot 2>&1", "w");
  if (gp == nullptr) return absl::UnavailableError("cannot run gnuplot");
  std::fputs(script.c_str(), gp);
  const int rc = pclose(gp);
  if (rc != 0) {
    // pngcairo may be missing from gnuplot-nox: fall back to the png terminal.
    std::string fallback = script;
    fallback.replace(fallback.find("pngcairo"), 8, "png");
    gp = popen("gnuplot", "w");
    if (gp == nullptr) return absl::UnavailableError("cannot run gnuplot");
    std::fputs(fallback.c_str(), gp);
    if (pclose(gp) != 0) return absl::UnavailableError("gnuplot failed to draw the plot");
  }
  std::remove(dat.c_str());
  return absl::OkStatus();
}

// OK when `path` can be created or overwritten: its directory exists and is writable and
// it is not itself a directory. The file is not created.
absl::Status CheckWritable(const std::string& path) {
  const std::filesystem::path file(path);
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : ".";
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": directory ", dir.string(), " does not exist"));
  }
  if (std::filesystem::is_directory(file, error)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": directory ", dir.string(), " is not writable"));
  }
  return absl::OkStatus();
}

int Fail(const absl::Status& s) {
  std::cerr << "nestor tune: error: " << absl::StatusCodeToString(s.code()) << ": "
            << s.message() << std::endl;
  return s.code() == absl::StatusCode::kOutOfRange ? kExitUnreachable : kExitError;
}

int Run(const Flags& f) {
  ProgressBar bar(f.progress || isatty(STDERR_FILENO));
  // 1. The data (dataset file) or the index (snapshot).
  std::vector<std::unique_ptr<Index>> indexes;
  std::vector<double> build_seconds;
  std::vector<float> data;
  std::vector<DatapointId> ids;
  int dimension = 0;
  nestor::Metric metric = ParseMetric(f.metric);
  if (!f.snapshot.empty()) {
    absl::StatusOr<std::unique_ptr<Index>> loaded = nestor::LoadIndex(f.snapshot);
    if (!loaded.ok()) return Fail(loaded.status());
    dimension = (*loaded)->dimension();
    metric = (*loaded)->metric();
    absl::StatusOr<std::vector<DatapointId>> all = IndexedIds(**loaded);
    if (!all.ok()) return Fail(all.status());
    ids = *std::move(all);
    std::sort(ids.begin(), ids.end());
    data.resize(ids.size() * dimension);
    for (size_t i = 0; i < ids.size(); ++i) {
      absl::StatusOr<std::vector<float>> v = (*loaded)->GetVector(ids[i]);
      if (!v.ok()) return Fail(v.status());
      std::copy(v->begin(), v->end(), data.begin() + i * dimension);
    }
    indexes.push_back(*std::move(loaded));
    build_seconds.push_back(0.0);
  } else {
    bar.Update("loading " + f.data, 0.0);
    absl::StatusOr<nestor::client::FloatMatrix> m = nestor::client::LoadDataset(f.data, f.limit);
    if (!m.ok()) return Fail(m.status());
    dimension = static_cast<int>(m->cols);
    data = std::move(m->data);
    ids.resize(m->rows);
    std::iota(ids.begin(), ids.end(), DatapointId{0});
  }
  const size_t n = ids.size();

  // 2. Tuning queries: a file, or a seeded sample of the data (leave-one-out).
  std::vector<float> queries;
  std::vector<DatapointId> self_ids;
  std::string query_source;
  if (!f.queries.empty()) {
    absl::StatusOr<nestor::client::FloatMatrix> q = nestor::client::LoadDataset(f.queries);
    if (!q.ok()) return Fail(q.status());
    if (q->cols != dimension) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "queries have dimension ", q->cols, ", the data has ", dimension)));
    }
    queries = std::move(q->data);
    query_source = "file";
  } else {
    if (f.sample_queries < 1 || static_cast<size_t>(f.sample_queries) >= n) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--sample_queries must be in 1..", n - 1, ", got ", f.sample_queries)));
    }
    std::vector<size_t> rows(n);
    std::iota(rows.begin(), rows.end(), size_t{0});
    std::mt19937_64 rng(f.seed);
    for (int i = 0; i < f.sample_queries; ++i) {
      std::uniform_int_distribution<size_t> pick(i, n - 1);
      std::swap(rows[i], rows[pick(rng)]);
      queries.insert(queries.end(), data.begin() + rows[i] * dimension,
                     data.begin() + (rows[i] + 1) * dimension);
      self_ids.push_back(ids[rows[i]]);
    }
    query_source = "sample";
    if (!f.snapshot.empty()) {
      std::cerr << "nestor tune: warning: the sampled rows trained the snapshot's partitions, "
                   "so unseen queries reach less recall than predicted: up to 0.003 less "
                   "recall@10 on Fashion-MNIST without max_codes budgets, up to 0.01 with "
                   "them. For a firm target pass held-out --queries, tune from --data, or "
                   "use --no_max_codes."
                << std::endl;
    }
  }
  const int num_queries = static_cast<int>(queries.size() / dimension);

  // 3. Exact ground truth (the oracle).
  bar.Update("exact ground truth", 0.02);
  nestor::IndexOptions options;
  options.dimension = dimension;
  options.metric = metric;
  options.seed = f.seed;
  options.code_type = f.code_type == "float" ? nestor::CodeType::kFloat : nestor::CodeType::kInt8;
  std::vector<DatapointId> truth;
  {
    nestor::IndexOptions exact_options = options;
    exact_options.num_partitions = 0;
    absl::StatusOr<std::unique_ptr<Index>> exact = nestor::CreateIndex(exact_options);
    if (!exact.ok()) return Fail(exact.status());
    absl::Status s = (*exact)->Upsert(ids, data);
    if (!s.ok()) return Fail(s);
    absl::StatusOr<std::vector<DatapointId>> t =
        tuning::ExactNeighborIds(**exact, queries, f.k, self_ids);
    if (!t.ok()) return Fail(t.status());
    truth = *std::move(t);
  }

  // 4. One build per --num_partitions (dataset input). Sampled queries are held out of
  // training: the rows are upserted after Build (into their nearest partitions, no
  // retraining), so they are in the database but, like real queries, unseen by k-means
  // and the int8 quantizer. Rows the partitions were trained on look easier than unseen
  // queries (0 to 0.003 recall@10 on Fashion-MNIST).
  if (f.snapshot.empty()) {
    std::vector<DatapointId> train_ids, late_ids;
    std::vector<float> train_rows, late_rows;
    {
      std::vector<bool> sampled(n, false);
      for (DatapointId id : self_ids) sampled[id] = true;  // ids are row numbers here
      for (size_t r = 0; r < n; ++r) {
        (sampled[r] ? late_ids : train_ids).push_back(ids[r]);
        std::vector<float>& to = sampled[r] ? late_rows : train_rows;
        to.insert(to.end(), data.begin() + r * dimension, data.begin() + (r + 1) * dimension);
      }
    }
    for (size_t b = 0; b < f.num_partitions.size(); ++b) {
      bar.Update(absl::StrCat("building ", f.num_partitions[b], " partitions"),
                 0.05 + 0.25 * b / f.num_partitions.size());
      options.num_partitions = f.num_partitions[b];
      absl::StatusOr<std::unique_ptr<Index>> index = nestor::CreateIndex(options);
      if (!index.ok()) return Fail(index.status());
      const absl::Time t0 = absl::Now();
      absl::Status s = (*index)->Upsert(train_ids, train_rows);
      if (s.ok()) s = (*index)->Build();
      if (s.ok() && !late_ids.empty()) s = (*index)->Upsert(late_ids, late_rows);
      if (!s.ok()) return Fail(s);
      build_seconds.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
      indexes.push_back(*std::move(index));
    }
  }

  // 5. Tune each build; keep the best chosen point.
  v1::TuningResult best;
  bool have_best = false;
  double tuning_seconds = 0.0;
  std::vector<v1::TunedBuild> builds;
  std::string unreachable;
  const bool min_cost = f.max_latency_us <= 0.0;
  for (size_t b = 0; b < indexes.size(); ++b) {
    const Index& index = *indexes[b];
    const int parts = index.options().num_partitions;
    tuning::AutotuneOptions opt;
    opt.k = f.k;
    opt.max_partitions = f.max_partitions;
    opt.target_recall = f.target_recall;
    opt.max_seconds_per_query = f.max_latency_us * 1e-6;
    opt.calibration_queries = f.calibration_queries;
    opt.measure_points = f.measure_points;
    opt.shortlist_dims = f.shortlist_dims;
    opt.shortlist_sizes = f.shortlist_sizes;
    opt.max_codes_steps = f.no_max_codes ? std::vector<double>{} : f.max_codes_steps;
    const double lo = 0.3 + 0.7 * b / indexes.size(), span = 0.7 / indexes.size();
    opt.progress = [&](absl::string_view stage, double x) {
      bar.Update(absl::StrCat("tuning ", parts, " partitions: ", stage), lo + span * x);
    };
    absl::StatusOr<tuning::AutotuneResult> r = tuning::Autotune(index, queries, truth, opt, self_ids);
    v1::TunedBuild build;
    if (r.ok()) tuning_seconds += r->tuning_seconds;
    build.set_num_partitions(parts);
    build.set_build_seconds(build_seconds[b]);
    if (!r.ok()) {
      if (r.status().code() != absl::StatusCode::kOutOfRange) return Fail(r.status());
      build.set_error(std::string(r.status().message()));
      unreachable += absl::StrCat(unreachable.empty() ? "" : "; ", parts, " partitions: ",
                                  r.status().message());
      builds.push_back(build);
      continue;
    }
    *build.mutable_chosen() = PointProto(r->chosen, parts);
    builds.push_back(build);
    const bool better =
        !have_best ||
        (min_cost ? r->chosen.predicted_seconds_per_query <
                        best.chosen().predicted_latency_us() * 1e-6
                  : r->chosen.predicted_recall > best.chosen().predicted_recall());
    if (!better) continue;
    have_best = true;
    best.Clear();
    best.set_dimension(dimension);
    best.set_metric(MetricProto(metric));
    best.set_code_type(r->code_type == "float" ? v1::CODE_TYPE_FLOAT : v1::CODE_TYPE_INT8);
    best.set_num_partitions(parts);
    best.set_num_vectors(r->num_vectors);
    best.set_neighbor_count(f.k);
    best.set_num_queries(num_queries);
    best.set_query_source(query_source);
    best.set_seed(f.seed);
    if (min_cost) {
      best.mutable_goal()->set_target_recall(f.target_recall);
    } else {
      best.mutable_goal()->set_max_latency_us(f.max_latency_us);
    }
    *best.mutable_chosen() = PointProto(r->chosen, parts);
    for (const auto& p : r->frontier) *best.add_frontier() = PointProto(p, parts);
    for (const auto& p : r->solution.pareto) *best.add_pareto() = PointProto(p, parts);
    for (const auto& c : r->calibration) {
      v1::CostCalibrationPoint* cp = best.add_calibration();
      cp->set_partitions_to_search(c.partitions_to_search);
      cp->set_reorder_k(c.reorder_k);
      cp->set_shortlist_dim(c.shortlist_dim);
      cp->set_shortlist_size(c.shortlist_size);
      cp->set_predicted_latency_us(c.predicted_seconds_per_query * 1e6);
      cp->set_measured_latency_us(c.measured_seconds_per_query * 1e6);
    }
    best.set_cost_model_max_relative_error(r->cost_fit.max_abs_relative_error);
  }
  bar.Update("done", 1.0);
  if (!have_best) {
    std::cerr << "nestor tune: goal unreachable: " << unreachable << std::endl;
    return kExitUnreachable;
  }
  for (const auto& b : builds) *best.add_builds() = b;
  best.set_tuning_seconds(tuning_seconds);

  // 6. Output.
  std::string text;
  if (absl::EndsWith(f.output, ".json")) {
    google::protobuf::util::JsonPrintOptions json;
    json.add_whitespace = true;
    json.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(best, &text, json);
  } else {
    google::protobuf::TextFormat::PrintToString(best, &text);
  }
  if (f.output.empty() || f.output == "-") {
    std::cout << text;
  } else {
    std::ofstream out(f.output);
    out << text;
    if (!out) return Fail(absl::InternalError(absl::StrCat("cannot write ", f.output)));
  }
  if (!f.plot.empty()) {
    absl::Status s = WritePlot(f.plot, best);
    if (!s.ok()) std::cerr << "nestor tune: plot not written: " << s.message() << std::endl;
  }
  const auto& c = best.chosen();
  std::cerr << "calibration (predicted vs measured us/query):";
  for (const auto& p : best.calibration()) {
    if (p.shortlist_dim() > 0) {
      std::cerr << absl::StrFormat(" P=%d,funnel=%dx%d %.0f/%.0f", p.partitions_to_search(),
                                   p.shortlist_dim(), p.shortlist_size(),
                                   p.predicted_latency_us(), p.measured_latency_us());
      continue;
    }
    std::cerr << absl::StrFormat(" P=%d,R=%d %.0f/%.0f", p.partitions_to_search(),
                                 p.reorder_k(), p.predicted_latency_us(),
                                 p.measured_latency_us());
  }
  std::cerr << absl::StrFormat("\ncost model max relative error %.1f%%\n",
                               100 * best.cost_model_max_relative_error());
  std::cerr << absl::StrFormat(
      "chosen: num_partitions=%d partitions_to_search=%d reorder_k=%d shortlist_dim=%d "
      "shortlist_size=%d max_codes=%d predicted_recall=%.4f measured_recall=%.4f qps=%.0f "
      "p50_us=%.0f (tuned in %.1f s)\n",
      best.num_partitions(), c.partitions_to_search(), c.reorder_k(), c.shortlist_dim(),
      c.shortlist_size(), c.max_codes(), c.predicted_recall(),
      c.measured_recall(), c.measured_qps(), c.latency_p50_us(), best.tuning_seconds());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nestor tune: offline autotuner; writes a nestor.v1.TuningResult"};
  Flags f;
  auto* source = app.add_option_group("source");
  source->add_option("--data", f.data, "Dataset file (idx/.gz, fvecs, bvecs, npy): builds the index");
  source->add_option("--snapshot", f.snapshot, "Index snapshot directory (data_dir/NAME)");
  source->require_option(1);
  app.add_option("--queries", f.queries, "Tuning query file (default: sample the data)");
  app.add_option("--sample_queries", f.sample_queries,
                 "Tuning queries drawn from the data, each leaving itself out (default "
                 "1000); with --data they are also held out of training (added after the "
                 "build)");
  app.add_option("--seed", f.seed, "Seed of the sample and the k-means builds (default 1234)");
  app.add_option("-k,--k", f.k, "k of recall@k (default 10)");
  app.add_option("--target_recall", f.target_recall,
                 "Goal: cheapest settings with predicted recall >= this (default 0.95)");
  app.add_option("--max_latency_us", f.max_latency_us,
                 "Goal instead: best recall within this predicted latency per query (us)");
  app.add_option("--num_partitions", f.num_partitions,
                 "Builds to compare, comma separated (--data only; default 256)")
      ->delimiter(',');
  app.add_option("--metric", f.metric, "l2|ip|cosine (--data only; default l2)");
  app.add_option("--code_type", f.code_type, "int8|float (--data only; default int8)");
  app.add_option("--max_partitions", f.max_partitions,
                 "Deepest partitions_to_search considered (0 = max(32, num_partitions/4))");
  app.add_option("--limit", f.limit, "Use only the first N rows of --data (0 = all)");
  app.add_option("--calibration_queries", f.calibration_queries,
                 "Queries per timed calibration run (default 200)");
  app.add_option("--measure_points", f.measure_points,
                 "Frontier points measured besides the chosen one (default 8)");
  app.add_option("--output", f.output,
                 "TuningResult file: JSON if it ends in .json, else text proto (default stdout)");
  app.add_option("--plot", f.plot, "PNG plot of the frontier (gnuplot)");
  app.add_option("--shortlist_dims", f.shortlist_dims,
                 "Funnel scan dimensions to search, comma-separated, e.g. 0,32,64,128 "
                 "(0 = funnel off: the full-dimension scan over reorder_k; each d > 0 must "
                 "be allowed by the index's matryoshka_dims; one trace per d). Default: 0 "
                 "only. ApplyTuning / --tuning_file install a chosen funnel point as the "
                 "index's default funnel for queries at the full dimension")
      ->delimiter(',');
  app.add_option("--shortlist_sizes", f.shortlist_sizes,
                 "Funnel candidate counts tried with every --shortlist_dims d > 0, "
                 "comma-separated, strictly increasing, e.g. 20,40,80,160 (default: the "
                 "reorder_k axis, k/2 steps from k to 50k)")
      ->delimiter(',');
  app.add_option("--max_codes_steps", f.max_codes_steps,
                 "Budgets (max_codes: a query stops opening partitions once those opened "
                 "hold this many vectors; partitions_to_search is then the cap) tried with "
                 "every partitions_to_search P >= 2, as steps s in mean partition sizes: "
                 "max_codes = round((P + s) * vectors / partitions), comma-separated "
                 "(default -1,-0.75,-0.5,-0.25,0,0.25,0.5); full-dimension scan only")
      ->delimiter(',');
  CLI::Option* steps_option = app.get_option("--max_codes_steps");
  app.add_flag("--no_max_codes", f.no_max_codes,
                "Tune without the max_codes budget (partitions_to_search and reorder_k only)")
      ->excludes(steps_option);
  app.add_flag("--progress", f.progress, "Progress bar even when stderr is not a terminal");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  std::string refused;
  if (f.k < 1) {
    refused = absl::StrCat("-k must be >= 1, got ", f.k);
  } else if (f.target_recall < 0 || f.target_recall > 1) {
    refused = absl::StrCat("--target_recall must be in [0, 1], got ", f.target_recall);
  } else if (f.max_latency_us < 0) {
    refused = absl::StrCat("--max_latency_us must be >= 0, got ", f.max_latency_us);
  } else if (auto bad = std::find_if(f.max_codes_steps.begin(), f.max_codes_steps.end(),
                                     [](double s) { return !std::isfinite(s); });
             bad != f.max_codes_steps.end()) {
    refused = absl::StrCat("--max_codes_steps must be finite numbers, got ", *bad);
  } else {
    // Found out now, not after minutes of tuning.
    for (const auto& [flag, path] : {std::pair{"--output", f.output}, std::pair{"--plot", f.plot}}) {
      if (path.empty() || path == "-") continue;
      absl::Status writable = CheckWritable(path);
      if (!writable.ok()) {
        refused = absl::StrCat(flag, " ", writable.message());
        break;
      }
    }
  }
  if (!refused.empty()) {
    std::cerr << "nestor tune: error: INVALID_ARGUMENT: " << refused << std::endl;
    return kExitUsage;
  }
  return Run(f);
}

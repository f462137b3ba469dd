#include "index/index_factory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "index/exact_index.h"
#include "index/partitioned_index.h"
#include "index/persistence.h"

namespace nestor {
namespace {

constexpr int kMaxDimension = 65536;
constexpr int kMaxPartitions = 1000000;
constexpr int kDefaultTrainingIterations = 20;
constexpr int kDefaultMaxTrainingPointsPerPartition = 256;

// INVALID_ARGUMENT for an option that only a partitioned index can use, given to an exact
// one: names the option, the value `got` and the `expected` one.
absl::Status PartitionedOnlyError(absl::string_view option, absl::string_view got,
                                  absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      option, " applies to partitioned indexes only (num_partitions > 0); the exact index got ",
      option, "=", got, ", expected ", expected));
}

// Validates `options` and fills in defaults (0 -> default; default_partitions_to_search
// clamped to num_partitions).
absl::StatusOr<IndexOptions> NormalizeOptions(IndexOptions options) {
  if (options.dimension < 1 || options.dimension > kMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dimension must be in [1, ", kMaxDimension, "], got ", options.dimension));
  }
  if (options.metric != Metric::kL2 && options.metric != Metric::kInnerProduct &&
      options.metric != Metric::kCosine) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric must be l2 (1), inner_product (2) or cosine (3), got ",
        static_cast<int>(options.metric)));
  }
  if (options.num_partitions < 0 || options.num_partitions > kMaxPartitions) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_partitions must be in [0, ", kMaxPartitions,
                     "] (0 = exact index), got ", options.num_partitions));
  }
  if (options.default_partitions_to_search < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_partitions_to_search must be >= 0 (0 = num_partitions/16), got ",
                     options.default_partitions_to_search));
  }
  options.default_partitions_to_search =
      std::min(options.default_partitions_to_search, options.num_partitions);
  if (options.training_iterations < 0 || options.training_iterations > kMaxTrainingIterations) {
    return absl::InvalidArgumentError(absl::StrCat(
        "training_iterations must be in 1..", kMaxTrainingIterations, " (0 = default ",
        kDefaultTrainingIterations, "), got ", options.training_iterations));
  }
  if (options.training_iterations == 0) options.training_iterations = kDefaultTrainingIterations;
  if (options.max_training_points_per_partition < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_training_points_per_partition must be >= 1 (0 = default ",
        kDefaultMaxTrainingPointsPerPartition, "), got ",
        options.max_training_points_per_partition));
  }
  if (options.max_training_points_per_partition == 0) {
    options.max_training_points_per_partition = kDefaultMaxTrainingPointsPerPartition;
  }
  if (options.code_type != CodeType::kFloat && options.code_type != CodeType::kInt8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "code_type must be float (1) or int8 (2), got ", static_cast<int>(options.code_type)));
  }
  if (options.reorder_k < 0 || options.reorder_k > kMaxCandidates) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reorder_k must be in [0, ", kMaxCandidates, "] (0 = ", kDefaultReorderFactor,
        " * k), got ", options.reorder_k));
  }
  // Matryoshka ladder: strictly ascending, in [1, dimension]; dimension is always allowed.
  for (size_t i = 0; i < options.matryoshka_dims.size(); ++i) {
    const int m = options.matryoshka_dims[i];
    if (m < 1 || m > options.dimension) {
      return absl::InvalidArgumentError(absl::StrCat(
          "matryoshka_dims[", i, "] = ", m, " must be in [1, dimension ", options.dimension,
          "]"));
    }
    if (i > 0 && m <= options.matryoshka_dims[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "matryoshka_dims must be strictly ascending: {",
          absl::StrJoin(options.matryoshka_dims, ", "), "}"));
    }
  }
  if (!options.matryoshka_dims.empty() &&
      options.matryoshka_dims.back() != options.dimension) {
    options.matryoshka_dims.push_back(options.dimension);
  }
  if (options.routing_dim == 0) options.routing_dim = options.dimension;
  if (!IsAllowedPrefixDim(options, options.routing_dim)) {
    return absl::InvalidArgumentError(absl::StrCat("routing_dim ", options.routing_dim,
                                                   " is not in ", DescribeAllowedDims(options),
                                                   " (0 = dimension)"));
  }
  if (options.pca_rotation && options.num_partitions == 0) {
    return PartitionedOnlyError("pca_rotation", "true", "false");
  }
  return options;
}

// A new exact index scores every stored vector at the query's prefix, so the options that
// shape a partitioned index's layout and query defaults can have no effect on it: a value
// other than the no-op one is refused, not silently dropped. `options` are the caller's,
// before NormalizeOptions. Not checked: code_type (its default, kInt8, is the
// partitioned one and cannot be told from an explicit value) and the k-means build
// settings (training_iterations, seed, max_training_points_per_partition: non-zero by
// default, and Build() is a no-op); the exact index ignores them. Only CreateIndex checks
// this: snapshots written before it keep loading as they always did.
absl::Status CheckExactOptions(const IndexOptions& options) {
  if (options.default_partitions_to_search != 0) {
    return PartitionedOnlyError("default_partitions_to_search",
                                absl::StrCat(options.default_partitions_to_search), "0");
  }
  if (options.reorder_k != 0) {
    return PartitionedOnlyError("reorder_k", absl::StrCat(options.reorder_k), "0");
  }
  if (!options.matryoshka_dims.empty()) {
    return PartitionedOnlyError(
        "matryoshka_dims", absl::StrCat("{", absl::StrJoin(options.matryoshka_dims, ", "), "}"),
        absl::StrCat("{} (the exact index allows every prefix_dim in [1, ", options.dimension,
                     "])"));
  }
  // routing_dim = dimension is what 0 stands for (GetIndex reports it so).
  if (options.routing_dim != 0 && options.routing_dim != options.dimension) {
    return PartitionedOnlyError("routing_dim", absl::StrCat(options.routing_dim),
                                absl::StrCat("0 (= dimension ", options.dimension, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Index>> CreateIndex(const IndexOptions& options) {
  ASSIGN_OR_RETURN(const IndexOptions normalized, NormalizeOptions(options));
  if (normalized.num_partitions == 0) {
    RETURN_IF_ERROR(CheckExactOptions(options));
    return std::make_unique<ExactIndex>(normalized);
  }
  // Float codes are the stored rows, scored exactly: there is no re-scoring for a default
  // reorder_k to size. (As for the exact index, only CreateIndex checks this.)
  if (normalized.code_type == CodeType::kFloat && normalized.reorder_k != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reorder_k applies to int8 codes only (float codes are scored exactly); the float "
        "index got reorder_k=", normalized.reorder_k, ", expected 0"));
  }
  return std::make_unique<PartitionedIndex>(normalized);
}

absl::StatusOr<std::unique_ptr<Index>> LoadIndex(const std::string& directory,
                                                 SavedQueryDefaults* query_defaults) {
  ASSIGN_OR_RETURN(const std::string file,
                   ReadFile(absl::StrCat(directory, "/", kSnapshotFileName)));
  uint32_t version = 0;
  ASSIGN_OR_RETURN(const absl::string_view contents, VerifySnapshot(file, &version));
  ByteReader reader(contents);
  ASSIGN_OR_RETURN(const SnapshotHeader header, ReadSnapshotHeader(reader, version));
  absl::StatusOr<IndexOptions> options = NormalizeOptions(header.options);
  if (!options.ok()) {
    return absl::DataLossError(
        absl::StrCat("snapshot holds invalid options: ", options.status().message()));
  }
  const bool exact_kind = header.kind == SnapshotKind::kExact;
  if (exact_kind != (options->num_partitions == 0)) {
    return absl::DataLossError(absl::StrCat("snapshot kind ", static_cast<int>(header.kind),
                                            " disagrees with num_partitions ",
                                            options->num_partitions));
  }
  std::unique_ptr<Index> index;
  if (exact_kind) {
    ASSIGN_OR_RETURN(index, ExactIndex::Deserialize(*options, reader));
  } else {
    ASSIGN_OR_RETURN(index, PartitionedIndex::Deserialize(*options, header.built,
                                                          header.build_seconds, reader));
  }
  RETURN_IF_ERROR(reader.CheckFullyRead());
  if (query_defaults != nullptr) *query_defaults = header.query_defaults;
  return index;
}

}  // namespace nestor

#include "index/index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "index/distance.h"
#include "index/persistence.h"
#include "index/search_util.h"

namespace nestor {
namespace {

// Every value finite; names the first offending row and column.
absl::Status CheckFinite(absl::Span<const float> values, int dimension, absl::string_view what) {
  // A float is NaN or infinite exactly when its exponent bits are all ones. Blocks are
  // tested with a branch-free OR (which the compiler vectorizes); only a block that has
  // a bad value is searched for the first one.
  constexpr uint32_t kExponent = 0x7f800000u;
  constexpr size_t kBlock = 256;
  for (size_t b = 0; b < values.size(); b += kBlock) {
    const size_t end = std::min(values.size(), b + kBlock);
    uint32_t bad = 0;
    for (size_t i = b; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], sizeof(bits));
      bad |= static_cast<uint32_t>((bits & kExponent) == kExponent);
    }
    if (bad == 0) continue;
    for (size_t i = b; i < end; ++i) {
      if (!std::isfinite(values[i])) {
        return RowError(i / dimension,
                        absl::StrCat(what, " row ", i / dimension, " column ", i % dimension,
                                     " is not finite (", values[i], "); expected finite floats"));
      }
    }
  }
  return absl::OkStatus();
}

// Under cosine, no row may have an all-zero first `used` coordinates.
absl::Status CheckNonZeroRows(absl::Span<const float> values, int dimension, int used,
                              absl::string_view what) {
  const size_t rows = values.size() / dimension;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = values.data() + r * dimension;
    bool all_zero = true;
    for (int j = 0; j < used && all_zero; ++j) all_zero = row[j] == 0.0f;
    if (all_zero) {
      return RowError(r, absl::StrCat(
          what, " row ", r, used == dimension ? " is the zero vector"
                                              : absl::StrCat(" has an all-zero prefix of ", used,
                                                             " dimensions"),
          "; cosine needs a non-zero vector"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RowError(size_t row, std::string message) {
  absl::Status status = absl::InvalidArgumentError(std::move(message));
  status.SetPayload(kRowPayloadUrl, absl::Cord(absl::StrCat(row)));
  return status;
}

std::optional<size_t> RowErrorOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kRowPayloadUrl);  // absl::optional<absl::Cord>
  size_t row = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &row)) {
    return std::nullopt;
  }
  return row;
}

const char* MetricName(Metric metric) {
  switch (metric) {
    case Metric::kL2:
      return "l2";
    case Metric::kInnerProduct:
      return "inner_product";
    case Metric::kCosine:
      return "cosine";
  }
  return "unknown";
}

const char* CodeTypeName(CodeType code_type) {
  switch (code_type) {
    case CodeType::kFloat:
      return "float";
    case CodeType::kInt8:
      return "int8";
  }
  return "unknown";
}

std::string DescribeAllowedDims(const IndexOptions& options) {
  if (options.matryoshka_dims.empty()) {
    return absl::StrCat("[1, ", options.dimension, "] (matryoshka_dims is empty)");
  }
  return absl::StrCat("matryoshka_dims {", absl::StrJoin(options.matryoshka_dims, ", "), "}");
}

bool IsAllowedPrefixDim(const IndexOptions& options, int d) {
  if (d < 1 || d > options.dimension) return false;
  if (options.matryoshka_dims.empty() || d == options.dimension) return true;
  return std::binary_search(options.matryoshka_dims.begin(), options.matryoshka_dims.end(), d);
}

size_t Index::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return SizeImpl();
}

IndexStats Index::stats() const {
  absl::ReaderMutexLock lock(&mu_);
  return StatsImpl();
}

absl::Status Index::Upsert(absl::Span<const DatapointId> ids, absl::Span<const float> vectors) {
  const int d = dimension();
  const size_t expected = ids.size() * static_cast<size_t>(d);
  if (vectors.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vectors must hold ids.size()*dimension floats: expected ", ids.size(), "*", d, "=",
        expected, " floats, got ", vectors.size()));
  }
  RETURN_IF_ERROR(CheckFinite(vectors, d, "vector"));
  if (metric() == Metric::kCosine) {
    RETURN_IF_ERROR(CheckNonZeroRows(vectors, d, d, "vector"));
  }
  if (ids.size() > 1) {
    absl::flat_hash_set<DatapointId> seen;
    seen.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!seen.insert(ids[i]).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "duplicate id ", ids[i], " at position ", i, "; ids must be distinct within one call"));
      }
    }
  }
  if (ids.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return UpsertImpl(ids, vectors);
}

absl::StatusOr<size_t> Index::Remove(absl::Span<const DatapointId> ids) {
  if (ids.empty()) return 0;
  absl::MutexLock lock(&mu_);
  return RemoveImpl(ids);
}

absl::Status Index::Build() {
  absl::MutexLock lock(&mu_);
  return BuildImpl();
}

absl::StatusOr<std::vector<std::vector<Neighbor>>> Index::Search(
    absl::Span<const float> queries, const SearchParams& params) const {
  const int d = dimension();
  if (queries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries is empty; expected a positive multiple of dimension ", d, " floats"));
  }
  if (queries.size() % d != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries must be n*dimension floats: got ", queries.size(),
                     ", not a multiple of dimension ", d));
  }
  if (params.k <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("k must be >= 1, got ", params.k));
  }
  if (params.prefix_dim < 0 || params.prefix_dim > d) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prefix_dim must be in [0, ", d, "] (0 = full dimension), got ", params.prefix_dim));
  }
  if (params.partitions_to_search < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partitions_to_search must be >= 0 (0 = index default), got ",
        params.partitions_to_search));
  }
  if (params.reorder_k < 0 || params.reorder_k > kMaxCandidates) {
    return absl::InvalidArgumentError(
        absl::StrCat("reorder_k must be in [0, ", kMaxCandidates, "] (0 = index default), got ",
                     params.reorder_k));
  }
  if (params.max_codes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_codes must be >= 0 (0 = no limit), got ", params.max_codes));
  }
  if (params.shortlist_size > kMaxCandidates) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shortlist_size must be <= ", kMaxCandidates, ", got ", params.shortlist_size));
  }
  if (params.num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be >= 1, got ", params.num_threads));
  }
  RETURN_IF_ERROR(CheckFinite(queries, d, "query"));
  SearchParams normalized = params;
  if (normalized.prefix_dim == 0) normalized.prefix_dim = d;
  if (!IsAllowedPrefixDim(options_, normalized.prefix_dim)) {
    return absl::InvalidArgumentError(absl::StrCat("prefix_dim ", normalized.prefix_dim,
                                                   " is not in ", DescribeAllowedDims(options_)));
  }
  if (params.shortlist_dim < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shortlist_dim must be >= 0 (0 = funnel off), got ", params.shortlist_dim));
  }
  if (params.shortlist_size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shortlist_size must be >= 0 (0 = ", kDefaultShortlistFactor, " * k), got ",
        params.shortlist_size));
  }
  if (params.shortlist_dim > 0) {
    if (params.shortlist_dim > normalized.prefix_dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("shortlist_dim ", params.shortlist_dim, " must be <= prefix_dim ",
                       normalized.prefix_dim));
    }
    if (!IsAllowedPrefixDim(options_, params.shortlist_dim)) {
      return absl::InvalidArgumentError(absl::StrCat("shortlist_dim ", params.shortlist_dim,
                                                     " is not in ",
                                                     DescribeAllowedDims(options_)));
    }
    if (normalized.shortlist_size == 0) {
      normalized.shortlist_size = kDefaultShortlistFactor * params.k;
    }
    if (normalized.shortlist_size < params.k) {
      return absl::InvalidArgumentError(absl::StrCat("shortlist_size ",
                                                     normalized.shortlist_size,
                                                     " must be >= k ", params.k));
    }
  } else if (params.shortlist_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shortlist_size ", params.shortlist_size,
        " needs the funnel: set shortlist_dim in ", DescribeAllowedDims(options_),
        " or leave shortlist_size 0"));
  }
  if (metric() == Metric::kCosine && !options_.pca_rotation) {
    RETURN_IF_ERROR(CheckNonZeroRows(queries, d, normalized.prefix_dim, "query"));
    if (normalized.shortlist_dim > 0) {
      RETURN_IF_ERROR(CheckNonZeroRows(queries, d, normalized.shortlist_dim, "query"));
    }
  } else if (metric() == Metric::kCosine) {
    // Rotated prefixes are checked inside the index; the whole query must be non-zero.
    RETURN_IF_ERROR(CheckNonZeroRows(queries, d, d, "query"));
  }
  RETURN_IF_ERROR(CheckInterrupted(normalized));
  absl::ReaderMutexLock lock(&mu_);
  return SearchImpl(queries, normalized);
}

absl::StatusOr<std::vector<float>> Index::GetVector(DatapointId id) const {
  absl::ReaderMutexLock lock(&mu_);
  return GetVectorImpl(id);
}

absl::Status Index::Save(const std::string& directory,
                         const SavedQueryDefaults& query_defaults) const {
  RETURN_IF_ERROR(CheckSavedQueryDefaults(query_defaults));
  std::string bytes;
  {
    absl::ReaderMutexLock lock(&mu_);
    const IndexStats stats = StatsImpl();
    SnapshotHeader header;
    header.kind = stats.kind == "exact" ? SnapshotKind::kExact : SnapshotKind::kPartitioned;
    header.options = options_;
    header.built = stats.built;
    header.build_seconds = stats.build_seconds;
    header.query_defaults = query_defaults;
    BeginSnapshot(&bytes);
    ByteWriter writer(&bytes);
    WriteSnapshotHeader(header, writer);
    RETURN_IF_ERROR(SerializeImpl(&bytes));
  }
  FinishSnapshot(&bytes);
  return WriteFileAtomically(directory, kSnapshotFileName, bytes);
}

}  // namespace nestor

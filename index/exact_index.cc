#include "index/exact_index.h"

#include "index/kernels/simd.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "index/distance.h"
#include "index/exact_scan.h"

namespace nestor {

ExactIndex::ExactIndex(const IndexOptions& options)
    : Index(options), rows_(options.dimension, options.dimension) {}

size_t ExactIndex::SizeImpl() const { return rows_.size(); }

IndexStats ExactIndex::StatsImpl() const {
  IndexStats stats;
  stats.kind = "exact";
  stats.vector_count = rows_.size();
  stats.built = true;
  stats.memory_bytes =
      rows_.memory_bytes() +
      row_of_.capacity() * (sizeof(std::pair<DatapointId, size_t>) + 1);  // slots + control
  stats.build_seconds = 0.0;
  stats.num_partitions = 0;
  stats.code_type = CodeTypeName(CodeType::kFloat);
  stats.simd_path = kernels::ActivePathName();
  return stats;
}

absl::Status ExactIndex::UpsertImpl(absl::Span<const DatapointId> ids,
                                    absl::Span<const float> vectors) {
  const int d = dimension();
  rows_.Reserve(rows_.size() + ids.size());
  row_of_.reserve(row_of_.size() + ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* v = vectors.data() + i * d;
    auto [it, inserted] = row_of_.try_emplace(ids[i], 0);
    if (inserted) {
      it->second = rows_.Append(ids[i], v);
    } else {
      rows_.Set(it->second, v);
    }
  }
  return absl::OkStatus();
}

size_t ExactIndex::RemoveImpl(absl::Span<const DatapointId> ids) {
  size_t removed = 0;
  for (DatapointId id : ids) {
    auto it = row_of_.find(id);
    if (it == row_of_.end()) continue;
    const size_t row = it->second;
    row_of_.erase(it);
    if (std::optional<DatapointId> moved = rows_.SwapRemove(row)) row_of_[*moved] = row;
    ++removed;
  }
  return removed;
}

absl::Status ExactIndex::BuildImpl() { return absl::OkStatus(); }

absl::StatusOr<std::vector<std::vector<Neighbor>>> ExactIndex::SearchImpl(
    absl::Span<const float> queries, const SearchParams& params) const {
  std::vector<std::vector<Neighbor>> results(queries.size() / dimension());
  if (rows_.empty()) return results;
  RETURN_IF_ERROR(ExactSearch(absl::MakeConstSpan(&rows_, 1), queries, dimension(), metric(),
                              params, &results));
  return results;
}

absl::StatusOr<std::vector<float>> ExactIndex::GetVectorImpl(DatapointId id) const {
  auto it = row_of_.find(id);
  if (it == row_of_.end()) return absl::NotFoundError(absl::StrCat("no vector with id ", id));
  const float* row = rows_.row(it->second);
  return std::vector<float>(row, row + dimension());
}

absl::Status ExactIndex::SerializeImpl(std::string* out) const {
  ByteWriter writer(out);
  writer.Put<uint64_t>(rows_.size());
  writer.PutArray(rows_.ids().data(), rows_.size());
  for (size_t r = 0; r < rows_.size(); ++r) writer.PutArray(rows_.row(r), dimension());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ExactIndex>> ExactIndex::Deserialize(const IndexOptions& options,
                                                                    ByteReader& reader) {
  auto index = std::make_unique<ExactIndex>(options);
  const int d = options.dimension;
  uint64_t count = 0;
  RETURN_IF_ERROR(reader.Get(&count));
  RETURN_IF_ERROR(reader.CheckAvailable(count, sizeof(DatapointId) + d * sizeof(float)));
  std::vector<DatapointId> ids(count);
  RETURN_IF_ERROR(reader.GetArray(ids.data(), count));
  std::vector<float> vector(d);
  absl::MutexLock lock(&index->mu_);
  index->rows_.Reserve(count);
  index->row_of_.reserve(count);
  for (uint64_t r = 0; r < count; ++r) {
    RETURN_IF_ERROR(reader.GetArray(vector.data(), d));
    if (!index->row_of_.try_emplace(ids[r], r).second) {
      return absl::DataLossError(absl::StrCat("snapshot is corrupt: id ", ids[r], " repeats"));
    }
    index->rows_.Append(ids[r], vector.data());
  }
  return index;
}

}  // namespace nestor

// Reading the TuningResult files `nestor tune` writes; shared by the server
// (--tuning_file) and the `nestor apply-tuning` command.
#ifndef NESTOR_PROTO_TUNING_RESULT_FILE_H_
#define NESTOR_PROTO_TUNING_RESULT_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "proto/nestor.pb.h"

namespace nestor {

// Reads a TuningResult written by `nestor tune`: JSON when the file's first
// non-blank character is '{', protobuf text format otherwise. NOT_FOUND when the file
// cannot be read; INVALID_ARGUMENT when it is a directory, is empty, does not parse or
// names no dimension.
absl::StatusOr<v1::TuningResult> ReadTuningResult(const std::string& path);

}  // namespace nestor

#endif  // NESTOR_PROTO_TUNING_RESULT_FILE_H_

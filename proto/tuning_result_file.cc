#include "proto/tuning_result_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nestor {

absl::StatusOr<v1::TuningResult> ReadTuningResult(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tuning result ", path, " is a directory; expected the file `nestor tune` wrote"));
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tuning result ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  v1::TuningResult result;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tuning result ", path, " is empty; expected the file `nestor tune` wrote"));
  }
  if (text[first] == '{') {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    auto status = google::protobuf::util::JsonStringToMessage(text, &result, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tuning result ", path, " is not a JSON TuningResult: ", status.ToString()));
    }
  } else {
    // Keeps the parser's first complaint for the message instead of letting it log.
    class FirstError : public google::protobuf::io::ErrorCollector {
     public:
      void AddError(int line, int column, const std::string& message) override {
        if (first.empty()) {
          first = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
        }
      }
      std::string first;
    };
    FirstError error;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&error);
    if (!parser.ParseFromString(text, &result)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tuning result ", path, " is not a text-format TuningResult (", error.first, ")"));
    }
  }
  if (result.dimension() == 0) {
    // Every result nestor tune writes names the index shape it was tuned for.
    return absl::InvalidArgumentError(absl::StrCat(
        "tuning result ", path, " has no dimension; expected the file `nestor tune` wrote"));
  }
  return result;
}

}  // namespace nestor

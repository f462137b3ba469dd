// GoogleTest matchers for absl::Status and absl::StatusOr<T>, which Abseil 20220623 lacks.
//   EXPECT_THAT(index->Search(q, params), StatusIs(absl::StatusCode::kInvalidArgument));
//   ASSERT_THAT(index->Upsert(ids, v), IsOk());
#ifndef NESTOR_TESTS_TESTING_STATUS_MATCHERS_H_
#define NESTOR_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace nestor::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status.ToString();
  return status.ok();
}

MATCHER_P(StatusIs, code,
          std::string("has status code ") + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

// StatusIs(code, substring): code matches and the message contains `substring`.
MATCHER_P2(StatusIs, code, substring,
           std::string("has status code ") + absl::StatusCodeToString(code) +
               " and a message containing \"" + std::string(substring) + "\"") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code &&
         status.message().find(std::string(substring)) != absl::string_view::npos;
}

}  // namespace nestor::testing

#endif  // NESTOR_TESTS_TESTING_STATUS_MATCHERS_H_

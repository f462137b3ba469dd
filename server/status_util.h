// The one conversion between absl::Status (everything below server/) and grpc::Status
// (the wire). Codes have the same numeric values in both; messages pass through.
#ifndef NESTOR_SERVER_STATUS_UTIL_H_
#define NESTOR_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace nestor::server {

// Same code, same message. OK maps to grpc::Status::OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse of ToGrpcStatus (for clients and tests): same code, same message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// The canonical upper-case name of a code, e.g. "OK", "INVALID_ARGUMENT" (the `code`
// label of nestor_requests_total).
const char* StatusCodeName(absl::StatusCode code);

}  // namespace nestor::server

#endif  // NESTOR_SERVER_STATUS_UTIL_H_

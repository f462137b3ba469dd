// Status propagation macros for Abseil 20220623, which ships none of its own.
#ifndef NESTOR_COMMON_STATUS_MACROS_H_
#define NESTOR_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define NESTOR_CONCAT_INNER_(a, b) a##b
#define NESTOR_CONCAT_(a, b) NESTOR_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status nestor_status_ = (expr);            \
    if (!nestor_status_.ok()) return nestor_status_;   \
  } while (false)

#define NESTOR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

// `ASSIGN_OR_RETURN(auto x, F());` assigns the value of a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  NESTOR_ASSIGN_OR_RETURN_IMPL_(NESTOR_CONCAT_(nestor_statusor_, __LINE__), lhs, expr)

#endif  // NESTOR_COMMON_STATUS_MACROS_H_

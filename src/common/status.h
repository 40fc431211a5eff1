// Status: the outcome of an operation that can fail, as a canonical code plus a
// message. Errors cross module boundaries as Status / Result<T>, never as exceptions.
// Thread-compatible: a Status is a value; copies are independent.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace brainstem {

// Canonical codes, chosen as in Abseil:
//  - kInvalidArgument: the caller sent something wrong; retrying the same input fails again.
//  - kNotFound: a named thing (route, model, version, file) does not exist.
//  - kFailedPrecondition: the system is not in a state to do this (e.g. hash mismatch).
//  - kUnavailable: transient; retry later (full queue, model loading).
//  - kResourceExhausted: a size limit was exceeded (body too large).
//  - kDeadlineExceeded: the request's deadline passed before it finished.
//  - kDataLoss: bytes were corrupted (checksum mismatch).
//  - kInternal: a bug or a library failure inside brainstem.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kFailedPrecondition,
  kUnavailable,
  kResourceExhausted,
  kDeadlineExceeded,
  kDataLoss,
  kUnimplemented,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFoundError(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status ResourceExhaustedError(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline Status DeadlineExceededError(std::string m) {
  return Status(StatusCode::kDeadlineExceeded, std::move(m));
}
inline Status DataLossError(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }
inline Status UnimplementedError(std::string m) {
  return Status(StatusCode::kUnimplemented, std::move(m));
}
inline Status InternalError(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

}  // namespace brainstem

#define BRAINSTEM_CONCAT_INNER(a, b) a##b
#define BRAINSTEM_CONCAT(a, b) BRAINSTEM_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` yields a non-OK Status.
#define RETURN_IF_ERROR(expr)                              \
  do {                                                     \
    ::brainstem::Status brainstem_status_ = (expr);        \
    if (!brainstem_status_.ok()) return brainstem_status_; \
  } while (0)

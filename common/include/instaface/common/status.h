// Status and StatusOr<T>: how every library of the tree (agent, graph database, graph service,
// metrics) reports a failure, as a value instead of an exception. The SDK's public Result is
// the one exception: see sdk/include/instaface/result.h.
//
// A Status is OK, or an error with a message meant for people, a code for callers that act on
// the kind of failure (the graphserver maps it to an HTTP status), and, when a library or server
// below produced the error, that error's number (a MySQL ER_*/CR_* number, for example).
//
// Thread safety: plain values; copy them freely, share const instances across threads.
#ifndef INSTAFACE_COMMON_STATUS_H_
#define INSTAFACE_COMMON_STATUS_H_

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace instaface::common {

enum class StatusCode {
  kOk = 0,
  kUnknown,          // no kind given: the error is reported, never acted on (Status::Error)
  kInvalidArgument,  // the caller's input is wrong; retrying the same request will not help
  kNotFound,         // something named by the request does not exist
  kConflict,         // a uniqueness rule refused the write
  kFenceLost,        // a newer leader's term is in the fence: this node must not write
  kUnavailable,      // the database or a peer cannot be reached or is busy; later may work
  kOutcomeUnknown,   // a write was sent and no answer came back: it may or may not have been
                     // applied, so only a retry that cannot apply it twice is safe
  kKeyReused,        // an idempotency key came back with a different request
  kInternal,         // anything else, including privileges and schema problems
};

inline const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kUnknown:
      return "Unknown";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kConflict:
      return "Conflict";
    case StatusCode::kFenceLost:
      return "FenceLost";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kOutcomeUnknown:
      return "OutcomeUnknown";
    case StatusCode::kKeyReused:
      return "KeyReused";
    case StatusCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

// The error of a library or server below that a Status reports: which one ("MySQL") and its
// own error number. Empty for an error of our own.
struct ErrorCause {
  std::string system;
  unsigned int number = 0;
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, ErrorCause cause = {})
      : code_(code), message_(std::move(message)), cause_(std::move(cause)) {}

  static Status Ok() { return Status(); }
  static Status Error(std::string m) { return {StatusCode::kUnknown, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status FenceLost(std::string m) { return {StatusCode::kFenceLost, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status OutcomeUnknown(std::string m) {
    return {StatusCode::kOutcomeUnknown, std::move(m)};
  }
  static Status KeyReused(std::string m) { return {StatusCode::kKeyReused, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // Empty when ok().
  const std::string& message() const { return message_; }
  const ErrorCause& cause() const { return cause_; }

  // "OK"; an error of no kind is its message alone, any other error names its kind and cause:
  // "Conflict: duplicate association (MySQL 1062)".
  std::string ToString() const {
    if (ok()) return "OK";
    std::string s;
    if (code_ != StatusCode::kUnknown) {
      s += StatusCodeName(code_);
      s += ": ";
    }
    s += message_;
    if (cause_.number != 0) s += " (" + cause_.system + " " + std::to_string(cause_.number) + ")";
    return s;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  ErrorCause cause_;
};

// A value, or the error Status that explains why there is none.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT: implicit on purpose
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT: implicit on purpose
    assert(!std::get<1>(v_).ok() && "StatusOr needs a value or an error");
  }

  bool ok() const { return v_.index() == 0; }
  // OK when there is a value.
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace instaface::common

#endif  // INSTAFACE_COMMON_STATUS_H_

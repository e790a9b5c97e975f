// Status and StatusOr<T>: the error values that cross the graph database and graph service
// boundaries. A Status carries a code the HTTP layer maps to a response (InvalidArgument -> 400,
// NotFound -> 404, Conflict -> 409, FenceLost and Unavailable -> 503, Internal -> 500), a message
// meant for people, and the MySQL/MariaDB error number when the database produced the error.
//
// Thread safety: plain values; copy them freely, share const instances across threads.
#ifndef INSTAFACE_GRAPHDB_STATUS_H_
#define INSTAFACE_GRAPHDB_STATUS_H_

#include <string>
#include <utility>
#include <variant>

namespace instaface::graphdb {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller's input is wrong; retrying the same request will not help
  kNotFound,         // something named by the request does not exist
  kConflict,         // a uniqueness rule of the database refused the write
  kFenceLost,        // a newer leader's term is in the fence: this node must not write
  kUnavailable,      // the database cannot be reached or is busy; retrying later may work
  kInternal,         // anything else, including privileges and schema problems
};

const char* StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, unsigned int mysql_errno = 0)
      : code_(code), message_(std::move(message)), mysql_errno_(mysql_errno) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status FenceLost(std::string m) { return {StatusCode::kFenceLost, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The server's or client library's error number (ER_* / CR_*), 0 when not from MySQL.
  unsigned int mysql_errno() const { return mysql_errno_; }
  // True when the error means the connection is dead (server restarted, network cut): the
  // connection must be dropped and a new one opened.
  bool connection_lost() const;
  // "Conflict: duplicate association (MySQL 1062)".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  unsigned int mysql_errno_ = 0;
};

// A value or a non-OK Status.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}         // NOLINT: implicit on purpose
  StatusOr(Status status) : v_(std::move(status)) {}  // NOLINT: must not be OK
  bool ok() const { return v_.index() == 0; }
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

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_STATUS_H_

// Errors as values at the agent's library boundaries (wire, state, transport, runtime).
//
// Status is ok or carries one human-readable line; StatusOr<T> is a T or such a Status. Both
// are plain values: copy them, return them, no exceptions cross a library boundary.
//
// Thread safety: none needed; these are values.
#ifndef INSTAFACE_AGENT_STATUS_H_
#define INSTAFACE_AGENT_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace instaface::agent {

class Status {
 public:
  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message), true); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : message_; }

 private:
  Status(std::string message, bool failed) : message_(std::move(message)), failed_(failed) {}
  std::string message_;
  bool failed_ = false;
};

template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit on purpose
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit on purpose
    assert(!status_.ok() && "StatusOr needs a value or an error");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace instaface::agent

#endif  // INSTAFACE_AGENT_STATUS_H_

// Status and Result: how the agent-side libraries (control, discovery, metrics) report failures
// as values instead of exceptions.
//
// Thread safety: plain values; copy freely.
#ifndef INSTAFACE_COMMON_STATUS_H_
#define INSTAFACE_COMMON_STATUS_H_

#include <string>
#include <utility>
#include <variant>

namespace instaface::common {

class Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  // Empty when ok().
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : message_; }

 private:
  Status() = default;
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

// A value, or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT: implicit on purpose
  Result(Status error) : v_(std::move(error)) {}  // NOLINT: must not be ok()
  static Result Error(std::string message) { return Result(Status::Error(std::move(message))); }

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk = Status::Ok();
    return ok() ? kOk : std::get<1>(v_);
  }
  const std::string& error() const { return status().message(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace instaface::common

#endif  // INSTAFACE_COMMON_STATUS_H_

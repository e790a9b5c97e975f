// Small value types for errors at libinstaface's boundary: Result<T> holds a value or an error
// message; Status is a Result without a value.
//
// These are deliberately not the tree's internal instaface::common::Status and StatusOr: this
// header is installed with the SDK and is part of its API and ABI, so it may include nothing
// that is not installed too, and the internal types stay free to change (codes, causes) without
// breaking apps built against an older libinstaface.
//
// Thread safety: plain values; a const object may be read from any number of threads.
#ifndef INSTAFACE_RESULT_H_
#define INSTAFACE_RESULT_H_

#include <string>
#include <utility>
#include <variant>

namespace instaface {

// A value or an error message, at the library boundary.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  static Result Error(std::string message) { return Result(ErrorTag{std::move(message)}); }
  bool ok() const { return v_.index() == 0; }
  const std::string& error() const { return std::get<1>(v_).message; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  struct ErrorTag {
    std::string message;
  };
  explicit Result(ErrorTag e) : v_(std::move(e)) {}
  std::variant<T, ErrorTag> v_;
};

// Success, or an error message.
class Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }
  bool ok() const { return message_.empty(); }
  const std::string& error() const { return message_; }

 private:
  Status() = default;
  explicit Status(std::string message)
      : message_(message.empty() ? std::string("unknown error") : std::move(message)) {}
  std::string message_;
};

}  // namespace instaface

#endif  // INSTAFACE_RESULT_H_

#include "instaface/graphserver/idempotency_key.h"

#include <cstdint>
#include <random>

#include "instaface/graph/validation.h"

namespace instaface::graphserver {

using common::Status;
using common::StatusOr;

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

StatusOr<std::string> ParseIdempotencyKey(std::string_view value) {
  // Fields may be padded with whitespace (RFC 9110, 5.5).
  while (!value.empty() && IsSpace(value.front())) value.remove_prefix(1);
  while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
  std::string key;
  if (!value.empty() && value.front() == '"') {
    // RFC 8941, 3.3.3: a string is "..." where only \" and \\ are escapes.
    size_t i = 1;
    bool closed = false;
    for (; i < value.size(); ++i) {
      const char c = value[i];
      if (c == '"') {
        closed = true;
        ++i;
        break;
      }
      if (c == '\\') {
        if (i + 1 >= value.size() || (value[i + 1] != '"' && value[i + 1] != '\\')) {
          return Status::InvalidArgument(
              "Idempotency-Key: a backslash may only escape '\"' or '\\' in a quoted key");
        }
        key.push_back(value[++i]);
        continue;
      }
      key.push_back(c);
    }
    if (!closed) return Status::InvalidArgument("Idempotency-Key: the quoted key is not closed");
    if (i != value.size()) {
      return Status::InvalidArgument(
          "Idempotency-Key: text after the quoted key (send one key, as \"...\")");
    }
  } else {
    key.assign(value);
    if (key.find_first_of("\",\\") != std::string::npos) {
      return Status::InvalidArgument(
          "Idempotency-Key: a bare key may not hold '\"', ',' or '\\'; quote it as \"...\"");
    }
  }
  if (Status s = graph::ValidateIdempotencyKey(key); !s.ok()) return s;
  return key;
}

std::string FormatIdempotencyKey(std::string_view key) {
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string MakeIdempotencyKey() {
  // random_device reads the kernel's generator: unpredictable, and independent across nodes.
  thread_local std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "instaface-";
  for (int word = 0; word < 4; ++word) {
    uint32_t bits = device();
    for (int nibble = 0; nibble < 8; ++nibble) {
      key.push_back(kHex[bits & 0xf]);
      bits >>= 4;
    }
  }
  return key;
}

}  // namespace instaface::graphserver

#include "instaface/discovery/redis_url.h"

#include <cctype>

namespace instaface::discovery {

using common::Status;
using common::StatusOr;

namespace {

constexpr size_t kMaxUrlBytes = 4096;
constexpr std::string_view kScheme = "redis://";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

StatusOr<std::string> PercentDecode(std::string_view in, const char* what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return Status::Error(std::string("truncated %-escape in ") + what);
    }
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return Status::Error(std::string("bad %-escape in ") + what);
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// Digits only, at most `max_digits` of them, value <= max.
bool ParseNumber(std::string_view s, size_t max_digits, long max, long* out) {
  if (s.empty() || s.size() > max_digits) return false;
  long value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

bool IsIpv6Char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

}  // namespace

std::string RedisUrl::Redacted() const {
  std::string out(kScheme);
  if (!username.empty() || !password.empty()) {
    out += username;
    if (!password.empty()) out += ":***";
    out += "@";
  }
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ":" + std::to_string(port);
  if (db != 0) out += "/" + std::to_string(db);
  return out;
}

StatusOr<RedisUrl> ParseRedisUrl(std::string_view url) {
  if (url.size() > kMaxUrlBytes) return Status::Error("Redis URL longer than 4096 bytes");
  if (url.size() < kScheme.size() || url.compare(0, kScheme.size(), kScheme) != 0) {
    if (url.compare(0, 9, "rediss://") == 0)
      return Status::Error("rediss:// (TLS) is not supported");
    return Status::Error("Redis URL must start with redis://");
  }
  std::string_view rest = url.substr(kScheme.size());
  for (char c : rest) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      return Status::Error("Redis URL contains a space or control character");
    }
  }
  RedisUrl out;

  // Userinfo ends at the last '@', so an unescaped '@' or '/' in a password still parses.
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return Status::Error("Redis URL userinfo needs a ':' before the password (redis://:pw@host)");
    }
    auto user = PercentDecode(userinfo.substr(0, colon), "the user name");
    if (!user.ok()) return user.status();
    auto password = PercentDecode(userinfo.substr(colon + 1), "the password");
    if (!password.ok()) return password.status();
    if (password->empty()) return Status::Error("Redis URL has an empty password");
    out.username = std::move(*user);
    out.password = std::move(*password);
  }

  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Status::Error("Redis URL query strings and fragments are not supported");
  }
  std::string_view hostport = rest;
  size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      long value = 0;
      if (!ParseNumber(db, 5, 99999, &value)) {
        return Status::Error("Redis URL database must be a number (got '" + std::string(db) + "')");
      }
      out.db = static_cast<int>(value);
    }
  }

  std::string_view port;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return Status::Error("Redis URL has an unclosed '['");
    out.host = std::string(hostport.substr(1, close - 1));
    for (char c : out.host) {
      if (!IsIpv6Char(c)) return Status::Error("Redis URL has a malformed IPv6 address");
    }
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::Error("Redis URL has junk after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = hostport.find(':');
    out.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = hostport.substr(colon + 1);
      has_port = true;
    }
    for (char c : out.host) {
      if (!IsHostNameChar(c)) {
        return Status::Error("Redis URL host has an invalid character '" + std::string(1, c) + "'");
      }
    }
  }
  if (out.host.empty()) return Status::Error("Redis URL has no host");
  if (has_port) {
    long value = 0;
    if (!ParseNumber(port, 5, 65535, &value) || value == 0) {
      return Status::Error("Redis URL port must be 1..65535 (got '" + std::string(port) + "')");
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

}  // namespace instaface::discovery

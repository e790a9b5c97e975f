#include "instaface/graphdb/connection_string.h"

#include <cctype>
#include <cstdlib>
#include <set>

namespace instaface::graphdb {

using common::Status;
using common::StatusOr;

namespace {

constexpr const char* kValidKeys =
    "server (or host), port, database, user (or uid, user id, username), password (or pwd), "
    "connect timeout";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Lower-cases and collapses inner runs of whitespace to one space ("User  ID" -> "user id").
std::string NormalizeKey(std::string_view key) {
  std::string out;
  bool pending_space = false;
  for (char c : key) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The canonical key for an accepted spelling, or empty when unknown.
std::string CanonicalKey(const std::string& key) {
  if (key == "server" || key == "host") return "server";
  if (key == "port") return "port";
  if (key == "database") return "database";
  if (key == "user" || key == "uid" || key == "user id" || key == "username") return "user";
  if (key == "password" || key == "pwd") return "password";
  if (key == "connect timeout") return "connect timeout";
  return "";
}

Status Invalid(const std::string& what) {
  return Status::InvalidArgument("connection string: " + what + "; valid keys are " + kValidKeys);
}

// Parses a decimal number in [min, max] without sign or spaces.
bool ParseNumber(std::string_view s, long min, long max, long* out) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

const char* ValidConnectionStringKeys() { return kValidKeys; }

StatusOr<ConnectionConfig> ParseConnectionString(std::string_view text) {
  ConnectionConfig config;
  std::set<std::string> seen;
  size_t pos = 0;
  while (pos < text.size()) {
    // Key: up to '=' or ';'.
    size_t key_end = pos;
    while (key_end < text.size() && text[key_end] != '=' && text[key_end] != ';') ++key_end;
    std::string_view raw_key = Trim(text.substr(pos, key_end - pos));
    if (key_end == text.size() || text[key_end] == ';') {
      if (!raw_key.empty()) {
        return Invalid("'" + std::string(raw_key) + "' has no '=value'");
      }
      pos = key_end + 1;  // an empty segment
      continue;
    }
    if (raw_key.empty()) return Invalid("a value has no key before '='");
    const std::string key = NormalizeKey(raw_key);
    const std::string canonical = CanonicalKey(key);
    if (canonical.empty()) return Invalid("unknown key '" + std::string(raw_key) + "'");
    if (!seen.insert(canonical).second) return Invalid("key '" + canonical + "' appears twice");

    // Value: quoted, or up to the next ';'.
    size_t v = key_end + 1;
    while (v < text.size() && IsSpace(text[v])) ++v;
    std::string value;
    if (v < text.size() && (text[v] == '"' || text[v] == '\'')) {
      const char quote = text[v++];
      bool closed = false;
      while (v < text.size()) {
        if (text[v] == quote) {
          if (v + 1 < text.size() && text[v + 1] == quote) {
            value += quote;
            v += 2;
            continue;
          }
          ++v;
          closed = true;
          break;
        }
        value += text[v++];
      }
      if (!closed) return Invalid("the value of '" + canonical + "' has no closing quote");
      while (v < text.size() && IsSpace(text[v])) ++v;
      if (v < text.size() && text[v] != ';') {
        return Invalid("text after the closing quote of '" + canonical + "'");
      }
      pos = v + 1;
    } else {
      size_t end = v;
      while (end < text.size() && text[end] != ';') ++end;
      value = std::string(Trim(text.substr(v, end - v)));
      pos = end + 1;
    }

    if (canonical == "server") {
      config.server = value;
    } else if (canonical == "port") {
      long port = 0;
      if (!ParseNumber(value, 1, 65535, &port)) {
        return Invalid("port '" + value + "' is not a number from 1 to 65535");
      }
      config.port = static_cast<uint16_t>(port);
    } else if (canonical == "database") {
      config.database = value;
    } else if (canonical == "user") {
      config.user = value;
    } else if (canonical == "password") {
      config.password = value;
    } else if (canonical == "connect timeout") {
      long seconds = 0;
      if (!ParseNumber(value, 1, 3600, &seconds)) {
        return Invalid("connect timeout '" + value + "' is not a number of seconds from 1 to 3600");
      }
      config.connect_timeout = std::chrono::seconds(seconds);
    }
  }

  std::string missing;
  auto require = [&](const std::string& field, const char* name) {
    if (field.empty()) missing += missing.empty() ? name : std::string(", ") + name;
  };
  require(config.server, "server");
  require(config.database, "database");
  require(config.user, "user");
  if (!missing.empty()) return Invalid("missing or empty " + missing);
  return config;
}

std::optional<std::string> LookupConnectionString(std::string_view name,
                                                  const GetEnvFunction& getenv_fn) {
  auto get = [&](const std::string& var) -> const char* {
    return getenv_fn ? getenv_fn(var.c_str()) : std::getenv(var.c_str());
  };
  // The double underscore spelling is what shells and Kubernetes can set; the colon spelling is
  // the original's .NET configuration key.
  for (const char* separator : {"__", ":"}) {
    const std::string var = std::string("ConnectionStrings") + separator + std::string(name);
    if (const char* value = get(var); value != nullptr) return std::string(value);
  }
  return std::nullopt;
}

StatusOr<ConnectionConfig> ConnectionConfigFromEnvironment(std::string_view name,
                                                           const GetEnvFunction& getenv_fn) {
  std::optional<std::string> text = LookupConnectionString(name, getenv_fn);
  if (!text) {
    return Status::NotFound("neither ConnectionStrings__" + std::string(name) +
                            " nor ConnectionStrings:" + std::string(name) + " is set");
  }
  StatusOr<ConnectionConfig> config = ParseConnectionString(*text);
  if (!config.ok()) {
    return Status::InvalidArgument("ConnectionStrings__" + std::string(name) + ": " +
                                   config.status().message());
  }
  return config;
}

}  // namespace instaface::graphdb

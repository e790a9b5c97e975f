// The database configuration, parsed from the seed's connection string:
//
//   server=127.0.0.1;port=3306;database=instaface1;user=bob;password=secret
//
// Keys are case-insensitive; whitespace around keys and values is ignored; empty segments
// (";;" or a trailing ";") are ignored. Aliases: host = server, uid / user id / username = user,
// pwd = password. Required: server, database, user. Optional: port (default 3306), password
// (default empty), connect timeout (seconds, default 5).
// A value that contains ';' or leading/trailing spaces must be quoted with '"' or '\'';
// inside quotes the quote character is written twice ("a""b" is a"b).
// An unknown key, a repeated key, a missing required key, a bad port or an unterminated quote is
// an InvalidArgument whose message names the valid keys.
//
// Thread safety: pure functions, safe from any thread.
#ifndef INSTAFACE_GRAPHDB_CONNECTION_STRING_H_
#define INSTAFACE_GRAPHDB_CONNECTION_STRING_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "instaface/common/status.h"

namespace instaface::graphdb {

struct ConnectionConfig {
  std::string server;
  uint16_t port = 3306;
  std::string database;
  std::string user;
  std::string password;
  std::chrono::seconds connect_timeout{5};
  // Per-statement network timeouts; a dead server surfaces as CR_SERVER_LOST after this long.
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds write_timeout{30};
};

// The keys ParseConnectionString accepts, for error messages: "server, port, database, ...".
const char* ValidConnectionStringKeys();

common::StatusOr<ConnectionConfig> ParseConnectionString(std::string_view text);

// Reads ConnectionStrings__<name> or, if unset, the literal ConnectionStrings:<name> from the
// environment (`getenv` replaceable for tests). nullopt when neither is set.
// name is "DefaultConnection" for the primary and "ReadReplica" for the optional replica.
using GetEnvFunction = std::function<const char*(const char*)>;
std::optional<std::string> LookupConnectionString(std::string_view name,
                                                  const GetEnvFunction& getenv_fn = nullptr);

// LookupConnectionString + ParseConnectionString. NotFound when the variable is not set.
common::StatusOr<ConnectionConfig> ConnectionConfigFromEnvironment(
    std::string_view name, const GetEnvFunction& getenv_fn = nullptr);

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_CONNECTION_STRING_H_

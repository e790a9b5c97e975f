// RedisUrl: where the Redis used for discovery lives and how to log in to it, parsed from
// redis://[[user]:password@]host[:port][/db]. A pure function of its input (no I/O), so it can be
// fuzzed; every malformed URL gives an error naming the problem, never a crash.
//
// Thread safety: plain values and a pure function.
#ifndef INSTAFACE_DISCOVERY_REDIS_URL_H_
#define INSTAFACE_DISCOVERY_REDIS_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "instaface/common/status.h"

namespace instaface::discovery {

struct RedisUrl {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 6379;
  std::string username;  // empty: AUTH with the password only (Redis < 6 style)
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT after connecting when non-zero

  // The URL again, with the password replaced by "***" so that it can be logged.
  std::string Redacted() const;
};

// Accepts redis://host, redis://host:port, redis://:password@host:port/db and
// redis://user:password@host:port/db. Userinfo may be percent-encoded. Rejects other schemes,
// empty hosts, ports outside 1..65535, a db that is not a small non-negative number, query
// strings, and anything after the db.
common::StatusOr<RedisUrl> ParseRedisUrl(std::string_view url);

}  // namespace instaface::discovery

#endif  // INSTAFACE_DISCOVERY_REDIS_URL_H_

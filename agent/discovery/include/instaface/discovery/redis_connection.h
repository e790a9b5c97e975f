// RedisConnection: one blocking hiredis connection owned by one thread, with connect and
// command timeouts, turning hiredis failures into Status values.
//
// hiredis leaves a context unusable after any I/O or protocol error (c->err), so the first
// such error marks the connection broken() and every later call fails fast; the owner makes a
// new connection. An error *reply* (e.g. WRONGTYPE) is returned as an error but leaves the
// connection usable.
//
// Thread safety: none. Use a connection from one thread at a time.
#ifndef INSTAFACE_DISCOVERY_REDIS_CONNECTION_H_
#define INSTAFACE_DISCOVERY_REDIS_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/discovery/redis_url.h"

struct redisContext;

namespace instaface::discovery {

// A Redis reply copied out of hiredis into plain values.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;                   // kString, kStatus
  long long integer = 0;             // kInteger
  std::vector<RedisReply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
};

class RedisConnection {
 public:
  // Connects (TCP), then AUTHs and SELECTs as the URL says.
  static common::StatusOr<RedisConnection> Connect(const RedisUrl& url,
                                                   std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds command_timeout);

  RedisConnection(RedisConnection&&) noexcept;
  RedisConnection& operator=(RedisConnection&&) noexcept;
  ~RedisConnection();

  // One command, given as its arguments (binary-safe, no quoting rules).
  common::StatusOr<RedisReply> Command(const std::vector<std::string>& argv);
  // Several commands in one round trip. Fails as a whole if any reply is an error.
  common::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  bool broken() const { return broken_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  explicit RedisConnection(redisContext* c, std::string where);
  common::Status IoError(const char* what);

  std::unique_ptr<redisContext, ContextDeleter> context_;
  std::string where_;  // host:port, for messages
  bool broken_ = false;
};

}  // namespace instaface::discovery

#endif  // INSTAFACE_DISCOVERY_REDIS_CONNECTION_H_

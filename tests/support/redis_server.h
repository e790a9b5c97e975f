// RedisServer: a private redis-server for one test, on 127.0.0.1 at a free port, with its files
// in its own temp dir, no persistence, stopped (SIGKILL) on destruction even when the test
// fails. Stop() and Start() again reuse the same port, so a client can test reconnecting; Kill()
// simulates a crash.
//
// Thread safety: none; the test's thread owns it.
#ifndef INSTAFACE_TESTS_SUPPORT_REDIS_SERVER_H_
#define INSTAFACE_TESTS_SUPPORT_REDIS_SERVER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {

struct RedisServerOptions {
  std::string password;  // non-empty: --requirepass
  std::string binary = "redis-server";
  // The address clients use; not loopback: the server listens there too (inside a network
  // namespace of a test's own).
  std::string host = "127.0.0.1";
  std::chrono::milliseconds ready_timeout{10000};
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server and waits until it answers PING. The first start picks a free port;
  // later starts reuse it. Returns false with *error set on failure.
  bool Start(std::string* error = nullptr);
  // SIGTERM and wait (a clean shutdown).
  void Stop();
  // SIGKILL (a crash).
  void Kill();
  bool running();

  uint16_t port() const { return port_; }
  // redis://[:password@]host:port
  std::string url() const;
  const std::string& dir() const { return dir_.path(); }
  std::string log() const;

 private:
  bool AnswersPing() const;

  RedisServerOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  Subprocess process_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_REDIS_SERVER_H_

#include "support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <thread>

#include "support/free_port.h"

namespace instaface::testing {

RedisServer::RedisServer(RedisServerOptions options)
    : options_(std::move(options)), dir_("instaface-redis") {}

RedisServer::~RedisServer() { Kill(); }

bool RedisServer::running() { return process_.Running(); }

std::string RedisServer::url() const {
  std::string auth = options_.password.empty() ? "" : ":" + options_.password + "@";
  return "redis://" + auth + options_.host + ":" + std::to_string(port_);
}

std::string RedisServer::log() const { return ReadFileOrEmpty(dir_.File("redis.log")); }

bool RedisServer::Start(std::string* error) {
  auto fail = [&](std::string message) {
    if (error) *error = std::move(message);
    return false;
  };
  if (process_.Running()) return true;
  bool reuse_port = port_ != 0;
  // A port found free can be taken before redis binds it; a fresh one is tried a few times.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (!reuse_port) port_ = FreePort();
    if (port_ == 0) return fail("no free port");
    SubprocessOptions options;
    options.argv = {options_.binary,
                    "--bind",
                    options_.host == "127.0.0.1" ? options_.host : "127.0.0.1 " + options_.host,
                    "--port",
                    std::to_string(port_),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    dir_.path(),
                    "--daemonize",
                    "no",
                    "--logfile",
                    dir_.File("redis.log")};
    if (options_.host != "127.0.0.1") {
      // Redis refuses other addresses without a password; this one is a test's own namespace.
      options.argv.push_back("--protected-mode");
      options.argv.push_back("no");
    }
    if (!options_.password.empty()) {
      options.argv.push_back("--requirepass");
      options.argv.push_back(options_.password);
    }
    options.stderr_path = dir_.File("redis.stderr");
    process_ = Subprocess(options);
    if (!process_.ok()) return fail(process_.error());
    auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process_.Running()) break;
      if (AnswersPing()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    process_.Kill();
    // Restarting on the old port: the old socket may linger briefly; keep trying it.
    if (reuse_port) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fail("redis-server did not answer PING on port " + std::to_string(port_) + ": " + log());
}

void RedisServer::Stop() {
  if (!process_.Running()) return;
  process_.Terminate();
  if (!process_.Wait(std::chrono::seconds(5))) process_.Kill();
}

void RedisServer::Kill() { process_.Kill(); }

bool RedisServer::AnswersPing() const {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const char ping[] = "PING\r\n";
    if (send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof ping - 1)) {
      char reply[64] = {};
      ssize_t n = recv(fd, reply, sizeof reply - 1, 0);
      // +PONG, or -NOAUTH when a password is set: either way the server is serving.
      ok = n > 0 && (reply[0] == '+' || std::string(reply).find("NOAUTH") != std::string::npos);
    }
  }
  close(fd);
  return ok;
}

}  // namespace instaface::testing

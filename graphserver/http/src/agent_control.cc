#include "instaface/graphserver/agent_control.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace instaface::graphserver {
namespace {

constexpr size_t kMaxReplyBytes = 1 << 20;

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

AgentReply Fail(std::string message) { return AgentReply{false, std::move(message), {}}; }

std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

}  // namespace

AgentReply CallAgent(const std::string& socket_path, const nlohmann::json& request,
                     std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return Fail("invalid control socket path '" + socket_path + "'");
  }
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Fail(Errno("socket"));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Fail(Errno(("connect " + socket_path).c_str()));
  }

  std::string line = request.dump() + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(Errno("send"));
    sent += static_cast<size_t>(n);
  }

  std::string reply;
  char buf[4096];
  for (;;) {
    size_t newline = reply.find('\n');
    if (newline != std::string::npos) {
      reply.resize(newline);
      break;
    }
    if (reply.size() > kMaxReplyBytes) return Fail("agent reply longer than 1 MiB");
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return Fail("agent did not answer in time");
    if (n < 0) return Fail(Errno("recv"));
    if (n == 0) return Fail("agent closed the control connection without a reply");
    reply.append(buf, static_cast<size_t>(n));
  }
  nlohmann::json parsed = nlohmann::json::parse(reply, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return Fail("agent reply is not a JSON object");
  return AgentReply{true, "", std::move(parsed)};
}

}  // namespace instaface::graphserver

#include "instaface/control/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace instaface::control {

using common::Status;
using common::StatusOr;

namespace {

using Clock = std::chrono::steady_clock;

// Replies are small; a watch event too. Anything larger means the peer is not our server.
constexpr size_t kMaxReplyBytes = 1 << 20;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

struct ControlClient::Impl {
  int fd = -1;
  std::string path;
  std::string buffer;  // bytes read past the last line
  ~Impl() {
    if (fd >= 0) close(fd);
  }
};

ControlClient::ControlClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlClient::ControlClient(ControlClient&&) noexcept = default;
ControlClient& ControlClient::operator=(ControlClient&&) noexcept = default;
ControlClient::~ControlClient() = default;

StatusOr<ControlClient> ControlClient::Connect(const std::string& path,
                                               std::chrono::milliseconds timeout) {
  (void)timeout;  // connect() on a Unix socket does not wait for the server to accept
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::Error("socket path too long: " + path);
  }
  impl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->fd < 0) return Status::Error(std::string("socket: ") + strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(impl->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    std::string hint = (err == ENOENT || err == ECONNREFUSED) ? " (is the agent running?)" : "";
    return Status::Error("cannot connect to " + path + ": " + strerror(err) + hint);
  }
  return ControlClient(std::move(impl));
}

common::Status ControlClient::SendLine(const std::string& line, std::chrono::milliseconds timeout) {
  if (!impl_ || impl_->fd < 0) return Status::Error("not connected");
  std::string data = line + "\n";
  auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < data.size()) {
    pollfd p{impl_->fd, POLLOUT, 0};
    int ready = poll(&p, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Status::Error("timed out writing to " + impl_->path);
    if (ready < 0) return Status::Error(std::string("poll: ") + strerror(errno));
    ssize_t n =
        send(impl_->fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::Error("write to " + impl_->path + ": " + strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

StatusOr<nlohmann::json> ControlClient::ReadJson(std::chrono::milliseconds timeout) {
  if (!impl_ || impl_->fd < 0) return Status::Error("not connected");
  auto deadline = Clock::now() + timeout;
  while (true) {
    size_t newline = impl_->buffer.find('\n');
    if (newline != std::string::npos) {
      std::string line = impl_->buffer.substr(0, newline);
      impl_->buffer.erase(0, newline + 1);
      nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
      if (json.is_discarded()) return Status::Error("agent sent a line that is not JSON");
      return json;
    }
    if (impl_->buffer.size() > kMaxReplyBytes) return Status::Error("agent reply too long");
    pollfd p{impl_->fd, POLLIN, 0};
    int ready = poll(&p, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Status::Error("timed out waiting for " + impl_->path);
    if (ready < 0) return Status::Error(std::string("poll: ") + strerror(errno));
    char chunk[4096];
    ssize_t n = recv(impl_->fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return Status::Error("agent closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::Error("read from " + impl_->path + ": " + strerror(errno));
    }
    impl_->buffer.append(chunk, static_cast<size_t>(n));
  }
}

StatusOr<nlohmann::json> ControlClient::Call(const Request& request,
                                             std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto sent = SendLine(SerializeRequest(request), timeout);
  if (!sent.ok()) return sent;
  return ReadJson(std::chrono::milliseconds(RemainingMs(deadline)));
}

namespace {

StatusOr<AgentStatus> StatusFromReply(const StatusOr<nlohmann::json>& reply) {
  if (!reply.ok()) return reply.status();
  if (reply->value("ok", false) != true) {
    return Status::Error("the agent refused status: " +
                         reply->value("error", std::string("no reason given")));
  }
  return ParseAgentStatus(*reply);
}

}  // namespace

StatusOr<AgentStatus> ControlClient::QueryStatus(std::chrono::milliseconds timeout) {
  Request request;
  request.command = Command::kStatus;
  return StatusFromReply(Call(request, timeout));
}

StatusOr<nlohmann::json> CallOnce(const std::string& path, const Request& request,
                                  std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto client = ControlClient::Connect(path, timeout);
  if (!client.ok()) return client.status();
  return client->Call(request, std::chrono::milliseconds(RemainingMs(deadline)));
}

StatusOr<AgentStatus> QueryStatusOnce(const std::string& path, std::chrono::milliseconds timeout) {
  Request request;
  request.command = Command::kStatus;
  return StatusFromReply(CallOnce(path, request, timeout));
}

}  // namespace instaface::control

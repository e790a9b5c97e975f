#include "instaface/control/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <thread>

#include "instaface/control/control_request.h"

namespace instaface::control {

using common::Status;

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

std::string ToLine(const nlohmann::json& json) {
  // Replace, not throw, on invalid UTF-8 that a handler might put in a string.
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

nlohmann::json ErrorReply(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

nlohmann::json WithOk(nlohmann::json reply) {
  if (!reply.is_object()) reply = {{"result", std::move(reply)}};
  if (!reply.contains("ok")) reply["ok"] = true;
  return reply;
}

// Is a server accepting on `path`? Distinguishes a live socket from a stale file.
enum class Probe { kNothing, kStale, kListening, kNotSocket, kError };

Probe ProbeSocket(const std::string& path, std::string* detail) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Probe::kNothing;
    *detail = strerror(errno);
    return Probe::kError;
  }
  if (!S_ISSOCK(st.st_mode)) return Probe::kNotSocket;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *detail = strerror(errno);
    return Probe::kError;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  if (rc == 0) return Probe::kListening;
  if (err == ECONNREFUSED) return Probe::kStale;
  *detail = strerror(err);
  return Probe::kError;
}

}  // namespace

struct ControlServer::Impl {
  // One client connection. Lives on the io thread only; shared_ptr keeps it alive while an
  // async operation is pending.
  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl& server, Local::socket socket)
        : server(server), socket(std::move(socket)), input(kMaxRequestBytes + 2) {}

    void ReadNext() {
      auto self = shared_from_this();
      asio::async_read_until(
          socket, input, '\n',
          [self](const boost::system::error_code& ec, size_t n) { self->OnRead(ec, n); });
    }

    void OnRead(const boost::system::error_code& ec, size_t n) {
      if (closed) return;
      if (ec == asio::error::not_found) {
        // The bounded buffer filled without a newline: refuse, then hang up.
        Send(ToLine(
            ErrorReply("request longer than " + std::to_string(kMaxRequestBytes) + " bytes")));
        close_after_write = true;
        return;
      }
      if (ec) {
        Close();
        return;
      }
      std::string line(asio::buffers_begin(input.data()), asio::buffers_begin(input.data()) + n);
      input.consume(n);
      line.pop_back();  // '\n'
      if (!watching) server.Handle(*this, line);
      if (!closed && !close_after_write) ReadNext();
    }

    // Queues a line; false if the queue is over its bound (the caller drops a slow watcher).
    bool Send(std::string line) {
      if (closed) return false;
      if (outbox.size() >= server.options.max_watch_queue) return false;
      outbox.push_back(std::move(line));
      if (outbox.size() == 1) WriteNext();
      return true;
    }

    void WriteNext() {
      auto self = shared_from_this();
      asio::async_write(socket, asio::buffer(outbox.front()),
                        [self](const boost::system::error_code& ec, size_t) {
                          if (self->closed) return;
                          if (ec) {
                            self->Close();
                            return;
                          }
                          self->outbox.pop_front();
                          if (!self->outbox.empty()) {
                            self->WriteNext();
                          } else if (self->close_after_write) {
                            self->Close();
                          }
                        });
    }

    void Close() {
      if (closed) return;
      closed = true;
      boost::system::error_code ignored;
      socket.shutdown(Local::socket::shutdown_both, ignored);
      socket.close(ignored);
      server.Forget(this);
    }

    Impl& server;
    Local::socket socket;
    asio::streambuf input;
    std::deque<std::string> outbox;
    bool watching = false;
    bool close_after_write = false;
    bool closed = false;
  };

  Impl(ControlServerOptions o, Handler& h) : options(std::move(o)), handler(h), acceptor(io) {}

  void Accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, Local::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) {
        if (sessions.size() >= options.max_clients) {
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          auto session = std::make_shared<Session>(*this, std::move(socket));
          sessions.insert(session);
          session->ReadNext();
        }
      }
      Accept();
    });
  }

  // On the io thread.
  void Handle(Session& session, const std::string& line) {
    auto request = ParseRequest(line);
    if (!request.ok()) {
      session.Send(ToLine(ErrorReply(request.status().message())));
      return;
    }
    nlohmann::json reply;
    try {
      switch (request->command) {
        case Command::kStatus:
        case Command::kWatch:
          reply = WithOk(ToJson(handler.Status()));
          break;
        case Command::kStepDown:
          reply = WithOk(handler.StepDown());
          break;
        case Command::kTransfer:
          reply = WithOk(handler.Transfer(request->transfer_to));
          break;
        case Command::kUnplug:
          reply = WithOk(handler.Unplug(request->unplug_on, request->unplug_peer));
          break;
      }
    } catch (const std::exception& e) {
      reply = ErrorReply(std::string("internal error: ") + e.what());
    }
    session.Send(ToLine(reply));
    if (request->command == Command::kWatch && reply.value("ok", false)) {
      session.watching = true;
      watchers.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void Forget(Session* session) {
    if (session->watching) watchers.fetch_sub(1, std::memory_order_relaxed);
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      if (it->get() == session) {
        sessions.erase(it);
        break;
      }
    }
  }

  // On the io thread.
  void Deliver(const std::string& line) {
    std::vector<std::shared_ptr<Session>> slow;
    for (const auto& session : sessions) {
      if (session->watching && !session->Send(line)) slow.push_back(session);
    }
    // A watcher that cannot keep up is dropped rather than let its backlog grow without bound.
    for (const auto& session : slow) session->Close();
  }

  ControlServerOptions options;
  Handler& handler;
  asio::io_context io;
  Local::acceptor acceptor;
  std::set<std::shared_ptr<Session>> sessions;  // io thread only
  std::atomic<size_t> watchers{0};
  std::atomic<bool> running{false};  // Broadcast() may race Start()/Stop()
  std::thread thread;
  bool bound = false;
};

ControlServer::ControlServer(ControlServerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

ControlServer::~ControlServer() { Stop(); }

common::Status ControlServer::Start() {
  Impl& s = *impl_;
  const std::string& path = s.options.path;
  if (s.thread.joinable()) return Status::Error("control server already started");
  if (path.empty()) return Status::Error("control socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::Error("control socket path is longer than " +
                         std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes: " + path);
  }
  if (s.options.mode != 0600 && s.options.mode != 0660) {
    return Status::Error("control socket mode must be 0600 or 0660");
  }
  if (s.options.max_watch_queue == 0) s.options.max_watch_queue = 1;
  std::string detail;
  switch (ProbeSocket(path, &detail)) {
    case Probe::kNothing:
      break;
    case Probe::kStale:
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return Status::Error("cannot remove stale control socket " + path + ": " + strerror(errno));
      }
      break;
    case Probe::kListening:
      return Status::Error("another process is already listening on " + path);
    case Probe::kNotSocket:
      return Status::Error(path + " exists and is not a socket; not removing it");
    case Probe::kError:
      return Status::Error("cannot check control socket " + path + ": " + detail);
  }

  boost::system::error_code ec;
  s.acceptor.open(Local(), ec);
  if (!ec) s.acceptor.bind(Local::endpoint(path), ec);
  if (ec) {
    s.acceptor.close();
    return Status::Error("cannot bind control socket " + path + ": " + ec.message());
  }
  s.bound = true;
  // Before listen(), so nobody can connect while the umask's mode is in effect.
  if (chmod(path.c_str(), s.options.mode) != 0) {
    std::string why = strerror(errno);
    Stop();
    return Status::Error("cannot chmod control socket " + path + ": " + why);
  }
  s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    Stop();
    return Status::Error("cannot listen on control socket " + path + ": " + ec.message());
  }
  s.Accept();
  s.io.restart();
  s.running.store(true);
  s.thread = std::thread([&s] { s.io.run(); });
  return Status::Ok();
}

void ControlServer::Stop() {
  Impl& s = *impl_;
  s.running.store(false);
  if (s.thread.joinable()) {
    asio::post(s.io, [&s] {
      boost::system::error_code ignored;
      s.acceptor.close(ignored);
      auto sessions = s.sessions;
      for (const auto& session : sessions) session->Close();
      s.io.stop();
    });
    s.thread.join();
  } else if (s.acceptor.is_open()) {
    boost::system::error_code ignored;
    s.acceptor.close(ignored);
  }
  if (s.bound) {
    unlink(s.options.path.c_str());
    s.bound = false;
  }
}

void ControlServer::Broadcast(const nlohmann::json& event) {
  Impl& s = *impl_;
  if (!s.running.load()) return;
  asio::post(s.io, [&s, line = ToLine(event)] { s.Deliver(line); });
}

size_t ControlServer::watcher_count() const {
  return impl_->watchers.load(std::memory_order_relaxed);
}

}  // namespace instaface::control

// ControlServer: the agent's Unix socket (Boost.Asio local stream) through which instafacectl
// and the local app ask for the state, watch it change, and send admin commands. One JSON
// object per line each way; every request gets one reply line {"ok":true,...} or
// {"ok":false,"error":"..."}. See control_request.h for the requests.
//
// The server runs its own io_context thread. The Handler is the seam to the election: it is
// called on that thread, one call at a time, and should answer within a bounded time (the agent
// queues the command to its driver thread and waits on a future with a timeout). A Handler reply
// without an "ok" key gets "ok":true added.
//
// `watch` answers with the current Status() (with "ok":true), then streams every Broadcast()
// event as a line until the client closes. Broadcast never blocks: each watcher has a bounded
// queue, and a watcher that falls behind by more than max_watch_queue lines is dropped.
//
// Start() refuses a path where another server is listening, removes a stale socket file left by
// a dead one, and refuses to remove anything that is not a socket. The socket is created with
// `mode` (0600 or 0660) before it accepts. Stop() unlinks it.
//
// Thread safety: Broadcast() and watcher_count() may be called from any thread, including from
// inside Handler calls. Start() and Stop() from one owning thread.
#ifndef INSTAFACE_CONTROL_CONTROL_SERVER_H_
#define INSTAFACE_CONTROL_CONTROL_SERVER_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"
#include "instaface/control/agent_status.h"

namespace instaface::control {

class Handler {
 public:
  virtual ~Handler() = default;
  // What the agent publishes, with its peers (agent_status.h).
  virtual AgentStatus Status() = 0;
  virtual nlohmann::json StepDown() = 0;
  virtual nlohmann::json Transfer(std::optional<std::string> to) = 0;
  // `peer` empty: the whole node; otherwise the link to that peer only.
  virtual nlohmann::json Unplug(bool on, const std::optional<std::string>& peer) = 0;
};

struct ControlServerOptions {
  std::string path;
  mode_t mode = 0600;  // 0600 or 0660
  size_t max_watch_queue = 256;
  size_t max_clients = 64;  // further connections are closed at once
};

class ControlServer {
 public:
  // `handler` must outlive the server.
  ControlServer(ControlServerOptions options, Handler& handler);
  ~ControlServer();  // Stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds, sets the mode, listens and starts the thread.
  common::Status Start();
  // Closes every connection, joins the thread and unlinks the socket. Idempotent.
  void Stop();

  // Sends `event` as one line to every watcher.
  void Broadcast(const nlohmann::json& event);
  size_t watcher_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::control

#endif  // INSTAFACE_CONTROL_CONTROL_SERVER_H_

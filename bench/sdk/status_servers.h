// The slower ways an app can ask "who leads?", served in-process for the SDK benchmark: a
// localhost HTTP endpoint (Boost.Beast, keep-alive; how apps consume the Kubernetes
// leader-elector sidecar) and, when no real agent is available, a Unix-socket NDJSON server
// shaped like the agent's control socket. Both answer from a View, as a sidecar would.
//
// Thread safety: each server runs its own I/O thread; construct and destroy from one thread.
#ifndef INSTAFACE_BENCH_SDK_STATUS_SERVERS_H_
#define INSTAFACE_BENCH_SDK_STATUS_SERVERS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "instaface/view.h"

namespace instaface::bench {

// The status document every method returns: role, term, leader, lease, staleness.
std::string StatusJson(const Snapshot& snapshot);

class HttpStatusServer {
 public:
  // Serves GET of any path on 127.0.0.1:<ephemeral port> with StatusJson(view.snapshot()).
  explicit HttpStatusServer(const View& view);
  ~HttpStatusServer();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class NdjsonStatusServer {
 public:
  // Answers each request line on the Unix socket at `path` with one StatusJson line.
  NdjsonStatusServer(const View& view, const std::string& path);
  ~NdjsonStatusServer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::bench

#endif  // INSTAFACE_BENCH_SDK_STATUS_SERVERS_H_

// A one-shot client of the agent's control socket (newline-delimited JSON over a Unix stream
// socket): connect, send one request line, read one reply line. The graphserver uses it for
// /api/graph/unplugged (the agent's `unplug`) and /api/graph/unreachable (`status`).
//
// Every step is bounded by the timeout (SO_RCVTIMEO/SO_SNDTIMEO), a reply over 1 MiB or one that
// is not JSON is an error value, and the socket is closed on every path.
//
// Thread safety: a free function; safe from any thread.
#ifndef INSTAFACE_GRAPHSERVER_AGENT_CONTROL_H_
#define INSTAFACE_GRAPHSERVER_AGENT_CONTROL_H_

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace instaface::graphserver {

struct AgentReply {
  bool ok = false;
  std::string error;  // when !ok
  nlohmann::json reply;
};

AgentReply CallAgent(const std::string& socket_path, const nlohmann::json& request,
                     std::chrono::milliseconds timeout);

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_AGENT_CONTROL_H_

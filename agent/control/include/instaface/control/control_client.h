// ControlClient: the client side of the agent's control socket, for instafacectl and tests.
// Blocking, with a deadline on every call.
//
// Thread safety: none; one thread per client.
#ifndef INSTAFACE_CONTROL_CONTROL_CLIENT_H_
#define INSTAFACE_CONTROL_CONTROL_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"
#include "instaface/control/agent_status.h"
#include "instaface/control/control_request.h"

namespace instaface::control {

class ControlClient {
 public:
  static common::StatusOr<ControlClient> Connect(const std::string& path,
                                                 std::chrono::milliseconds timeout);

  ControlClient(ControlClient&&) noexcept;
  ControlClient& operator=(ControlClient&&) noexcept;
  ~ControlClient();

  // Sends one request and reads its reply line as JSON.
  common::StatusOr<nlohmann::json> Call(const Request& request, std::chrono::milliseconds timeout);
  // `status`, read back into its type; an error reply or a malformed status is an error.
  common::StatusOr<AgentStatus> QueryStatus(std::chrono::milliseconds timeout);
  // Sends a raw line (a newline is appended); for tests of malformed input.
  common::Status SendLine(const std::string& line, std::chrono::milliseconds timeout);
  // Reads the next line as JSON (after watch: the next event). An error when the server closes
  // the connection, the line is not JSON, or the timeout passes.
  common::StatusOr<nlohmann::json> ReadJson(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit ControlClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request on a connection of its own, for callers that ask now and then (the graphserver):
// connects, calls, closes; the whole exchange within `timeout`.
common::StatusOr<nlohmann::json> CallOnce(const std::string& path, const Request& request,
                                          std::chrono::milliseconds timeout);
common::StatusOr<AgentStatus> QueryStatusOnce(const std::string& path,
                                              std::chrono::milliseconds timeout);

}  // namespace instaface::control

#endif  // INSTAFACE_CONTROL_CONTROL_CLIENT_H_

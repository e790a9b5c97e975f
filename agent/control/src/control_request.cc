#include "instaface/control/control_request.h"

#include <nlohmann/json.hpp>

namespace instaface::control {

using common::Status;
using common::StatusOr;

const char* CommandName(Command command) {
  switch (command) {
    case Command::kStatus:
      return "status";
    case Command::kWatch:
      return "watch";
    case Command::kStepDown:
      return "step-down";
    case Command::kTransfer:
      return "transfer";
    case Command::kUnplug:
      return "unplug";
  }
  return "unknown";
}

StatusOr<Request> ParseRequest(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kMaxRequestBytes) {
    return Status::Error("request longer than " + std::to_string(kMaxRequestBytes) + " bytes");
  }
  // No exceptions: malformed input is an ordinary outcome here.
  nlohmann::json json = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (json.is_discarded()) return Status::Error("malformed JSON");
  if (!json.is_object()) return Status::Error("request must be a JSON object");
  auto cmd = json.find("cmd");
  if (cmd == json.end() || !cmd->is_string())
    return Status::Error("request needs a string \"cmd\"");
  const std::string& name = cmd->get_ref<const std::string&>();

  Request request;
  if (name == "status") {
    request.command = Command::kStatus;
  } else if (name == "watch") {
    request.command = Command::kWatch;
  } else if (name == "step-down") {
    request.command = Command::kStepDown;
  } else if (name == "transfer") {
    request.command = Command::kTransfer;
    auto to = json.find("to");
    if (to != json.end() && !to->is_null()) {
      if (!to->is_string() || to->get_ref<const std::string&>().empty()) {
        return Status::Error("transfer \"to\" must be a non-empty string node id");
      }
      request.transfer_to = to->get<std::string>();
    }
  } else if (name == "unplug") {
    request.command = Command::kUnplug;
    auto on = json.find("on");
    if (on == json.end() || !on->is_boolean()) {
      return Status::Error("unplug needs a boolean \"on\"");
    }
    request.unplug_on = on->get<bool>();
    auto peer = json.find("peer");
    if (peer != json.end() && !peer->is_null()) {
      if (!peer->is_string() || peer->get_ref<const std::string&>().empty()) {
        return Status::Error("unplug \"peer\" must be a non-empty string node id");
      }
      request.unplug_peer = peer->get<std::string>();
    }
  } else {
    // Only a short prefix is echoed, so a huge or binary command name cannot bloat the reply.
    std::string shown = name.substr(0, 32);
    return Status::Error("unknown cmd '" + shown +
                         "' (expected status, watch, step-down, transfer or unplug)");
  }
  return request;
}

std::string SerializeRequest(const Request& request) {
  nlohmann::json json = {{"cmd", CommandName(request.command)}};
  if (request.command == Command::kTransfer && request.transfer_to) {
    json["to"] = *request.transfer_to;
  }
  if (request.command == Command::kUnplug) {
    json["on"] = request.unplug_on;
    if (request.unplug_peer) json["peer"] = *request.unplug_peer;
  }
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace instaface::control

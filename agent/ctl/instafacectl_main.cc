// instafacectl: the admin command line of a local instaface-agent.
//
//   instafacectl status [--json]     role, term, leader, lease, staleness
//   instafacectl watch [--count N]   one JSON line per state change
//   instafacectl step-down | transfer [--to ID] | unplug on|off
//
// --shm and --socket (or INSTAFACE_SHM / INSTAFACE_SOCKET) choose the agent. `status` reads
// the shared memory unless only a socket was named; everything else uses the socket.
// Exit codes: 0 done, 1 the agent is unreachable or refused, 2 bad usage.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "instaface/control/control_client.h"
#include "instaface/control/defaults.h"
#include "instaface/view.h"

namespace {

using instaface::control::Command;
using instaface::control::ControlClient;
using instaface::control::Request;
using nlohmann::json;

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

int Fail(const std::string& message) {
  std::cerr << "instafacectl: " << message << "\n";
  return kFailed;
}

// The six keys `status --json` prints, in this order, whatever the source.
json StatusKeys(const std::string& role, uint64_t term, const std::string& leader_id,
                const std::string& leader_app_address, bool lease_valid, bool stale) {
  json out = json::object();
  out["role"] = role;
  out["term"] = term;
  out["leader_id"] = leader_id;
  out["leader_app_address"] = leader_app_address;
  out["lease_valid"] = lease_valid;
  out["stale"] = stale;
  return out;
}

void PrintStatus(const json& s, bool as_json) {
  if (as_json) {
    std::cout << s.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return;
  }
  auto text = [](const json& v) {
    std::string t = v.get<std::string>();
    return t.empty() ? std::string("-") : t;
  };
  std::cout << "role:                " << text(s["role"]) << "\n"
            << "term:                " << s["term"].get<uint64_t>() << "\n"
            << "leader id:           " << text(s["leader_id"]) << "\n"
            << "leader app address:  " << text(s["leader_app_address"]) << "\n"
            << "lease valid:         " << (s["lease_valid"].get<bool>() ? "yes" : "no") << "\n"
            << "stale:               "
            << (s["stale"].get<bool>() ? "yes (agent dead or hung)" : "no") << "\n";
}

int StatusFromShm(const std::string& shm, bool as_json) {
  auto view = instaface::View::Open(shm);
  if (!view.ok()) return Fail(view.error());
  instaface::Snapshot s = view->snapshot();
  PrintStatus(StatusKeys(instaface::RoleName(s.role), s.term, s.leader_id, s.leader_app_address,
                         s.lease_valid && !s.stale, s.stale),
              as_json);
  return kOk;
}

// One request, one reply; prints the reply and maps ok:false to exit 1.
int Call(const std::string& socket, const Request& request, std::chrono::milliseconds timeout) {
  auto client = ControlClient::Connect(socket, timeout);
  if (!client.ok()) return Fail(client.status().message());
  auto reply = client->Call(request, timeout);
  if (!reply.ok()) return Fail(reply.status().message());
  if (!reply->is_object() || !reply->value("ok", false)) {
    std::string error = reply->is_object() ? reply->value("error", "") : "";
    return Fail("agent refused " + std::string(instaface::control::CommandName(request.command)) +
                ": " + (error.empty() ? reply->dump() : error));
  }
  std::cout << reply->dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return kOk;
}

int StatusFromSocket(const std::string& socket, bool as_json, std::chrono::milliseconds timeout) {
  auto status = instaface::control::QueryStatusOnce(socket, timeout);
  if (!status.ok()) return Fail(status.status().message());
  PrintStatus(StatusKeys(status->role, status->term, status->leader_id, status->leader_app_address,
                         status->lease_valid, status->stale),
              as_json);
  return kOk;
}

int Watch(const std::string& socket, long count, std::chrono::milliseconds timeout) {
  auto client = ControlClient::Connect(socket, timeout);
  if (!client.ok()) return Fail(client.status().message());
  Request request;
  request.command = Command::kWatch;
  auto first = client->Call(request, timeout);
  if (!first.ok()) return Fail(first.status().message());
  if (!first->value("ok", false)) return Fail("agent refused watch: " + first->value("error", ""));
  long printed = 0;
  json line = std::move(*first);
  while (true) {
    std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    if (count > 0 && ++printed >= count) return kOk;
    // Changes can be hours apart; only a closed connection ends the watch.
    auto next = client->ReadJson(std::chrono::hours(24));
    while (!next.ok() && next.status().message().find("timed out") != std::string::npos) {
      next = client->ReadJson(std::chrono::hours(24));
    }
    if (!next.ok()) return Fail(next.status().message());
    line = std::move(*next);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"instafacectl: show and steer the local instaface-agent.", "instafacectl"};
  app.require_subcommand(1);
  std::string shm = instaface::control::kDefaultShmName;
  std::string socket = instaface::control::kDefaultSocketPath;
  int timeout_ms = 5000;
  auto* shm_opt = app.add_option("--shm", shm, "Shared-memory name the agent publishes to")
                      ->envname("INSTAFACE_SHM")
                      ->capture_default_str();
  auto* socket_opt = app.add_option("--socket", socket, "The agent's control socket")
                         ->envname("INSTAFACE_SOCKET")
                         ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "How long to wait for the agent's reply")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();

  bool as_json = false;
  auto* status = app.add_subcommand(
      "status",
      "Role, term, leader id and app address, lease validity, staleness. From the shared "
      "memory, or from the socket when only --socket is given");
  status->add_flag(
      "--json", as_json,
      "One JSON object: role, term, leader_id, leader_app_address, lease_valid, stale");

  long count = 0;
  auto* watch = app.add_subcommand(
      "watch", "Print the state, then one JSON line per change, until the agent goes away");
  watch->add_option("--count", count, "Stop after this many lines (0: never)")
      ->check(CLI::NonNegativeNumber);

  auto* step_down = app.add_subcommand("step-down", "Make the leader step down");

  std::string to;
  auto* transfer = app.add_subcommand(
      "transfer", "Make the leader hand over to the best peer, or to --to at once");
  transfer->add_option("--to", to, "Node id to hand over to");

  std::string unplug_state;
  std::string unplug_peer;
  auto* unplug = app.add_subcommand(
      "unplug",
      "Fault injection: stop (on) or resume (off) sending and receiving heartbeats; with --peer, "
      "only on the link to that peer");
  unplug->add_option("state", unplug_state, "on or off")
      ->required()
      ->check(CLI::IsMember({"on", "off"}));
  unplug->add_option("--peer", unplug_peer,
                     "Node id of one peer: drop every message to and from it, and nothing else");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  const auto timeout = std::chrono::milliseconds(timeout_ms);

  if (*status) {
    // Only a socket was named (flag or environment): ask it, since the shm name is unknown.
    auto named = [](const CLI::Option* option, const char* env) {
      const char* value = std::getenv(env);
      return option->count() > 0 || (value != nullptr && *value != '\0');
    };
    bool shm_named = named(shm_opt, "INSTAFACE_SHM");
    bool socket_named = named(socket_opt, "INSTAFACE_SOCKET");
    if (socket_named && !shm_named) return StatusFromSocket(socket, as_json, timeout);
    return StatusFromShm(shm, as_json);
  }
  if (*watch) return Watch(socket, count, timeout);

  Request request;
  if (*step_down) {
    request.command = Command::kStepDown;
  } else if (*transfer) {
    request.command = Command::kTransfer;
    if (!to.empty()) request.transfer_to = to;
  } else if (*unplug) {
    request.command = Command::kUnplug;
    request.unplug_on = unplug_state == "on";
    if (!unplug_peer.empty()) request.unplug_peer = unplug_peer;
  }
  return Call(socket, request, timeout);
}

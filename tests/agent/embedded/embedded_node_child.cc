// embedded_node_test_child: one app process that runs the election in-process through
// instaface::runtime::Node in embedded mode (no shared-memory name, no sidecar), for
// embedded_node_test. It reads its own state through the View the Node hands out, the way an
// app would, and prints it as one JSON line on stdout whenever it changes and at least every
// --print-ms, so the parent test can follow it without any other channel.
//
// SIGTERM or SIGINT stops the node (handing leadership over when it leads) and exits 0.
//
//   embedded_node_test_child --id=a --listen=tcp://127.0.0.1:PORT --redis=redis://127.0.0.1:P
//       [--peer=b=tcp://127.0.0.1:PORT2 ...] --secret=S [--cluster-size=3]
//       [--heartbeat-ms=50 --election-min-ms=150 --election-max-ms=300] [--print-ms=20]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "instaface/runtime/node.h"
#include "instaface/view.h"

namespace {

// "--name=value" -> value when `arg` starts with "--name="; nullptr otherwise.
const char* FlagValue(const char* arg, const char* name) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, "--", 2) != 0 || std::strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=')
    return nullptr;
  return arg + 3 + n;
}

bool ParseInt(const char* text, int* out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

void PrintSnapshot(const instaface::Snapshot& s) {
  nlohmann::json line = {
      {"pid", static_cast<int>(getpid())},
      {"self_id", s.self_id},
      {"role", instaface::RoleName(s.role)},
      {"term", s.term},
      {"leader_id", s.leader_id},
      {"leader_app_address", s.leader_app_address},
      {"lease_valid", s.lease_valid},
      {"stale", s.stale},
      {"change_counter", s.change_counter},
  };
  // One write per line, flushed, so the reader never sees half a line mixed with another.
  std::string text = line.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  instaface::runtime::NodeOptions o;
  o.cluster = "embedded-test";
  int heartbeat_ms = 50, election_min_ms = 150, election_max_ms = 300, print_ms = 20;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = nullptr;
    bool ok = true;
    if ((v = FlagValue(a, "id"))) {
      o.id = v;
    } else if ((v = FlagValue(a, "cluster"))) {
      o.cluster = v;
    } else if ((v = FlagValue(a, "cluster-size"))) {
      ok = ParseInt(v, &o.cluster_size);
    } else if ((v = FlagValue(a, "listen"))) {
      o.listen_url = v;
    } else if ((v = FlagValue(a, "redis"))) {
      o.redis_url = v;
    } else if ((v = FlagValue(a, "peer"))) {
      const char* eq = std::strchr(v, '=');
      ok = eq != nullptr && eq != v;
      if (ok) o.static_peers[std::string(v, eq)] = eq + 1;
    } else if ((v = FlagValue(a, "secret"))) {
      o.secret = v;
    } else if ((v = FlagValue(a, "app-address"))) {
      o.app_address = v;
    } else if ((v = FlagValue(a, "heartbeat-ms"))) {
      ok = ParseInt(v, &heartbeat_ms);
    } else if ((v = FlagValue(a, "election-min-ms"))) {
      ok = ParseInt(v, &election_min_ms);
    } else if ((v = FlagValue(a, "election-max-ms"))) {
      ok = ParseInt(v, &election_max_ms);
    } else if ((v = FlagValue(a, "print-ms"))) {
      ok = ParseInt(v, &print_ms);
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "embedded_node_test_child: bad argument '" << a << "'\n";
      return 2;
    }
  }
  o.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  o.election_min = std::chrono::milliseconds(election_min_ms);
  o.election_max = std::chrono::milliseconds(election_max_ms);
  if (o.app_address.empty()) o.app_address = "http://embedded/" + o.id;
  // shm_name stays empty: the record lives in this process (embedded mode).

  // Block the stop signals before the Node starts its threads, so they all inherit the mask
  // and only the sigtimedwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (auto valid = instaface::runtime::ValidateNodeOptions(o); !valid.ok()) {
    std::cerr << "embedded_node_test_child: " << valid.message() << "\n";
    return 2;
  }
  auto started = instaface::runtime::Node::Start(o);
  if (!started.ok()) {
    std::cerr << "embedded_node_test_child: " << started.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<instaface::runtime::Node> node = std::move(*started);
  instaface::View view = node->view();

  uint32_t last_seen = view.snapshot().change_counter;
  PrintSnapshot(view.snapshot());
  const timespec no_wait{0, 0};
  while (sigtimedwait(&stop_signals, nullptr, &no_wait) < 0) {
    // Sleeps on the record's change counter: a change prints at once, quiet periods every
    // print_ms (so staleness and lease expiry, which change no counter, show too).
    last_seen = view.WaitForChange(last_seen, std::chrono::milliseconds(print_ms));
    PrintSnapshot(view.snapshot());
  }
  node->Stop(/*hand_over=*/true);
  return 0;
}

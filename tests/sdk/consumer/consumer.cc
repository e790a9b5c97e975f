// Uses the installed C++ API: publishes through a named segment and reads it back.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <instaface/clock.h>
#include <instaface/shm_writer.h>
#include <instaface/view.h>
#include <instaface/watcher.h>

int main() {
  using namespace std::chrono_literals;
  const std::string name = "instaface-consumer-" + std::to_string(getpid());
  auto writer = instaface::shm::Writer::Create(name, 0600, 5s);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.error().c_str());
    return 1;
  }
  auto view = instaface::View::Open(name);
  if (!view.ok()) {
    std::fprintf(stderr, "%s\n", view.error().c_str());
    (void)writer->Unlink();
    return 1;
  }
  instaface::shm::PublishedState state;
  state.term = 5;
  state.leader_id = "consumer";
  writer->Publish(state);
  const instaface::Snapshot s = view->snapshot();
  bool ok = s.term == 5 && s.leader_id == "consumer" && !s.stale && !view->is_leader() &&
            !view->leadership();
  state.role = instaface::Role::kLeader;
  state.term = 6;
  state.lease_until_ns = static_cast<uint64_t>(instaface::LeaseClockNowNs()) + 60'000'000'000ULL;
  writer->Publish(state);
  const auto lead = view->leadership();
  ok = ok && lead && lead->term == 6 && lead->lease_until_ns == state.lease_until_ns;
  (void)writer->Unlink();
  std::printf("consumer: term=%llu leader=%s %s\n", static_cast<unsigned long long>(s.term),
              s.leader_id.c_str(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}

// Prints the state the local instaface-agent publishes, then every change, with a Watcher.
//
//   instaface_leader_cpp SEGMENT [SECONDS]   (stops after SECONDS; 0 = forever)
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "instaface/clock.h"
#include "instaface/view.h"
#include "instaface/watcher.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " SEGMENT [SECONDS]\n";
    return 2;
  }
  const long seconds = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 0;
  auto view = instaface::View::Open(argv[1]);
  if (!view.ok()) {
    std::cerr << view.error() << "\n";
    return 1;
  }
  auto watcher = instaface::Watcher::Start(*view, [&](const instaface::Snapshot& s) {
    std::cout << "term=" << s.term << " role=" << instaface::RoleName(s.role)
              << " leader=" << (s.leader_id.empty() ? "-" : s.leader_id)
              << " app=" << (s.leader_app_address.empty() ? "-" : s.leader_app_address)
              << " lease_valid=" << s.lease_valid << " stale=" << s.stale;
    // What an app acts on: whether it leads, and the term to fence its writes with, from one
    // read (the snapshot above may already be older than this).
    if (const auto lead = view->leadership()) {
      const int64_t left_ns =
          static_cast<int64_t>(lead->lease_until_ns) - instaface::LeaseClockNowNs();
      std::cout << " leading in term " << lead->term << " for " << left_ns / 1000000 << " ms";
    } else {
      std::cout << " not leading";
    }
    std::cout << std::endl;
  });
  if (seconds > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
  } else {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }
  watcher->Stop();
  return 0;
}

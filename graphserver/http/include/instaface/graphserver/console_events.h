// ConsoleEvents: the live feed behind the console page, GET /api/graph/events, as Server-Sent
// Events. Each graphserver streams its own node; the page subscribes to every node.
//
//   status    on subscribing, and whenever this node's view of the cluster changes (role, term,
//             leader, lease, each peer's reachability, unplug switches): StatusEventJson
//   election  when this node's role, term or leader changes:
//             {"node", "kind": <role>, "term", "leader": url|null, "leader_id", "at": epoch ms}
//   stats     every second: {"node", "interval_ms", "entity_cache": {"hits", "misses"},
//             "association_cache": {...}, "queries", "writes", "forwards"}, counts in the interval
//   query     a sample of the queries answered, at most 10 a second:
//             {"node", "entities", "calls", "timeRunning", "timeFetching"}
//
// One thread watches the shared memory (waking on its change futex, so an election shows at
// once) and asks the agent's control socket for the peers a few times a second, only while
// someone is subscribed.
//
// Thread safety: every public method may be called from any thread.
#ifndef INSTAFACE_GRAPHSERVER_CONSOLE_EVENTS_H_
#define INSTAFACE_GRAPHSERVER_CONSOLE_EVENTS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "instaface/graph/graph_service.h"
#include "instaface/graphserver/http_server.h"
#include "instaface/view.h"

namespace instaface::graphserver {

struct ConsoleEventsOptions {
  std::string self_app_address;
  std::string control_socket;  // empty: status from the shared memory only, no peers
  std::chrono::milliseconds agent_poll{250};
  std::chrono::milliseconds stats_interval{1000};
  std::chrono::milliseconds control_timeout{500};
};

class ConsoleEvents {
 public:
  // `view` and `service` must outlive this object.
  ConsoleEvents(const View& view, graph::GraphService& service, ConsoleEventsOptions options);
  ~ConsoleEvents();  // stops
  ConsoleEvents(const ConsoleEvents&) = delete;
  ConsoleEvents& operator=(const ConsoleEvents&) = delete;

  void Start();
  void Stop();

  // A new subscriber: it gets the current status at once, then every event.
  void Subscribe(std::shared_ptr<EventStream> stream);
  size_t subscribers() const;

  // Counted into the next stats event.
  void CountWrite();
  void CountForward();
  // A query this node answered, from its "stats".
  void OnQuery(size_t entities, int64_t calls, double time_running_ms, double time_fetching_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_CONSOLE_EVENTS_H_

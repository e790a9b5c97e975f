#include "instaface/graphserver/console_events.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/control/control_client.h"
#include "instaface/graphserver/cluster_view.h"

namespace instaface::graphserver {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string Compact(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct ConsoleEvents::Impl {
  Impl(const View& v, graph::GraphService& s, ConsoleEventsOptions o)
      : view(v), service(s), options(std::move(o)) {}

  const View& view;
  graph::GraphService& service;
  const ConsoleEventsOptions options;

  mutable std::mutex mu;
  std::condition_variable wake;
  std::vector<std::shared_ptr<EventStream>> streams;  // guarded by mu
  std::string last_status;                            // guarded by mu: the last status sent
  bool stopping = false;                              // guarded by mu
  std::thread thread;

  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> forwards{0};
  std::atomic<int64_t> last_query_sample_ms{0};

  // Sends to every subscriber and forgets those that have gone.
  void Broadcast(const char* name, const std::string& data) {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::shared_ptr<EventStream>> live;
    live.reserve(streams.size());
    for (auto& s : streams) {
      if (s->Send(name, data)) live.push_back(std::move(s));
    }
    streams.swap(live);
  }

  bool Idle() {
    std::lock_guard<std::mutex> lock(mu);
    return streams.empty();
  }

  void Run() {
    struct Seen {
      Role role = Role::kFollower;
      uint64_t term = 0;
      std::string leader;
      bool stale = false;
    } seen;
    bool first = true;
    uint32_t counter = view.snapshot().change_counter;
    Clock::time_point next_agent = Clock::now();
    Clock::time_point next_stats = Clock::now() + options.stats_interval;
    graph::GraphStats last_stats = service.stats();
    uint64_t last_writes = 0, last_forwards = 0;
    std::optional<control::AgentStatus> agent;

    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      // Sleeps until the record changes or the next poll is due.
      counter = view.WaitForChange(counter, std::chrono::milliseconds(50));
      const Snapshot s = view.snapshot();
      const bool changed = first || s.role != seen.role || s.term != seen.term ||
                           s.leader_id != seen.leader || s.stale != seen.stale;
      const auto now = Clock::now();
      if (changed) {
        seen = {s.role, s.term, s.leader_id, s.stale};
        if (!first) {
          Broadcast("election",
                    Compact({{"node", options.self_app_address},
                             {"kind", s.stale ? "stale" : RoleName(s.role)},
                             {"term", s.term},
                             {"leader", s.leader_app_address.empty() ? json(nullptr)
                                                                     : json(s.leader_app_address)},
                             {"leader_id", s.leader_id},
                             {"at", EpochMs()}}));
        }
        first = false;
      }
      const bool idle = Idle();
      if (!idle && !options.control_socket.empty() && (changed || now >= next_agent)) {
        auto status = control::QueryStatusOnce(options.control_socket, options.control_timeout);
        if (status.ok()) {
          agent = std::move(*status);
        } else {
          agent.reset();
        }
        next_agent = now + options.agent_poll;
      }
      ClusterView cluster = agent ? ClusterFromAgent(s, *agent, options.self_app_address)
                                  : ClusterFromSnapshot(s, options.self_app_address);
      json status = StatusEventJson(cluster);
      // The remaining lease moves every call; it is sent with the other changes, not alone.
      json comparable = status;
      comparable.erase("lease_remaining_ms");
      for (json& p : comparable["peers"]) p.erase("last_heard_ms");
      std::string key = Compact(comparable);
      std::string text = Compact(status);
      bool send_status = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (key != last_key) {
          last_key = std::move(key);
          send_status = true;
        }
        // A status without the agent's peers is not kept for newcomers when the agent could
        // be asked: they get the full one from the next round, within one wake-up.
        last_status = agent || options.control_socket.empty() ? text : std::string();
      }
      if (send_status) Broadcast("status", text);

      if (now >= next_stats) {
        const graph::GraphStats st = service.stats();
        const uint64_t w = writes.load(std::memory_order_relaxed);
        const uint64_t f = forwards.load(std::memory_order_relaxed);
        if (!idle) {
          Broadcast(
              "stats",
              Compact({{"node", options.self_app_address},
                       {"interval_ms", options.stats_interval.count()},
                       {"entity_cache",
                        {{"hits", st.entity_cache_hits - last_stats.entity_cache_hits},
                         {"misses", st.entity_cache_misses - last_stats.entity_cache_misses}}},
                       {"association_cache",
                        {{"hits", st.association_cache_hits - last_stats.association_cache_hits},
                         {"misses",
                          st.association_cache_misses - last_stats.association_cache_misses}}},
                       {"queries", st.queries_answered - last_stats.queries_answered},
                       {"writes", w - last_writes},
                       {"forwards", f - last_forwards}}));
        }
        last_stats = st;
        last_writes = w;
        last_forwards = f;
        next_stats = now + options.stats_interval;
      }
    }
  }

  std::string last_key;  // guarded by mu: the status last sent, without its moving parts
};

ConsoleEvents::ConsoleEvents(const View& view, graph::GraphService& service,
                             ConsoleEventsOptions options)
    : impl_(std::make_unique<Impl>(view, service, std::move(options))) {}

ConsoleEvents::~ConsoleEvents() { Stop(); }

void ConsoleEvents::Start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([this] { impl_->Run(); });
}

void ConsoleEvents::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

void ConsoleEvents::Subscribe(std::shared_ptr<EventStream> stream) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->last_status.empty()) stream->Send("status", impl_->last_status);
  // A new subscriber forces the next status out, so it also learns the peers at once.
  impl_->last_key.clear();
  impl_->streams.push_back(std::move(stream));
}

size_t ConsoleEvents::subscribers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->streams.size();
}

void ConsoleEvents::CountWrite() { impl_->writes.fetch_add(1, std::memory_order_relaxed); }
void ConsoleEvents::CountForward() { impl_->forwards.fetch_add(1, std::memory_order_relaxed); }

void ConsoleEvents::OnQuery(size_t entities, int64_t calls, double time_running_ms,
                            double time_fetching_ms) {
  const int64_t now = EpochMs();
  int64_t last = impl_->last_query_sample_ms.load(std::memory_order_relaxed);
  if (now - last < 100 ||
      !impl_->last_query_sample_ms.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;
  }
  if (impl_->Idle()) return;
  impl_->Broadcast("query", Compact({{"node", impl_->options.self_app_address},
                                     {"entities", entities},
                                     {"calls", calls},
                                     {"timeRunning", time_running_ms},
                                     {"timeFetching", time_fetching_ms}}));
}

}  // namespace instaface::graphserver

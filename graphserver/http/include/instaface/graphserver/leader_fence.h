// LeaderFence: raises the database fence (graphdb/fence.h) to this node's term as soon as the
// view says it leads, before any write reaches it. A deposed leader that still believes it
// leads (its agent has not heard of the new term yet) is then refused by the database from the
// moment its successor leads, not only from the successor's first write, which may come much
// later on a quiet cluster.
//
// One thread sleeps on the record's change futex; when leadership() shows a term above the
// one raised, it raises, retrying while the database is unreachable.
//
// Thread safety: Start and Stop from one thread; raised_term() from any.
#ifndef INSTAFACE_GRAPHSERVER_LEADER_FENCE_H_
#define INSTAFACE_GRAPHSERVER_LEADER_FENCE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "instaface/graphdb/pool.h"
#include "instaface/view.h"

namespace instaface::graphserver {

struct LeaderFenceOptions {
  std::chrono::milliseconds retry{100};         // after a failed raise (database unreachable)
  std::function<void(const std::string&)> log;  // one line per raise or refusal; may be empty
};

class LeaderFence {
 public:
  // `view` must outlive this object.
  LeaderFence(const View& view, std::shared_ptr<graphdb::Pool> pool,
              LeaderFenceOptions options = {});
  ~LeaderFence();  // stops
  LeaderFence(const LeaderFence&) = delete;
  LeaderFence& operator=(const LeaderFence&) = delete;

  void Start();
  void Stop();
  // The highest term this node has raised the fence to (or found a newer term in), 0 if none.
  uint64_t raised_term() const { return raised_.load(std::memory_order_acquire); }

 private:
  void Run();

  const View& view_;
  const std::shared_ptr<graphdb::Pool> pool_;
  const LeaderFenceOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> raised_{0};
  std::thread thread_;
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_LEADER_FENCE_H_

#include "instaface/graphserver/leader_fence.h"

#include "instaface/graphdb/fence.h"

namespace instaface::graphserver {

LeaderFence::LeaderFence(const View& view, std::shared_ptr<graphdb::Pool> pool,
                         LeaderFenceOptions options)
    : view_(view), pool_(std::move(pool)), options_(std::move(options)) {}

LeaderFence::~LeaderFence() { Stop(); }

void LeaderFence::Start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void LeaderFence::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void LeaderFence::Run() {
  uint32_t seen = view_.snapshot().change_counter;
  bool retrying = false;
  while (!stopping_) {
    // A change wakes it at once; the timeout bounds how long Stop waits and paces retries.
    seen = view_.WaitForChange(seen, retrying ? options_.retry : std::chrono::milliseconds(100));
    const std::optional<Leadership> lead = view_.leadership();
    if (!lead || lead->term <= raised_term()) {
      retrying = false;
      continue;
    }
    const common::Status st = graphdb::RaiseFence(*pool_, lead->term);
    retrying = false;
    if (st.ok() || st.code() == common::StatusCode::kFenceLost) {
      // Lost: a newer term has written, so this node no longer leads; its writes are refused
      // by the same fence, and there is nothing left to raise for this term.
      raised_.store(lead->term, std::memory_order_release);
      if (options_.log) {
        options_.log(st.ok() ? "fence raised to term " + std::to_string(lead->term)
                             : "fence not raised to term " + std::to_string(lead->term) + ": " +
                                   st.message());
      }
    } else {
      retrying = true;  // the database is unreachable: try again soon
    }
  }
}

}  // namespace instaface::graphserver

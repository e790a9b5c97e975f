// libinstaface: read the leader that the local instaface-agent (or an embedded election)
// publishes, in nanoseconds and without a system call, or sleep until it changes.
//
//   auto view = instaface::View::Open("instaface-graph-0");   // the agent's --shm name
//   if (!view.ok()) { std::cerr << view.error() << "\n"; return 1; }
//   if (auto lead = view->leadership()) { ... act, fenced by lead->term ... }
//
// Fence with the term that leadership() returns, never with a second read: between
// `is_leader()` and `snapshot().term` this node can lose the lease and the next term can begin,
// and that term is one in which it does not lead.
//
// Times (lease_until_ns) are nanoseconds of the lease clock, instaface::LeaseClockNowNs().
//
// Thread safety: a View may be shared by any number of threads; all methods are const and
// lock-free for readers. Moving a View while others use it is not allowed.
#ifndef INSTAFACE_VIEW_H_
#define INSTAFACE_VIEW_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "instaface/clock.h"
#include "instaface/result.h"
#include "instaface/shm_layout.h"

namespace instaface {

namespace internal {
struct ViewAccess;  // libinstaface's own code: the C API, the writer
}

using Role = shm::Role;  // the role as the record stores it
const char* RoleName(Role role);

// This node's leadership, from one consistent read of the record: the term it leads in and the
// end of its lease, both from the same publish. View::leadership() returns one only while this
// node leads, its lease holds and the agent is alive.
struct Leadership {
  uint64_t term = 0;            // the fence token: the term of this leadership
  uint64_t lease_until_ns = 0;  // lease clock ns; leadership ends then unless renewed
};

// A consistent copy of the published state (never torn).
struct Snapshot {
  Role role = Role::kFollower;
  uint64_t term = 0;
  std::string self_id;
  std::string leader_id;  // empty when no leader is known
  std::string leader_peer_address;
  std::string leader_app_address;  // e.g. http://10.0.0.5:8080
  // Lease clock ns until which this node's lease holds; 0 when it holds none.
  uint64_t lease_until_ns = 0;
  bool lease_valid = false;     // this node leads and its lease has not expired
  bool stale = false;           // the agent is dead or hung: trust nothing above
  uint32_t change_counter = 0;  // pass to View::WaitForChange
};

class View {
 public:
  // Maps the agent's segment read-only. A missing segment, a foreign or truncated one, or an
  // incompatible layout version is an error naming the segment, never garbage. The name is a
  // POSIX shared-memory name with or without its leading '/'.
  static Result<View> Open(const std::string& shm_name);
  // Reads a record that lives in this process (embedded mode). `owner` keeps it alive.
  static View FromRecord(const shm::Record* record, std::shared_ptr<const void> owner);

  View(View&&) noexcept;
  View& operator=(View&&) noexcept;
  ~View();

  // This node's leadership if it leads, its lease is valid and the agent is alive; otherwise
  // nullopt. The term and lease end come from the same read as the decision, so the term is
  // always one in which this node led. As cheap as is_leader(): no allocation, no strings.
  std::optional<Leadership> leadership() const noexcept;
  // leadership().has_value(): whether this node leads, for when the term does not matter.
  bool is_leader() const noexcept;
  Snapshot snapshot() const;
  // Sleeps (futex) until change_counter differs from `last_seen` or `timeout` passes. Returns
  // the current change counter (equal to last_seen on timeout). Spurious wakeups are absorbed.
  // A dead agent publishes nothing, so this times out: check snapshot().stale afterwards.
  uint32_t WaitForChange(uint32_t last_seen, std::chrono::nanoseconds timeout) const;

  // How old the liveness stamp may grow before the state counts as stale (set by the writer).
  std::chrono::nanoseconds stale_after() const { return std::chrono::nanoseconds(stale_after_ns_); }

 private:
  friend class Watcher;  // wakes its own sleeping thread to stop it
  friend struct internal::ViewAccess;
  struct Mapping;
  View(const shm::Record* record, std::atomic<uint32_t>* waiters, uint64_t stale_after_ns,
       std::shared_ptr<const void> owner);
  // WaitForChange that also returns once *interrupt is set and the futex word is woken.
  uint32_t WaitForChangeOrInterrupt(uint32_t last_seen, std::chrono::nanoseconds timeout,
                                    const std::atomic<bool>* interrupt) const;
  const shm::Record* record_;
  // Registration word for sleepers, so the writer may skip the wake syscall when nobody waits.
  // Null when the segment could only be opened read-only (then waits sleep in short slices).
  std::atomic<uint32_t>* waiters_;
  uint64_t stale_after_ns_;
  std::shared_ptr<const void> owner_;
};

}  // namespace instaface

#endif  // INSTAFACE_VIEW_H_

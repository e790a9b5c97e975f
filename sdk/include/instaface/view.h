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
#include "instaface/inline_text.h"
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
// node leads, its lease holds and the agent is alive. Ask again before each act rather than
// acting until lease_until_ns: leadership also ends, before that, the moment the agent's process
// dies (its peers may elect a new leader a few ms later) or it hands over.
struct Leadership {
  uint64_t term = 0;            // the fence token: the term of this leadership
  uint64_t lease_until_ns = 0;  // lease clock ns; leadership ends then unless renewed
};

// A consistent copy of the published state (never torn). Its texts live inside it, each as
// long as the record's field (inline_text.h): making, copying or filling one never allocates.
struct Snapshot {
  using IdText = InlineText<shm::kIdBytes>;
  using AddressText = InlineText<shm::kAddressBytes>;

  Role role = Role::kFollower;
  uint64_t term = 0;
  IdText self_id;
  IdText leader_id;  // empty when no leader is known
  AddressText leader_peer_address;
  AddressText leader_app_address;  // e.g. http://10.0.0.5:8080
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
  // A consistent copy of the whole record. Never allocates: it copies the bytes of each text
  // that are in use into the Snapshot itself, and reads the lease clock once.
  Snapshot snapshot() const noexcept;
  // The same into *into, overwriting every field, for a reader that keeps its Snapshot
  // elsewhere; about as fast as snapshot() (sdk/README.md). *into may start as any Snapshot;
  // the caller owns it, and no other thread may use it during the call.
  void snapshot(Snapshot* into) const noexcept;
  // Sleeps (futex) until change_counter differs from `last_seen`, the agent dies, or `timeout`
  // passes. Returns the current change counter; spurious wakeups are absorbed. The counter is
  // still last_seen after a timeout and after a death (a dead agent publishes nothing), so a
  // return with last_seen means "look again": snapshot().stale is true and leadership() empty
  // if the agent is gone, and a restarted agent's first publish moves the counter.
  //
  // The agent's death (kill -9, a crash, or its exit) ends every wait asleep at that moment, in
  // every process, at once: the kernel marks the agent's life lock as it exits (shm_layout.h,
  // "Life") and wakes a sleeper, which wakes the rest. A call that starts when the agent is
  // already gone returns at once the first time on each thread, so a death that fell between two
  // calls is not missed; later calls on that thread sleep as usual, until a publish (a restarted
  // agent takes the segment over) or the timeout. A loop such as
  //   for (;;) { c = view.WaitForChange(c, 30s); Snapshot s = view.snapshot(); ... }
  // thus learns of the death once, promptly, and then does not spin. A zero timeout only reads
  // the counter. A hung agent (SIGSTOP) still holds its lock: no wait wakes for it, and it is
  // found by its stamp (snapshot().stale), as before.
  //
  // Without futex_waitv (Linux before 5.16, or refused by a seccomp filter), or on a segment that
  // could be mapped only read-only, a sleeper looks for the death every 10 ms (read-only: every
  // 1 ms, as it must for publishes too) instead of being woken.
  uint32_t WaitForChange(uint32_t last_seen, std::chrono::nanoseconds timeout) const;

  // How old the liveness stamp may grow before the state counts as stale (set by the writer).
  std::chrono::nanoseconds stale_after() const { return std::chrono::nanoseconds(stale_after_ns_); }

 private:
  friend class Watcher;  // wakes its own sleeping thread to stop it
  friend struct internal::ViewAccess;
  struct Mapping;
  enum class WaitEnd { kChanged, kTimeout, kAgentGone, kInterrupted };
  struct WaitResult {
    uint32_t counter;
    WaitEnd end;
  };
  View(const shm::Record* record, shm::Record* writable, uint64_t stale_after_ns,
       std::shared_ptr<const void> owner);
  // WaitForChange, saying why it returned (the C API tells a death from a timeout).
  WaitResult WaitForChangeOrDeath(uint32_t last_seen, std::chrono::nanoseconds timeout) const;
  // The sleep under WaitForChange and Watcher: until the counter differs from last_seen, the
  // timeout, *interrupt is set (and the counter's futex woken), or, if `death_ends_wait`, the
  // agent is gone (already, or while it sleeps).
  WaitResult Wait(uint32_t last_seen, std::chrono::nanoseconds timeout,
                  const std::atomic<bool>* interrupt, bool death_ends_wait) const;
  const shm::Record* record_;
  // The same record mapped writable, or null when the segment could only be opened read-only.
  // Sleepers register in its `waiters` word, so the writer may skip the wake syscall when
  // nobody waits, and set FUTEX_WAITERS in its life lock's word, so the agent's death wakes
  // them. Without it, waits sleep in short slices.
  shm::Record* writable_;
  uint64_t stale_after_ns_;
  std::shared_ptr<const void> owner_;
};

}  // namespace instaface

#endif  // INSTAFACE_VIEW_H_

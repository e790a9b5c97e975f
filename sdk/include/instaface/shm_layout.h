// The shared-memory record through which instaface-agent publishes the election state to the
// local app. Owned by the SDK; the agent includes it to write, libinstaface to read.
//
// One record per segment, created by the agent (mode 0600 or 0660). Every field after the
// header is a std::atomic so that concurrent access is defined behaviour (and TSan-clean);
// on x86-64 relaxed/acquire loads and release stores compile to plain moves.
//
// Consistency: a seqlock. The writer makes `seq` odd, writes the payload, then makes it even.
// A reader copies the payload between two equal even reads of `seq`. The writer never waits.
//
// Change notification: after each publish the writer increments `change_counter` and, if
// `waiters` is non-zero, wakes futex waiters on it (FUTEX_WAKE, shared, not private: the
// mapping is shared between processes).
//
// Header fields are plain: readers read them once, when they open the segment. An agent that
// takes over a compatible segment of a dead one rewrites only agent_pid.
//
// Time: every time in the record (lease_until_ns, liveness_ns) is in nanoseconds of the lease
// clock, CLOCK_BOOTTIME (instaface/clock.h says why), and every reader compares them with
// that clock. It is shared by all containers of a pod (same kernel), so the values compare
// across processes. Layout version 1 used CLOCK_MONOTONIC and a coarse-clock allowance.
//
// Liveness: the agent stores the lease clock into `liveness_ns` every heartbeat period or more
// often, outside the seqlock. A reader whose clock is more than `stale_after_ns` past it
// reports the state as stale, and never as leader.
//
// Life: a stamp only ages, so it tells of a dead agent late. `agent_lock` tells at once: the
// agent holds this robust, process-shared mutex for as long as it runs (a thread of its own
// takes it and never lets go until the record is closed). When the process dies, the kernel
// walks the robust list of that thread as the thread exits, and sets FUTEX_OWNER_DIED in the
// mutex's futex word, clearing the owner's tid. It does so in exit_mm(), before exit_files()
// closes the process's sockets, so the app stops seeing a leader before a peer could learn of
// the death from a closed connection, and long before any election timeout. A reader reads the
// futex word (a plain load, no system call): an owner tid without FUTEX_OWNER_DIED means alive.
// `agent_lock_kind` says whether the lock is in use (an in-process record has none: the
// election then dies with its app). A reader that sleeps in WaitForChange and may write the
// segment also sets FUTEX_WAITERS in that word, as a thread blocked on the mutex would, so that
// the kernel wakes it at the death (view.cc, View::Wait): glibc's protocol for the word, which
// every agent's unlock and takeover already follow, so no new layout version.
//
// Takeover: an agent restarted on a dead one's record (same layout and stale_after) stamps it
// stale and publishes a state with no leader before it takes the life lock, so that the moment
// the word shows a live owner again, the record no longer carries the dead agent's lease. A
// reader that loads the payload first and the word last must load `seq` once more after the
// word and read again if it changed: otherwise a read that straddles the takeover could pair
// the dead agent's lease with the new agent's life (record_access.h, SeqStill). The two halves
// need each other: a reader without the recheck beside a new agent, or any reader beside an
// agent from before this order (which took the lock first), can still be told leader by a read
// that straddles the takeover; no layout version marks it, since a record's layout is the same.
//
// The layout is pinned below (size, every offset, lock-free atomics): a reader in another
// process, built from another copy of this header, must find each field where the writer put
// it, and an atomic that took a lock would not be shared across processes at all. Any change
// to it, or to what a field means, takes a new kLayoutVersion.
#ifndef INSTAFACE_SHM_LAYOUT_H_
#define INSTAFACE_SHM_LAYOUT_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace instaface::shm {

inline constexpr uint64_t kMagic = 0x31454341'46415349ULL;  // "ISAFACE1" little-endian
inline constexpr uint32_t kLayoutVersion = 3;

// Record::agent_lock_kind.
inline constexpr uint32_t kAgentLockNone = 0;
inline constexpr uint32_t kAgentLockRobustMutex = 1;

inline constexpr size_t kIdBytes = 64;        // node ids, NUL-padded
inline constexpr size_t kAddressBytes = 192;  // URLs, NUL-padded

// The role as stored in Record::role, and the one role type of the SDK (instaface::Role is this
// type; the C API's enum instaface_role has the same values).
enum class Role : uint32_t { kFollower = 0, kCandidate = 1, kLeader = 2 };

// Strings are stored as arrays of 8-byte atomic words so the payload copy is word-wise.
template <size_t Bytes>
struct AtomicText {
  static_assert(Bytes % 8 == 0, "AtomicText must be a whole number of words");
  std::atomic<uint64_t> words[Bytes / 8];
};

struct alignas(64) Record {
  // Header: written once before the segment becomes visible under its name; never changes.
  uint64_t magic;
  uint32_t layout_version;
  uint32_t record_size;  // sizeof(Record) of the writer
  uint32_t agent_pid;
  uint32_t agent_lock_kind;  // kAgentLockNone or kAgentLockRobustMutex
  uint64_t stale_after_ns;   // liveness older than this means the agent is dead or hung

  alignas(64) std::atomic<uint32_t> seq;  // odd while the writer is mid-update
  std::atomic<uint32_t> change_counter;   // futex word; +1 after every publish
  std::atomic<uint32_t> waiters;          // readers sleeping on change_counter
  std::atomic<uint32_t> reserved1;

  alignas(64) std::atomic<uint64_t> liveness_ns;  // lease clock at the agent's last stamp
  // Held by the live agent (see "Life" above). Readers load its futex word only.
  pthread_mutex_t agent_lock;

  // Payload, guarded by seq.
  alignas(64) std::atomic<uint32_t> role;  // Role
  std::atomic<uint32_t> flags;             // reserved, zero
  std::atomic<uint64_t> term;
  // Lease clock ns until which this node's leader lease holds, exactly as the election computed
  // it; 0 when none.
  std::atomic<uint64_t> lease_until_ns;
  AtomicText<kIdBytes> self_id;
  AtomicText<kIdBytes> leader_id;
  AtomicText<kAddressBytes> leader_peer_address;
  AtomicText<kAddressBytes> leader_app_address;
};

static_assert(sizeof(Record) % 64 == 0, "Record must fill whole cache lines");

// The layout, pinned: readers and writers in different processes agree on nothing else.
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
                  std::atomic<uint64_t>::is_always_lock_free,
              "a lock-based atomic is not shared between processes");
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<uint64_t>) == 8,
              "atomics must be their plain value and nothing more");
static_assert(std::is_standard_layout_v<Record>, "offsetof needs a standard-layout Record");
static_assert(sizeof(Record) == 768 && alignof(Record) == 64, "Record size changed");
static_assert(offsetof(Record, magic) == 0 && offsetof(Record, layout_version) == 8 &&
                  offsetof(Record, record_size) == 12 && offsetof(Record, agent_pid) == 16 &&
                  offsetof(Record, agent_lock_kind) == 20 && offsetof(Record, stale_after_ns) == 24,
              "Record header moved");
static_assert(offsetof(Record, seq) == 64 && offsetof(Record, change_counter) == 68 &&
                  offsetof(Record, waiters) == 72 && offsetof(Record, reserved1) == 76,
              "Record sequence line moved");
static_assert(offsetof(Record, liveness_ns) == 128 && offsetof(Record, agent_lock) == 136,
              "Record liveness line moved");
// glibc's pthread_mutex_t: the futex word comes first, and the mutex fits the liveness line.
static_assert(sizeof(pthread_mutex_t) == 40 && offsetof(pthread_mutex_t, __data.__lock) == 0,
              "the agent lock's futex word is not where readers look");
static_assert(offsetof(Record, role) == 192 && offsetof(Record, flags) == 196 &&
                  offsetof(Record, term) == 200 && offsetof(Record, lease_until_ns) == 208 &&
                  offsetof(Record, self_id) == 216 && offsetof(Record, leader_id) == 280 &&
                  offsetof(Record, leader_peer_address) == 344 &&
                  offsetof(Record, leader_app_address) == 536,
              "Record payload moved");

// The app's presence record, in a segment of its own named "<agent segment>.app": written by the
// app (AppPresence, app_presence.h), read by its agent, so that leadership follows a live app.
// The app holds `life` for as long as it runs (a killed app's is owner-died at once) and stores
// the lease clock in `stamp_ns` every period (a hung app's ages). `magic` is stored last.
inline constexpr uint64_t kAppMagic = 0x31505041'46415349ULL;  // "ISAFAPP1" little-endian
inline constexpr uint32_t kAppLayoutVersion = 1;

struct alignas(64) AppRecord {
  std::atomic<uint64_t> magic;
  uint32_t layout_version;
  uint32_t app_pid;
  std::atomic<uint64_t> stamp_ns;  // lease clock ns of the app's latest stamp
  uint64_t period_ns;              // how often the app stamps
  uint8_t reserved[32];
  pthread_mutex_t life;  // robust, process-shared, held by the app for its life
  uint8_t reserved2[24];
};

static_assert(std::is_standard_layout_v<AppRecord> && sizeof(AppRecord) == 128 &&
                  offsetof(AppRecord, stamp_ns) == 16 && offsetof(AppRecord, life) == 64,
              "AppRecord moved");

}  // namespace instaface::shm

#endif  // INSTAFACE_SHM_LAYOUT_H_

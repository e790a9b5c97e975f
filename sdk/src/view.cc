#include "instaface/view.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clocks.h"
#include "futex.h"
#include "instaface/shm_layout.h"
#include "life_lock.h"
#include "record_access.h"
#include "view_access.h"

namespace instaface {

namespace {

using internal::OpenFailure;

constexpr auto kAcquire = std::memory_order_acquire;

// Without a writable mapping a reader cannot register as a sleeper, so the writer may skip
// the wake; such readers sleep in slices this long instead.
constexpr uint64_t kUnregisteredSliceNs = 1000000;

// Where a sleeper cannot be woken by the agent's death (no futex_waitv), it looks for it this
// often: a bound on the delay for a few wakeups a second.
constexpr uint64_t kDeathPollSliceNs = 10000000;

std::string Quoted(const std::string& name) { return "shared-memory segment '" + name + "'"; }

}  // namespace

// The segment's mappings: the record read-only (a stray write in the app cannot corrupt what
// other readers see), and, when permitted, the same page writable for two words only: the
// `waiters` count and the FUTEX_WAITERS bit of the life lock (View::Wait).
struct View::Mapping {
  void* read_only = MAP_FAILED;
  void* writable = MAP_FAILED;
  ~Mapping() {
    if (read_only != MAP_FAILED) munmap(read_only, sizeof(shm::Record));
    if (writable != MAP_FAILED) munmap(writable, sizeof(shm::Record));
  }
};

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

Result<View> internal::ViewAccess::Open(const std::string& shm_name, OpenFailure* failure) {
  auto fail = [failure](OpenFailure why, std::string message) {
    if (failure != nullptr) *failure = why;
    return Result<View>::Error(std::move(message));
  };
  if (failure != nullptr) *failure = OpenFailure::kNone;
  const std::string name = PosixShmName(shm_name);
  if (name.empty()) {
    return fail(OpenFailure::kInvalidArgument,
                "invalid shared-memory segment name '" + shm_name +
                    "': expected one path component of 1 to 254 characters");
  }

  bool writable = true;
  int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    writable = false;
    fd = shm_open(name.c_str(), O_RDONLY | O_CLOEXEC, 0);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return fail(OpenFailure::kNotFound,
                  Quoted(name) +
                      " does not exist: is instaface-agent running and publishing "
                      "under that name?");
    }
    return fail(OpenFailure::kSystem, "cannot open " + Quoted(name) + ": " + std::strerror(err));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return fail(OpenFailure::kSystem, "cannot stat " + Quoted(name) + ": " + std::strerror(err));
  }
  if (static_cast<uint64_t>(st.st_size) < sizeof(shm::Record)) {
    close(fd);
    return fail(OpenFailure::kIncompatible,
                Quoted(name) + " holds " + std::to_string(st.st_size) + " bytes, less than the " +
                    std::to_string(sizeof(shm::Record)) +
                    "-byte instaface record: truncated, or not an instaface segment");
  }

  auto mapping = std::make_shared<View::Mapping>();
  mapping->read_only = mmap(nullptr, sizeof(shm::Record), PROT_READ, MAP_SHARED, fd, 0);
  if (mapping->read_only == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return fail(OpenFailure::kSystem, "cannot map " + Quoted(name) + ": " + std::strerror(err));
  }
  if (writable) {
    mapping->writable =
        mmap(nullptr, sizeof(shm::Record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  close(fd);  // the mappings keep the segment

  const auto* record = static_cast<const shm::Record*>(mapping->read_only);
  if (record->magic != shm::kMagic) {
    return fail(OpenFailure::kIncompatible,
                Quoted(name) + " is not an instaface segment (wrong magic number)");
  }
  if (record->layout_version != shm::kLayoutVersion) {
    return fail(OpenFailure::kIncompatible,
                Quoted(name) + " has layout version " + std::to_string(record->layout_version) +
                    " but this libinstaface reads version " + std::to_string(shm::kLayoutVersion) +
                    ": upgrade the older side");
  }
  if (record->record_size != sizeof(shm::Record)) {
    return fail(OpenFailure::kIncompatible, Quoted(name) + " has a " +
                                                std::to_string(record->record_size) +
                                                "-byte record but this libinstaface expects " +
                                                std::to_string(sizeof(shm::Record)) + " bytes");
  }
  shm::Record* writable_record = nullptr;
  if (mapping->writable != MAP_FAILED) {
    writable_record = static_cast<shm::Record*>(mapping->writable);
  }
  return View(record, writable_record, record->stale_after_ns, std::move(mapping));
}

Result<View> View::Open(const std::string& shm_name) {
  return internal::ViewAccess::Open(shm_name, nullptr);
}

View View::FromRecord(const shm::Record* record, std::shared_ptr<const void> owner) {
  // An in-process record is ordinary writable memory; only this interface is const.
  auto* writable = const_cast<shm::Record*>(record);
  return View(record, writable, record->stale_after_ns, std::move(owner));
}

View::View(const shm::Record* record, shm::Record* writable, uint64_t stale_after_ns,
           std::shared_ptr<const void> owner)
    : record_(record),
      writable_(writable),
      stale_after_ns_(stale_after_ns),
      owner_(std::move(owner)) {}

View::View(View&&) noexcept = default;
View& View::operator=(View&&) noexcept = default;
View::~View() = default;

namespace {

// The fields leadership() decides on, from one stable version of the payload.
struct LeaseFields {
  uint32_t role;
  uint64_t term;
  uint64_t lease_until;
};

inline void LoadLeaseFields(const shm::Record& r, LeaseFields* out) {
  out->role = r.role.load(kAcquire);
  out->term = r.term.load(kAcquire);
  out->lease_until = r.lease_until_ns.load(kAcquire);
}

// The checks after a stable read of the fields: a leader's lease, judged by the clock read now,
// and an agent that is alive and has not let its stamp go stale.
inline bool LeaseHolds(const shm::Record& r, uint64_t stale_after_ns, const LeaseFields& f) {
  if (f.role != static_cast<uint32_t>(shm::Role::kLeader)) return false;
  const uint64_t now = internal::LeaseNowNs();
  if (now >= f.lease_until) return false;
  if (internal::IsStale(now, r.liveness_ns.load(kAcquire), stale_after_ns)) return false;
  return !internal::AgentGone(r);
}

// The seqlock loop, for when the one-shot read in ReadLeadership met a writer mid-update.
__attribute__((noinline, cold)) bool ReadLeadershipContended(const shm::Record& r,
                                                             uint64_t stale_after_ns,
                                                             Leadership* out) {
  for (;;) {
    LeaseFields f;
    uint32_t version = 0;
    if (!internal::SeqlockRead(
            r, stale_after_ns, [&] { LoadLeaseFields(r, &f); }, &version)) {
      return false;
    }
    if (!LeaseHolds(r, stale_after_ns, f)) return false;
    if (internal::SeqStill(r, version)) {
      out->term = f.term;
      out->lease_until_ns = f.lease_until;
      return true;
    }
  }
}

// leadership() and is_leader(): one read of role, term and lease end, then the clock. The
// clock is read after the payload, so a read that waited for the writer (or was preempted) is
// judged at the time it finished, not before; a follower, the answer on most nodes, needs no
// clock at all. A yes is given only if no publish came between the payload and the life lock
// (SeqStill): a dead agent's lease must not pass on the life of the agent that replaces it.
inline bool ReadLeadership(const shm::Record& r, uint64_t stale_after_ns, Leadership* out) {
  LeaseFields f;
  // One pass of the seqlock inline; the retry loop lives out of line.
  const uint32_t s1 = r.seq.load(kAcquire);
  LoadLeaseFields(r, &f);
  const uint32_t s2 = r.seq.load(std::memory_order_relaxed);
  if (__builtin_expect((s1 & 1) != 0 || s1 != s2, 0)) {
    return ReadLeadershipContended(r, stale_after_ns, out);
  }
  if (!LeaseHolds(r, stale_after_ns, f)) return false;
  if (__builtin_expect(!internal::SeqStill(r, s1), 0)) {
    return ReadLeadershipContended(r, stale_after_ns, out);
  }
  out->term = f.term;
  out->lease_until_ns = f.lease_until;
  return true;
}

}  // namespace

std::optional<Leadership> View::leadership() const noexcept {
  Leadership lead;
  if (!ReadLeadership(*record_, stale_after_ns_, &lead)) return std::nullopt;
  return lead;
}

bool View::is_leader() const noexcept {
  Leadership unused;
  return ReadLeadership(*record_, stale_after_ns_, &unused);
}

// How the reader fills a Snapshot's texts: straight from the record's words into the text's
// own bytes, with no copy in between.
struct internal::InlineTextAccess {
  // Under the seqlock: copies the words in use into the text's bytes and returns the text's
  // length, for SetSize once the copy is known to be stable. Until then the text may hold torn
  // bytes, which is why no other thread may use a Snapshot that is being filled.
  template <size_t Bytes>
  static size_t Load(const shm::AtomicText<Bytes>& from, InlineText<Bytes>* to) {
    return LoadUsedText(from, to->bytes_);
  }
  // Once the copy is stable: the length, and the NUL after it (a text that fills the field
  // has none of its own).
  template <size_t Bytes>
  static void SetSize(InlineText<Bytes>* text, size_t size) {
    text->bytes_[size] = '\0';
    text->size_ = static_cast<typename InlineText<Bytes>::Size>(size);
  }
};

Snapshot View::snapshot() const noexcept {
  Snapshot out;
  snapshot(&out);
  return out;
}

void View::snapshot(Snapshot* into) const noexcept {
  using Texts = internal::InlineTextAccess;
  Snapshot& out = *into;
  const shm::Record& r = *record_;
  // The counter first: a publish racing with this copy then shows up as a change the caller
  // has not seen yet (one extra wakeup), never as a change it has seen but missed.
  out.change_counter = r.change_counter.load(kAcquire);
  size_t self_id_size = 0, leader_id_size = 0, peer_size = 0, app_size = 0;
  const internal::PayloadFacts facts = internal::ReadPayload(r, stale_after_ns_, [&] {
    self_id_size = Texts::Load(r.self_id, &out.self_id);
    leader_id_size = Texts::Load(r.leader_id, &out.leader_id);
    peer_size = Texts::Load(r.leader_peer_address, &out.leader_peer_address);
    app_size = Texts::Load(r.leader_app_address, &out.leader_app_address);
  });
  out.role = facts.role;
  out.term = facts.term;
  out.lease_until_ns = facts.lease_until_ns;
  out.lease_valid = facts.lease_valid;
  out.stale = facts.stale;
  if (!facts.stable) {
    // A writer that died mid-update left nothing trustworthy: what a fresh Snapshot says.
    out.self_id.clear();
    out.leader_id.clear();
    out.leader_peer_address.clear();
    out.leader_app_address.clear();
    return;
  }
  Texts::SetSize(&out.self_id, self_id_size);
  Texts::SetSize(&out.leader_id, leader_id_size);
  Texts::SetSize(&out.leader_peer_address, peer_size);
  Texts::SetSize(&out.leader_app_address, app_size);
}

namespace {

// The deaths this thread has been told of by WaitForChange, so that each is reported once per
// thread (view.h). An entry is the record, its agent's pid and the counter that agent left:
// a restarted agent publishes, and a new counter is a new entry. A thread that waits on more
// records than this is told of a death again at worst, never less.
struct ToldDeath {
  const shm::Record* record;
  uint32_t agent_pid;
  uint32_t counter;
};
constexpr size_t kToldDeaths = 4;

// A new agent rewrites agent_pid when it takes the segment over, maybe while this reads it.
uint32_t AgentPid(const shm::Record& record) {
  return __atomic_load_n(&record.agent_pid, __ATOMIC_RELAXED);
}

thread_local ToldDeath told_deaths[kToldDeaths];
thread_local size_t told_next;

bool ThreadWasTold(const shm::Record* record, uint32_t counter) {
  for (const ToldDeath& told : told_deaths) {
    if (told.record == record && told.agent_pid == AgentPid(*record) && told.counter == counter) {
      return true;
    }
  }
  return false;
}

void RememberTold(const shm::Record* record, uint32_t counter) {
  told_deaths[told_next] = ToldDeath{record, AgentPid(*record), counter};
  told_next = (told_next + 1) % kToldDeaths;
}

}  // namespace

uint32_t View::WaitForChange(uint32_t last_seen, std::chrono::nanoseconds timeout) const {
  return WaitForChangeOrDeath(last_seen, timeout).counter;
}

View::WaitResult View::WaitForChangeOrDeath(uint32_t last_seen,
                                            std::chrono::nanoseconds timeout) const {
  const WaitResult result =
      Wait(last_seen, timeout, nullptr, /*death_ends_wait=*/!ThreadWasTold(record_, last_seen));
  if (result.end == WaitEnd::kAgentGone) RememberTold(record_, result.counter);
  return result;
}

// Waking on the agent's death. A sleeper must wake for a publish (a FUTEX_WAKE on
// change_counter, from a writer that knows nothing of this) and for the death, so it waits on
// two words at once with futex_waitv: change_counter and the life lock's word. Nothing wakes a
// futex word merely because its value changes, and the kernel's only wake at a robust mutex
// holder's death is handle_futex_death's FUTEX_WAKE of one sleeper on the lock's word, issued
// only if FUTEX_WAITERS is set in it. So a sleeper first sets that bit (ArmOwnerDeathWake: the
// same as a blocked pthread_mutex_lock, which the holder's unlock and the kernel both expect),
// then sleeps expecting the armed value; a death after the arming either fails that check (the
// word already says owner-died) or wakes one sleeper, and that one, finding the agent gone,
// wakes every sleeper on change_counter (all of ours, in every process, are queued there too).
// It passes the wake on even when it leaves for another reason at the same moment (a publish,
// its timeout, an interrupt), so the kernel's one wake is never swallowed.
//
// Rejected: a sleeper on the lock word alone (a publish does not wake it, and readers must keep
// working with agents that only wake change_counter); readers incrementing change_counter at a
// death (it is the writer's word, and a read-only reader could not); a helper thread per process
// blocked on the lock word (a thread in every app, for what futex_waitv does in the sleeper).
View::WaitResult View::Wait(uint32_t last_seen, std::chrono::nanoseconds timeout,
                            const std::atomic<bool>* interrupt, bool death_ends_wait) const {
  const std::atomic<uint32_t>& counter = record_->change_counter;
  uint32_t current = counter.load(kAcquire);
  if (current != last_seen) return {current, WaitEnd::kChanged};
  if (timeout.count() <= 0) return {current, WaitEnd::kTimeout};
  const bool watch_agent =
      death_ends_wait && record_->agent_lock_kind == shm::kAgentLockRobustMutex;
  const void* lock_word = &record_->agent_lock.__data.__lock;

  const uint64_t start = internal::MonotonicNowNs();
  const uint64_t span = static_cast<uint64_t>(timeout.count());
  const uint64_t deadline = span > UINT64_MAX - start ? UINT64_MAX : start + span;
  // Registration, then the check: with both sides sequentially consistent, either the writer's
  // load of `waiters` sees us (and wakes), or our load of the counter sees its increment. The
  // kernel re-checks the word inside FUTEX_WAIT, closing the gap before we sleep.
  if (writable_ != nullptr) writable_->waiters.fetch_add(1, std::memory_order_seq_cst);
  WaitEnd end;
  bool may_hold_the_death_wake = false;
  for (;;) {
    current = counter.load(std::memory_order_seq_cst);
    if (current != last_seen) {
      end = WaitEnd::kChanged;
      break;
    }
    if (interrupt != nullptr && interrupt->load(std::memory_order_seq_cst)) {
      end = WaitEnd::kInterrupted;
      break;
    }
    const uint32_t word = watch_agent ? internal::LifeLockWord(record_->agent_lock) : 0;
    if (watch_agent && internal::OwnerGoneWord(word)) {
      end = WaitEnd::kAgentGone;
      break;
    }
    const uint64_t now = internal::MonotonicNowNs();
    if (now >= deadline) {
      end = WaitEnd::kTimeout;
      break;
    }
    uint64_t until = deadline;
    if (writable_ == nullptr && deadline - now > kUnregisteredSliceNs) {
      until = now + kUnregisteredSliceNs;
    }
    if (watch_agent && writable_ != nullptr && internal::FutexWaitEitherUsable()) {
      const uint32_t armed = (word & FUTEX_WAITERS) != 0
                                 ? word
                                 : internal::ArmOwnerDeathWake(&writable_->agent_lock, word);
      if (armed != (word | FUTEX_WAITERS)) continue;  // the holder died or changed: look again
      if (internal::FutexWaitEitherUntil(&counter, last_seen, lock_word, armed, until)) {
        may_hold_the_death_wake = true;
        continue;
      }
      // No futex_waitv here after all: fall back to the slices below.
    }
    if (watch_agent && until - now > kDeathPollSliceNs) until = now + kDeathPollSliceNs;
    internal::FutexWaitUntil(&counter, last_seen, until);
  }
  if (writable_ != nullptr) writable_->waiters.fetch_sub(1, std::memory_order_seq_cst);
  if (may_hold_the_death_wake && internal::AgentGone(*record_)) {
    internal::FutexWakeAll(&counter);
  }
  return {current, end};
}

}  // namespace instaface

#include "instaface/view.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clocks.h"
#include "futex.h"
#include "instaface/shm_layout.h"
#include "record_access.h"
#include "view_access.h"

namespace instaface {

namespace {

using internal::OpenFailure;

constexpr auto kAcquire = std::memory_order_acquire;

// Without a writable mapping a reader cannot register as a sleeper, so the writer may skip
// the wake; such readers sleep in slices this long instead.
constexpr uint64_t kUnregisteredSliceNs = 1000000;

std::string Quoted(const std::string& name) { return "shared-memory segment '" + name + "'"; }

}  // namespace

// The segment's mappings: the record read-only (a stray write in the app cannot corrupt what
// other readers see), and, when permitted, the same page writable for the `waiters` word alone.
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
  std::atomic<uint32_t>* waiters = nullptr;
  if (mapping->writable != MAP_FAILED) {
    waiters = &static_cast<shm::Record*>(mapping->writable)->waiters;
  }
  return View(record, waiters, record->stale_after_ns, std::move(mapping));
}

Result<View> View::Open(const std::string& shm_name) {
  return internal::ViewAccess::Open(shm_name, nullptr);
}

View View::FromRecord(const shm::Record* record, std::shared_ptr<const void> owner) {
  // An in-process record is ordinary writable memory; only this interface is const.
  auto* waiters = const_cast<std::atomic<uint32_t>*>(&record->waiters);
  return View(record, waiters, record->stale_after_ns, std::move(owner));
}

View::View(const shm::Record* record, std::atomic<uint32_t>* waiters, uint64_t stale_after_ns,
           std::shared_ptr<const void> owner)
    : record_(record),
      waiters_(waiters),
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

// The seqlock loop, for when the one-shot read in ReadLeadership met a writer mid-update.
__attribute__((noinline, cold)) bool LoadLeaseFieldsContended(const shm::Record& r,
                                                              uint64_t stale_after_ns,
                                                              LeaseFields* out) {
  return internal::SeqlockRead(r, stale_after_ns, [&] { LoadLeaseFields(r, out); });
}

// leadership() and is_leader(): one read of role, term and lease end, then the clock. The
// clock is read after the payload, so a read that waited for the writer (or was preempted) is
// judged at the time it finished, not before; a follower, the answer on most nodes, needs no
// clock at all.
inline bool ReadLeadership(const shm::Record& r, uint64_t stale_after_ns, Leadership* out) {
  LeaseFields f;
  // One pass of the seqlock inline; the retry loop lives out of line.
  const uint32_t s1 = r.seq.load(kAcquire);
  LoadLeaseFields(r, &f);
  const uint32_t s2 = r.seq.load(std::memory_order_relaxed);
  if (__builtin_expect((s1 & 1) != 0 || s1 != s2, 0) &&
      !LoadLeaseFieldsContended(r, stale_after_ns, &f)) {
    return false;
  }
  if (f.role != static_cast<uint32_t>(shm::Role::kLeader)) return false;
  const uint64_t now = internal::LeaseNowNs();
  if (now >= f.lease_until) return false;
  if (internal::IsStale(now, r.liveness_ns.load(kAcquire), stale_after_ns)) return false;
  if (internal::AgentGone(r)) return false;
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

Snapshot View::snapshot() const {
  Snapshot out;
  // The counter first: a publish racing with this copy then shows up as a change the caller
  // has not seen yet (one extra wakeup), never as a change it has seen but missed.
  out.change_counter = record_->change_counter.load(kAcquire);
  uint32_t role = 0;
  uint64_t term = 0;
  uint64_t lease_until = 0;
  uint64_t self_id[shm::kIdBytes / 8];
  uint64_t leader_id[shm::kIdBytes / 8];
  uint64_t peer[shm::kAddressBytes / 8];
  uint64_t app[shm::kAddressBytes / 8];
  const bool stable = internal::SeqlockRead(*record_, stale_after_ns_, [&] {
    role = record_->role.load(kAcquire);
    term = record_->term.load(kAcquire);
    lease_until = record_->lease_until_ns.load(kAcquire);
    internal::LoadText(record_->self_id, self_id);
    internal::LoadText(record_->leader_id, leader_id);
    internal::LoadText(record_->leader_peer_address, peer);
    internal::LoadText(record_->leader_app_address, app);
  });
  const uint64_t now = internal::LeaseNowNs();
  out.stale = internal::IsStale(now, record_->liveness_ns.load(kAcquire), stale_after_ns_) ||
              internal::AgentGone(*record_);
  if (!stable) {
    out.stale = true;  // a writer that died mid-update left nothing trustworthy
    return out;
  }
  out.role =
      role <= static_cast<uint32_t>(Role::kLeader) ? static_cast<Role>(role) : Role::kFollower;
  out.term = term;
  out.lease_until_ns = lease_until;
  out.lease_valid = out.role == Role::kLeader && now < lease_until;
  out.self_id = internal::TextToString<shm::kIdBytes>(self_id);
  out.leader_id = internal::TextToString<shm::kIdBytes>(leader_id);
  out.leader_peer_address = internal::TextToString<shm::kAddressBytes>(peer);
  out.leader_app_address = internal::TextToString<shm::kAddressBytes>(app);
  return out;
}

uint32_t View::WaitForChange(uint32_t last_seen, std::chrono::nanoseconds timeout) const {
  return WaitForChangeOrInterrupt(last_seen, timeout, nullptr);
}

uint32_t View::WaitForChangeOrInterrupt(uint32_t last_seen, std::chrono::nanoseconds timeout,
                                        const std::atomic<bool>* interrupt) const {
  const std::atomic<uint32_t>& counter = record_->change_counter;
  uint32_t current = counter.load(kAcquire);
  if (current != last_seen || timeout.count() <= 0) return current;

  const uint64_t start = internal::MonotonicNowNs();
  const uint64_t span = static_cast<uint64_t>(timeout.count());
  const uint64_t deadline = span > UINT64_MAX - start ? UINT64_MAX : start + span;
  // Registration, then the check: with both sides sequentially consistent, either the writer's
  // load of `waiters` sees us (and wakes), or our load of the counter sees its increment. The
  // kernel re-checks the word inside FUTEX_WAIT, closing the gap before we sleep.
  if (waiters_ != nullptr) waiters_->fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    current = counter.load(std::memory_order_seq_cst);
    if (current != last_seen) break;
    if (interrupt != nullptr && interrupt->load(std::memory_order_seq_cst)) break;
    const uint64_t now = internal::MonotonicNowNs();
    if (now >= deadline) break;
    uint64_t until = deadline;
    if (waiters_ == nullptr && deadline - now > kUnregisteredSliceNs) {
      until = now + kUnregisteredSliceNs;
    }
    internal::FutexWaitUntil(&counter, last_seen, until);
  }
  if (waiters_ != nullptr) waiters_->fetch_sub(1, std::memory_order_seq_cst);
  return current;
}

}  // namespace instaface

#include "instaface/shm_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "clocks.h"
#include "futex.h"
#include "instaface/shm_layout.h"
#include "life_lock.h"
#include "record_access.h"
#include "view_access.h"

namespace instaface::shm {

namespace {

constexpr auto kRelease = std::memory_order_release;
// glibc's shm_open keeps segments here; renaming within it is how a complete segment appears
// under its name in one step.
constexpr char kShmDirectory[] = "/dev/shm";

std::string Quoted(const std::string& name) { return "shared-memory segment '" + name + "'"; }

std::string Errno(int err) { return std::strerror(err); }

bool HeaderMatches(const Record& record) {
  return record.magic == kMagic && record.layout_version == kLayoutVersion &&
         record.record_size == sizeof(Record);
}

// A previous agent still publishes if its stamp is fresh and its process exists. Our own pid
// means a restart inside a fresh pid namespace (the sidecar is often pid 1): not alive.
bool OtherAgentAlive(const Record& record) {
  if (internal::IsStale(internal::LeaseNowNs(), record.liveness_ns.load(std::memory_order_acquire),
                        record.stale_after_ns)) {
    return false;
  }
  const pid_t pid = static_cast<pid_t>(record.agent_pid);
  if (pid <= 0 || pid == getpid()) return false;
  return kill(pid, 0) == 0 || errno == EPERM;
}

// A fresh record's life lock: robust (the kernel marks it when its owner dies) and shared
// between processes.
}  // namespace

struct Writer::Segment {
  void* mapping = MAP_FAILED;    // shared-memory segment, or
  std::unique_ptr<Record> heap;  // an in-process record
  dev_t device = 0;              // identity of the segment, so Unlink removes only ours
  ino_t inode = 0;
  std::unique_ptr<internal::LifeLock> life;  // the record's life lock, released before unmapping
  ~Segment() {
    life.reset();
    if (mapping != MAP_FAILED) munmap(mapping, sizeof(Record));
  }
};

Writer::Writer(std::shared_ptr<Segment> segment, Record* record, std::string name)
    : segment_(std::move(segment)), record_(record), name_(std::move(name)) {}
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;
Writer::~Writer() = default;

Result<Writer> Writer::Create(const std::string& shm_name, mode_t mode,
                              std::chrono::nanoseconds stale_after) {
  const std::string name = internal::PosixShmName(shm_name);
  if (name.empty()) {
    return Result<Writer>::Error("invalid shared-memory segment name '" + shm_name +
                                 "': expected one path component of 1 to 254 characters");
  }
  if (mode != 0600 && mode != 0660) {
    return Result<Writer>::Error("mode of " + Quoted(name) + " must be 0600 or 0660");
  }
  if (stale_after.count() <= 0) {
    return Result<Writer>::Error("stale_after of " + Quoted(name) + " must be positive");
  }
  const auto stale_after_ns = static_cast<uint64_t>(stale_after.count());
  auto segment = std::make_shared<Segment>();

  // A compatible leftover is taken over in place: apps that map it keep working.
  int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0 && errno != ENOENT) {
    return Result<Writer>::Error("cannot open existing " + Quoted(name) + ": " + Errno(errno));
  }
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) >= sizeof(Record)) {
      void* mapping = mmap(nullptr, sizeof(Record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (mapping != MAP_FAILED) {
        auto* record = static_cast<Record*>(mapping);
        // A live agent keeps its segment whatever its settings: a second agent started on the
        // same name must fail, not replace the first one's segment under its readers.
        if (HeaderMatches(*record) && OtherAgentAlive(*record)) {
          const uint32_t pid = record->agent_pid;
          munmap(mapping, sizeof(Record));
          close(fd);
          return Result<Writer>::Error(Quoted(name) + " is in use by a live agent (pid " +
                                       std::to_string(pid) +
                                       "); if it is gone, retry after stale_after");
        }
        if (HeaderMatches(*record) && record->stale_after_ns == stale_after_ns &&
            record->agent_lock_kind == kAgentLockRobustMutex) {
          auto refuse = [&](const std::string& why) {
            munmap(mapping, sizeof(Record));
            close(fd);
            return Result<Writer>::Error(why);
          };
          const std::string in_use = Quoted(name) + " is in use by a live agent (pid " +
                                     std::to_string(record->agent_pid) +
                                     ": it holds the segment's life lock)";
          // One agent at a time takes a leftover over (the lock goes with the fd, closed below):
          // the steps up to the life lock are ours alone.
          if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            return refuse(errno == EWOULDBLOCK
                              ? Quoted(name) + " is being taken over by another agent"
                              : "cannot lock " + Quoted(name) + ": " + Errno(errno));
          }
          if (!internal::OwnerGone(record->agent_lock)) return refuse(in_use);
          segment->mapping = mapping;
          segment->device = st.st_dev;
          segment->inode = st.st_ino;
          Writer writer(segment, record, name);
          // The dead agent's lease may still run, and its readers hold off only because its
          // life lock says owner-died. Withdraw the claim before taking the lock: the moment
          // the lock is ours, a reader sees a live holder, and the record must by then say
          // nobody leads (a reader that paired the old payload with the new holder rereads:
          // SeqStill in record_access.h).
          writer.StampLiveness(0);
          PublishedState state;
          state.term = record->term.load(std::memory_order_relaxed);  // terms never go back
          writer.Publish(state);
          int error = 0;
          auto life = internal::LifeLock::Take(&record->agent_lock, &error);
          if (!life) {
            close(fd);
            // EBUSY now: a process that takes leftovers without the flock (an older agent)
            // took the lock after the check above; its pid is not in the record yet.
            return Result<Writer>::Error(
                error == EBUSY
                    ? Quoted(name) + " was taken over by another agent meanwhile"
                    : "cannot take the life lock of " + Quoted(name) + ": " + Errno(error));
          }
          fchmod(fd, mode);  // best effort: the segment may belong to another user
          close(fd);
          segment->life = std::move(life);
          record->agent_pid = static_cast<uint32_t>(getpid());
          writer.StampLiveness();
          return writer;
        }
        munmap(mapping, sizeof(Record));
      }
    }
    close(fd);
  }

  // Build a fresh segment under a temporary name, then rename it over the final one.
  static std::atomic<uint32_t> sequence{0};
  const std::string temporary =
      name + "." + std::to_string(getpid()) + "." + std::to_string(sequence.fetch_add(1)) + ".tmp";
  fd = shm_open(temporary.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return Result<Writer>::Error("cannot create " + Quoted(temporary) + ": " + Errno(errno));
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    close(fd);
    shm_unlink(temporary.c_str());
    return Result<Writer>::Error(what + " " + Quoted(name) + ": " + Errno(err));
  };
  if (fchmod(fd, mode) != 0) return fail("cannot set the mode of");  // the umask cut it
  if (ftruncate(fd, sizeof(Record)) != 0) return fail("cannot size");
  struct stat st;
  if (fstat(fd, &st) != 0) return fail("cannot stat");
  segment->mapping = mmap(nullptr, sizeof(Record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (segment->mapping == MAP_FAILED) return fail("cannot map");
  segment->device = st.st_dev;
  segment->inode = st.st_ino;
  close(fd);

  auto* record = static_cast<Record*>(segment->mapping);  // zero-filled by ftruncate
  record->magic = kMagic;
  record->layout_version = kLayoutVersion;
  record->record_size = sizeof(Record);
  record->agent_pid = static_cast<uint32_t>(getpid());
  record->stale_after_ns = stale_after_ns;
  int lock_error = EINVAL;
  if (internal::InitLifeLock(&record->agent_lock)) {
    segment->life = internal::LifeLock::Take(&record->agent_lock, &lock_error);
  }
  if (!segment->life) {
    shm_unlink(temporary.c_str());  // the fd is closed; the mapping goes with `segment`
    return Result<Writer>::Error("cannot take the life lock of " + Quoted(name) + ": " +
                                 Errno(lock_error));
  }
  record->agent_lock_kind = kAgentLockRobustMutex;
  Writer writer(std::move(segment), record, name);
  writer.Publish(PublishedState{});
  writer.StampLiveness();

  const std::string from = std::string(kShmDirectory) + temporary;
  const std::string to = std::string(kShmDirectory) + name;
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    const int err = errno;
    shm_unlink(temporary.c_str());
    return Result<Writer>::Error("cannot publish " + Quoted(name) + " (rename in " + kShmDirectory +
                                 "): " + Errno(err));
  }
  return writer;
}

Writer Writer::CreateInProcess(std::chrono::nanoseconds stale_after) {
  auto segment = std::make_shared<Segment>();
  segment->heap.reset(new Record());  // value-initialized: all zero
  Record* record = segment->heap.get();
  record->magic = kMagic;
  record->layout_version = kLayoutVersion;
  record->record_size = sizeof(Record);
  record->agent_pid = static_cast<uint32_t>(getpid());
  record->stale_after_ns = stale_after.count() > 0 ? static_cast<uint64_t>(stale_after.count()) : 1;
  Writer writer(std::move(segment), record, std::string());
  writer.Publish(PublishedState{});
  writer.StampLiveness();
  return writer;
}

void Writer::Publish(const PublishedState& state) {
  Record& r = *record_;
  uint32_t seq = r.seq.load(std::memory_order_relaxed);
  seq += seq & 1;  // a predecessor that died mid-update left it odd
  r.seq.store(seq + 1, std::memory_order_relaxed);
  r.role.store(static_cast<uint32_t>(state.role), kRelease);
  r.flags.store(0, kRelease);
  r.term.store(state.term, kRelease);
  r.lease_until_ns.store(state.lease_until_ns, kRelease);
  internal::StoreText(r.self_id, state.self_id);
  internal::StoreText(r.leader_id, state.leader_id);
  internal::StoreText(r.leader_peer_address, state.leader_peer_address);
  internal::StoreText(r.leader_app_address, state.leader_app_address);
  r.seq.store(seq + 2, kRelease);

  // Pairs with View::WaitForChange: both sides sequentially consistent, so a sleeper either
  // is counted here or sees the new counter before it sleeps.
  r.change_counter.fetch_add(1, std::memory_order_seq_cst);
  if (r.waiters.load(std::memory_order_seq_cst) != 0) internal::FutexWakeAll(&r.change_counter);
}

void Writer::StampLiveness(uint64_t lease_clock_now_ns) {
  record_->liveness_ns.store(lease_clock_now_ns, kRelease);
}

void Writer::StampLiveness() { StampLiveness(internal::LeaseNowNs()); }

Status Writer::Unlink() {
  if (name_.empty()) return Status::Ok();
  struct stat st;
  const std::string path = std::string(kShmDirectory) + name_;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Error("cannot stat " + Quoted(name_) + ": " + Errno(errno));
  }
  if (st.st_dev != segment_->device || st.st_ino != segment_->inode) {
    return Status::Ok();  // another agent has replaced it since: not ours to remove
  }
  if (shm_unlink(name_.c_str()) != 0 && errno != ENOENT) {
    return Status::Error("cannot unlink " + Quoted(name_) + ": " + Errno(errno));
  }
  return Status::Ok();
}

View Writer::view() const {
  return internal::ViewAccess::Make(record_, record_, record_->stale_after_ns, segment_);
}

}  // namespace instaface::shm

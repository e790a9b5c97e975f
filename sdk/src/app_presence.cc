#include "instaface/app_presence.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "instaface/clock.h"
#include "instaface/shm_layout.h"
#include "life_lock.h"
#include "record_access.h"

namespace instaface {

namespace {

std::string PresenceName(const std::string& agent_segment) {
  const std::string agent = internal::PosixShmName(agent_segment);
  if (agent.empty()) return std::string();
  return internal::PosixShmName(agent + ".app");
}

}  // namespace

struct AppPresence::State {
  std::string name;
  shm::AppRecord* record = nullptr;
  std::unique_ptr<internal::LifeLock> life;
  std::thread stamper;
  std::mutex mu;
  std::condition_variable stop_cv;
  bool stopping = false;  // under mu

  ~State() {
    if (stamper.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
      }
      stop_cv.notify_one();
      stamper.join();
    }
    life.reset();  // released: the agent reads the app as gone from now on
    if (record != nullptr) munmap(record, sizeof(shm::AppRecord));
  }
};

AppPresence::AppPresence(std::unique_ptr<State> state) : state_(std::move(state)) {}
AppPresence::~AppPresence() = default;
const std::string& AppPresence::name() const { return state_->name; }

Result<std::unique_ptr<AppPresence>> AppPresence::Register(const std::string& agent_segment,
                                                           std::chrono::milliseconds period) {
  using R = Result<std::unique_ptr<AppPresence>>;
  auto state = std::make_unique<State>();
  state->name = PresenceName(agent_segment);
  if (state->name.empty()) {
    return R::Error("invalid shared-memory segment name '" + agent_segment +
                    "': expected one path component of 1 to 250 characters");
  }
  if (period.count() <= 0) return R::Error("the presence period must be positive");
  // Readable by all: the agent may run as another user, and the record holds only a pid and a
  // time.
  const int fd = shm_open(state->name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return R::Error("cannot open shared-memory segment '" + state->name +
                    "': " + std::strerror(errno));
  }
  struct stat st {};
  bool fresh = fstat(fd, &st) == 0 && st.st_size == 0;
  if (fresh && ftruncate(fd, sizeof(shm::AppRecord)) != 0) {
    const int err = errno;
    close(fd);
    return R::Error("cannot size '" + state->name + "': " + std::strerror(err));
  }
  if (!fresh && st.st_size != static_cast<off_t>(sizeof(shm::AppRecord))) {
    close(fd);
    return R::Error("'" + state->name + "' exists with the wrong size; remove it (rm /dev/shm" +
                    state->name + ") and start again");
  }
  void* mapping = mmap(nullptr, sizeof(shm::AppRecord), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (mapping == MAP_FAILED) {
    return R::Error("cannot map '" + state->name + "': " + std::strerror(errno));
  }
  state->record = static_cast<shm::AppRecord*>(mapping);
  shm::AppRecord& record = *state->record;
  const bool ours = record.magic.load(std::memory_order_acquire) == shm::kAppMagic &&
                    record.layout_version == shm::kAppLayoutVersion;
  if (!ours) {
    // Fresh, or a leftover of another layout: start the record afresh (no reader trusts it
    // while magic is not set).
    record.magic.store(0, std::memory_order_release);
    if (!internal::InitLifeLock(&record.life)) return R::Error("cannot initialise the app lock");
  }
  int error = 0;
  state->life = internal::LifeLock::Take(&record.life, &error);
  if (!state->life) {
    return R::Error(error == EBUSY ? "another live process holds '" + state->name + "'"
                                   : "cannot take the app lock in '" + state->name +
                                         "': " + std::strerror(error));
  }
  record.layout_version = shm::kAppLayoutVersion;
  record.app_pid = static_cast<uint32_t>(getpid());
  record.period_ns = static_cast<uint64_t>(std::chrono::nanoseconds(period).count());
  record.stamp_ns.store(static_cast<uint64_t>(LeaseClockNowNs()), std::memory_order_release);
  record.magic.store(shm::kAppMagic, std::memory_order_release);

  State* s = state.get();
  s->stamper = std::thread([s, period] {
    std::unique_lock<std::mutex> lock(s->mu);
    while (!s->stop_cv.wait_for(lock, period, [s] { return s->stopping; })) {
      s->record->stamp_ns.store(static_cast<uint64_t>(LeaseClockNowNs()),
                                std::memory_order_release);
    }
  });
  return std::unique_ptr<AppPresence>(new AppPresence(std::move(state)));
}

AppPresenceReader::AppPresenceReader(std::string agent_segment)
    : name_(PresenceName(agent_segment)) {}

AppPresenceReader::~AppPresenceReader() {
  if (record_ != nullptr) munmap(const_cast<void*>(record_), sizeof(shm::AppRecord));
}

void AppPresenceReader::Refresh() {
  if (record_ != nullptr || name_.empty()) return;
  const int fd = shm_open(name_.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return;
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size != static_cast<off_t>(sizeof(shm::AppRecord))) {
    close(fd);
    return;
  }
  void* mapping = mmap(nullptr, sizeof(shm::AppRecord), PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (mapping != MAP_FAILED) record_ = mapping;
}

bool AppPresenceReader::Alive(uint64_t now_ns, std::chrono::nanoseconds max_age) const {
  if (record_ == nullptr) return false;
  const auto& record = *static_cast<const shm::AppRecord*>(record_);
  if (record.magic.load(std::memory_order_acquire) != shm::kAppMagic ||
      record.layout_version != shm::kAppLayoutVersion || internal::OwnerGone(record.life)) {
    return false;
  }
  const uint64_t stamp = record.stamp_ns.load(std::memory_order_acquire);
  return stamp <= now_ns + 1000000 &&
         now_ns - std::min(now_ns, stamp) <= static_cast<uint64_t>(max_age.count());
}

}  // namespace instaface

// A sleeper in WaitForChange (and the Watcher and the C API on it) wakes at once when the agent
// dies, not at its timeout. The agent is a child process that holds the record's life lock
// through the SDK's own writer, as instaface-agent does, and is killed with SIGKILL while the
// sleepers wait with a timeout of 30 s. "At once" is checked with a bound of 5 s: a liveness
// bound for a loaded machine, never a performance threshold (scripts/bench-sdk measures it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "instaface/clock.h"
#include "instaface/instaface.h"
#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "instaface/watcher.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::RawMapping;
using testing::TestSegment;

constexpr auto kLongTimeout = 30s;  // what the sleepers would sleep without the wake
constexpr auto kPromptly = 5s;      // "well before the timeout"
constexpr auto kDeadline = 10s;     // liveness of the test's own steps

#ifdef SYS_futex_waitv
constexpr long kSysFutexWaitv = SYS_futex_waitv;
#else
constexpr long kSysFutexWaitv = 449;
#endif

// Runs `body` in a child process that dies with this thread; the child's exit code is its
// result. No gtest in the child: its failures would be its own copy's.
pid_t ForkChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  _exit(body());
}

// The exit status of `pid`, waiting at most `timeout`; nullopt if it is still running.
std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 || Clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(1ms);
  }
}

// The system call that a thread is blocked in, from /proc/<pid>/task/<tid>/syscall, or -1 while
// it runs.
long BlockedIn(pid_t pid, pid_t tid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  long number = -1;
  if (!(file >> number)) return -1;  // "running"
  return number;
}

// Waits until the thread sleeps in a futex call: the wait under test, since the sleepers here
// make no other blocking call. `only_futex`: in FUTEX_WAIT itself, not futex_waitv.
bool WaitUntilAsleep(pid_t pid, pid_t tid, bool only_futex = false) {
  const auto deadline = Clock::now() + kDeadline;
  while (Clock::now() < deadline) {
    const long call = BlockedIn(pid, tid);
    if (call == SYS_futex || (call == kSysFutexWaitv && !only_futex)) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// A stand-in for instaface-agent in a child process: the SDK's writer creates the segment,
// holds its life lock on a thread of its own and publishes this node as leader.
class AgentProcess {
 public:
  explicit AgentProcess(const std::string& name) {
    int ready[2];
    if (pipe(ready) != 0) return;
    pid_ = ForkChild([&] {
      close(ready[0]);
      auto writer = shm::Writer::Create(name, 0600, 3600s);
      if (!writer.ok()) return 2;
      shm::PublishedState state;
      state.role = Role::kLeader;
      state.term = 7;
      state.lease_until_ns = static_cast<uint64_t>(LeaseClockNowNs()) + 3600'000'000'000ULL;
      state.self_id = state.leader_id = "node-a";
      writer->Publish(state);
      if (write(ready[1], "r", 1) != 1) return 3;
      for (;;) pause();
    });
    close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    char byte = 0;
    ready_ = poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())) == 1 &&
             read(ready[0], &byte, 1) == 1;
    close(ready[0]);
  }
  ~AgentProcess() { Kill(); }

  bool ready() const { return pid_ > 0 && ready_; }
  pid_t pid() const { return pid_; }
  // SIGKILL, then reaps: the process is gone, and so its life lock is marked.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

// A thread asleep in WaitForChange with a long timeout; records what it returned and when.
// `told_first`: the agent is dead already, and the thread sleeps after it has been told so.
class Sleeper {
 public:
  Sleeper(const View& view, uint32_t seen, bool told_first = false) : seen_(seen) {
    thread_ = std::thread([this, &view, told_first] {
      if (told_first && view.WaitForChange(seen_, kLongTimeout) != seen_) return;
      tid_ = static_cast<pid_t>(syscall(SYS_gettid));
      result_ = view.WaitForChange(seen_, kLongTimeout);
      returned_at_ = Clock::now();
      returned_ = true;
    });
  }
  ~Sleeper() {
    if (thread_.joinable()) thread_.join();
  }
  bool WaitUntilAsleep() {
    const auto deadline = Clock::now() + kDeadline;
    while (tid_.load() == 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return tid_.load() != 0 && instaface::WaitUntilAsleep(getpid(), tid_.load());
  }
  // Whether it returned after `since` (the event it waits for), and within `bound` of it;
  // joins it either way.
  bool ReturnedWithin(Clock::time_point since, Clock::duration bound) {
    thread_.join();
    return returned_ && returned_at_ >= since && returned_at_ - since < bound;
  }
  uint32_t result() const { return result_; }

 private:
  const uint32_t seen_;
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> returned_{false};
  uint32_t result_ = 0;
  Clock::time_point returned_at_;
  std::thread thread_;
};

// Makes this process's futex_waitv calls fail with `error`, as a container's seccomp profile
// that does not know the call does (ENOSYS or EPERM).
bool RefuseFutexWaitv(int error) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(kSysFutexWaitv), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<uint32_t>(error) & 0xffff)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Exit codes of a reader child.
constexpr int kReaderWokePromptly = 0;
constexpr int kReaderCannotOpen = 10;
constexpr int kReaderTimedOut = 11;
constexpr int kReaderSawNoDeath = 12;
constexpr int kReaderCannotSetUp = 13;

// In a child: opens the segment, sleeps in WaitForChange with a long timeout, and says how that
// went. `setup` runs first (a seccomp filter, a lesser uid).
int ReadInChild(const std::string& name, uint32_t seen, const std::function<bool()>& setup) {
  if (setup && !setup()) return kReaderCannotSetUp;
  auto view = View::Open(name);
  if (!view.ok()) return kReaderCannotOpen;
  const auto start = Clock::now();
  const uint32_t now = view->WaitForChange(seen, kLongTimeout);
  if (Clock::now() - start >= kPromptly) return kReaderTimedOut;
  const Snapshot s = view->snapshot();
  return now == seen && s.stale && !view->is_leader() ? kReaderWokePromptly : kReaderSawNoDeath;
}

class AgentDeathWakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_.emplace(segment_.name());
    ASSERT_TRUE(agent_->ready()) << "the agent process did not start";
    auto view = View::Open(segment_.name());
    ASSERT_TRUE(view.ok()) << view.error();
    view_.emplace(std::move(*view));
    ASSERT_TRUE(view_->is_leader());
    ASSERT_FALSE(view_->snapshot().stale);
    seen_ = view_->snapshot().change_counter;
    raw_.emplace(segment_.posix(), sizeof(shm::Record));
    ASSERT_TRUE(raw_->ok());
  }
  void TearDown() override {
    view_.reset();
    agent_.reset();
  }
  const shm::Record& record() const { return *raw_->as<shm::Record>(); }
  uint32_t lock_word() const {
    return static_cast<uint32_t>(
        __atomic_load_n(&record().agent_lock.__data.__lock, __ATOMIC_ACQUIRE));
  }
  // Expects a reader child to have woken for the death within kPromptly.
  void ExpectReaderWokePromptly(pid_t reader) {
    const std::optional<int> status = WaitForExit(reader, kDeadline);
    if (!status) {
      kill(reader, SIGKILL);
      waitpid(reader, nullptr, 0);
    }
    ASSERT_TRUE(status.has_value()) << "the reader in another process still sleeps";
    ASSERT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), kReaderWokePromptly)
        << "10: cannot open, 11: slept to its timeout, 12: woke without the death, 13: setup";
  }

  TestSegment segment_{"death-wake"};
  std::optional<AgentProcess> agent_;
  std::optional<View> view_;
  std::optional<RawMapping> raw_;
  uint32_t seen_ = 0;
};

// The kernel wakes one sleeper on the lock's word when the holder dies; that one must wake the
// rest, in this process and in others.
TEST_F(AgentDeathWakeTest, EverySleeperInEveryProcessWakesAtOnceOnKillNine) {
  // The reader in another process goes to sleep first, so it is first in the lock word's queue
  // (FIFO among equal priorities) and most likely the one the kernel wakes: it must then wake
  // the sleepers here.
  const pid_t reader = ForkChild([&] { return ReadInChild(segment_.name(), seen_, nullptr); });
  ASSERT_TRUE(WaitUntilAsleep(reader, reader));
  std::vector<std::unique_ptr<Sleeper>> sleepers;
  for (int i = 0; i < 3; ++i) {
    sleepers.push_back(std::make_unique<Sleeper>(*view_, seen_));
    ASSERT_TRUE(sleepers.back()->WaitUntilAsleep());
  }
  EXPECT_NE(lock_word() & FUTEX_WAITERS, 0u) << "the sleepers asked to be woken at the death";

  const auto killed = Clock::now();
  agent_->Kill();
  for (auto& sleeper : sleepers) {
    EXPECT_TRUE(sleeper->ReturnedWithin(killed, kPromptly)) << "slept on after the agent died";
    EXPECT_EQ(sleeper->result(), seen_) << "a dead agent publishes nothing";
  }
  ExpectReaderWokePromptly(reader);
  EXPECT_TRUE(view_->snapshot().stale);
  EXPECT_FALSE(view_->is_leader());
  EXPECT_NE(lock_word() & FUTEX_OWNER_DIED, 0u);
  EXPECT_EQ(record().waiters.load(), 0u) << "every sleeper unregistered";
}

// A death between two calls is not missed, and a loop of WaitForChange and snapshot() does not
// spin once it has been told: each thread hears of the death once.
TEST_F(AgentDeathWakeTest, ADeathBetweenCallsIsToldOncePerThreadThenTheWaitSleeps) {
  agent_->Kill();
  const auto start = Clock::now();
  EXPECT_EQ(view_->WaitForChange(seen_, kLongTimeout), seen_);
  EXPECT_LT(Clock::now() - start, kPromptly) << "a death before the call must end it at once";
  EXPECT_TRUE(view_->snapshot().stale);

  const auto again = Clock::now();
  EXPECT_EQ(view_->WaitForChange(seen_, 100ms), seen_);
  EXPECT_GE(Clock::now() - again, 100ms) << "told once; the next call sleeps out its timeout";

  std::thread other([&] {
    const auto t = Clock::now();
    EXPECT_EQ(view_->WaitForChange(seen_, kLongTimeout), seen_);
    EXPECT_LT(Clock::now() - t, kPromptly) << "another thread has not been told yet";
  });
  other.join();
}

// After the death, a sleeper sleeps until a restarted agent takes the segment over: its first
// publish wakes the sleeper, through the mapping the app already had.
TEST_F(AgentDeathWakeTest, ARestartedAgentWakesTheSleepersOfTheDeadOne) {
  agent_->Kill();
  Sleeper sleeper(*view_, seen_, /*told_first=*/true);
  ASSERT_TRUE(sleeper.WaitUntilAsleep());
  const auto restarting = Clock::now();  // the takeover publishes before Create returns
  auto restarted = shm::Writer::Create(segment_.name(), 0600, 3600s);
  ASSERT_TRUE(restarted.ok()) << restarted.error();
  EXPECT_TRUE(sleeper.ReturnedWithin(restarting, kPromptly));
  EXPECT_NE(sleeper.result(), seen_);
  EXPECT_FALSE(view_->snapshot().stale);
}

// A reader that cannot use futex_waitv (a kernel before 5.16, or a seccomp profile that refuses
// it) still sees the death soon: it sleeps on the counter alone, in short slices.
class AgentDeathWakeWithoutWaitvTest : public AgentDeathWakeTest,
                                       public ::testing::WithParamInterface<int> {};

TEST_P(AgentDeathWakeWithoutWaitvTest, ASleeperStillSeesTheDeathSoon) {
  const int error = GetParam();
  const pid_t reader = ForkChild([&] {
    return ReadInChild(segment_.name(), seen_, [error] { return RefuseFutexWaitv(error); });
  });
  ASSERT_TRUE(WaitUntilAsleep(reader, reader, /*only_futex=*/true));
  agent_->Kill();
  ExpectReaderWokePromptly(reader);
}

INSTANTIATE_TEST_SUITE_P(Refused, AgentDeathWakeWithoutWaitvTest, ::testing::Values(ENOSYS, EPERM),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == ENOSYS ? "ENOSYS" : "EPERM");
                         });

// A reader that may only map the segment read-only can neither register nor arm the lock; it
// sleeps in 1 ms slices, and sees the death in one of them.
TEST_F(AgentDeathWakeTest, AReadOnlyReaderSeesTheDeathSoon) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to read the segment as another user";
  ASSERT_EQ(chmod(("/dev/shm" + segment_.posix()).c_str(), 0644), 0);
  const pid_t reader = ForkChild([&] {
    return ReadInChild(segment_.name(), seen_, [] {
      // A change of credentials clears the parent-death signal: set it again.
      return setgid(65534) == 0 && setuid(65534) == 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) == 0;
    });
  });
  ASSERT_TRUE(WaitUntilAsleep(reader, reader));
  EXPECT_EQ(record().waiters.load(), 0u) << "the reader should have mapped the segment read-only";
  agent_->Kill();
  ExpectReaderWokePromptly(reader);
}

// The agent's clean exit lets go of the lock: glibc's unlock of a word with FUTEX_WAITERS wakes
// one sleeper, which wakes the rest; and the lock is left free, not owner-died, so the next
// agent takes it as usual.
TEST(AgentExitWakeTest, ACleanExitWakesSleepersAndLeavesTheLockFree) {
  TestSegment segment("exit-wake");
  std::optional<shm::Writer> writer;
  {
    auto created = shm::Writer::Create(segment.name(), 0600, 3600s);
    ASSERT_TRUE(created.ok()) << created.error();
    writer.emplace(std::move(*created));
  }
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  RawMapping raw(segment.posix(), sizeof(shm::Record));
  ASSERT_TRUE(raw.ok());
  const uint32_t seen = view->snapshot().change_counter;
  Sleeper first(*view, seen);
  ASSERT_TRUE(first.WaitUntilAsleep());
  Sleeper second(*view, seen);
  ASSERT_TRUE(second.WaitUntilAsleep());
  const auto& lock = raw.as<shm::Record>()->agent_lock;
  EXPECT_NE(__atomic_load_n(&lock.__data.__lock, __ATOMIC_ACQUIRE) & FUTEX_WAITERS, 0);

  const auto closed = Clock::now();
  writer.reset();  // the life lock's thread unlocks it
  EXPECT_TRUE(first.ReturnedWithin(closed, kPromptly));
  EXPECT_TRUE(second.ReturnedWithin(closed, kPromptly));
  EXPECT_EQ(__atomic_load_n(&lock.__data.__lock, __ATOMIC_ACQUIRE), 0)
      << "unlocked by its holder, as before the sleepers set FUTEX_WAITERS";
  EXPECT_TRUE(view->snapshot().stale);
  auto next = shm::Writer::Create(segment.name(), 0600, 3600s);
  EXPECT_TRUE(next.ok()) << next.error();
}

// The Watcher's thread sleeps a quarter of stale_after (15 minutes here) between checks; the
// death must reach it at once, and the callback says stale.
TEST_F(AgentDeathWakeTest, TheWatcherReportsTheDeathAtOnce) {
  std::atomic<bool> stale{false};
  std::atomic<int> callbacks{0};
  auto watcher = Watcher::Start(*view_, [&](const Snapshot& s) {
    if (s.stale) stale = true;
    ++callbacks;
  });
  const auto deadline = Clock::now() + kDeadline;
  while (callbacks.load() == 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  while (record().waiters.load() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(record().waiters.load(), 1u) << "the watcher's thread did not go to sleep";
  const auto killed = Clock::now();
  agent_->Kill();
  while (!stale.load() && Clock::now() - killed < kPromptly) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(stale.load()) << "the watcher did not report the death";
  const int after_death = callbacks.load();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(callbacks.load(), after_death) << "one callback for the death, then quiet";
  watcher->Stop();
}

// The C API tells the death from a timeout: INSTAFACE_OK with the counter unchanged.
TEST_F(AgentDeathWakeTest, TheCApiReportsTheDeathAsNewsWithTheSameCounter) {
  instaface_view* c_view = nullptr;
  ASSERT_EQ(instaface_open(segment_.name().c_str(), &c_view, nullptr, 0), INSTAFACE_OK);
  std::atomic<int> woken{-1};
  std::atomic<int> again{-1};
  std::atomic<uint32_t> current{0};
  std::atomic<pid_t> tid{0};
  Clock::time_point returned;
  std::thread waiter([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    uint32_t now = 0;
    woken = instaface_wait_for_change(c_view, seen_, 30'000'000'000ULL, &now);
    returned = Clock::now();
    current = now;
    // Told once on this thread: the next wait sleeps out its timeout.
    again = instaface_wait_for_change(c_view, seen_, 50'000'000ULL, &now);
  });
  const auto deadline = Clock::now() + kDeadline;
  while (tid.load() == 0 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(WaitUntilAsleep(getpid(), tid.load()));
  const auto killed = Clock::now();
  agent_->Kill();
  waiter.join();
  EXPECT_LT(returned - killed, kPromptly);
  EXPECT_EQ(woken.load(), INSTAFACE_OK) << "a death is news, not a timeout";
  EXPECT_EQ(current.load(), seen_);
  EXPECT_EQ(again.load(), INSTAFACE_ERR_TIMEOUT);
  instaface_snapshot_t s;
  ASSERT_EQ(instaface_snapshot(c_view, &s), INSTAFACE_OK);
  EXPECT_EQ(s.stale, 1);
  instaface_close(c_view);
}

}  // namespace
}  // namespace instaface

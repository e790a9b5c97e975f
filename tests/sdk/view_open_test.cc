// Opening a view: every way a segment can be missing or wrong gives an error naming it, and
// the writer's segment life cycle (create, take over, replace, unlink).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;
using testing::RawMapping;
using testing::TestSegment;

// Creates a segment of `size` zero bytes, as a foreign program or a crashed writer might.
void CreateRawSegment(const std::string& posix, size_t size) {
  const int fd = shm_open(posix.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  close(fd);
}

// Forks an agent that creates the segment `name`, publishes `state` and waits to be killed.
// Returns its pid once it has published, or -1.
pid_t ForkPublishingAgent(const std::string& name, const shm::PublishedState& state) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    auto writer = shm::Writer::Create(name, 0600, 10s);
    if (!writer.ok()) _exit(1);
    writer->Publish(state);
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  close(ready[1]);
  char byte;
  const bool published = child > 0 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  if (child > 0 && !published) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  return published ? child : -1;
}

TEST(ViewOpenTest, MissingSegmentIsAnErrorNamingIt) {
  TestSegment segment("missing");
  auto view = View::Open(segment.name());
  ASSERT_FALSE(view.ok());
  EXPECT_NE(view.error().find(segment.posix()), std::string::npos) << view.error();
  EXPECT_NE(view.error().find("does not exist"), std::string::npos) << view.error();
}

TEST(ViewOpenTest, MalformedNameIsAnError) {
  for (const std::string& name :
       {std::string(), std::string("/"), std::string("a/b"), std::string(300, 'x')}) {
    auto view = View::Open(name);
    ASSERT_FALSE(view.ok()) << name;
    EXPECT_NE(view.error().find("invalid"), std::string::npos) << view.error();
  }
}

TEST(ViewOpenTest, TruncatedSegmentIsAnError) {
  TestSegment segment("truncated");
  CreateRawSegment(segment.posix(), 16);
  auto view = View::Open(segment.name());
  ASSERT_FALSE(view.ok());
  EXPECT_NE(view.error().find(segment.posix()), std::string::npos) << view.error();
  EXPECT_NE(view.error().find("16 bytes"), std::string::npos) << view.error();
}

TEST(ViewOpenTest, ForeignSegmentIsAnError) {
  TestSegment segment("foreign");
  CreateRawSegment(segment.posix(), 4096);
  auto view = View::Open(segment.name());
  ASSERT_FALSE(view.ok());
  EXPECT_NE(view.error().find("magic"), std::string::npos) << view.error();
  EXPECT_NE(view.error().find(segment.posix()), std::string::npos) << view.error();
}

TEST(ViewOpenTest, OtherLayoutVersionIsAnError) {
  TestSegment segment("version");
  auto writer = shm::Writer::Create(segment.name(), 0600, 1s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  RawMapping raw(segment.posix(), sizeof(shm::Record));
  ASSERT_TRUE(raw.ok());
  raw.as<shm::Record>()->layout_version = shm::kLayoutVersion + 1;
  auto view = View::Open(segment.name());
  ASSERT_FALSE(view.ok());
  EXPECT_NE(view.error().find("layout version " + std::to_string(shm::kLayoutVersion + 1)),
            std::string::npos)
      << view.error();
}

TEST(ViewOpenTest, OtherRecordSizeIsAnError) {
  TestSegment segment("size");
  auto writer = shm::Writer::Create(segment.name(), 0600, 1s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  RawMapping raw(segment.posix(), sizeof(shm::Record));
  ASSERT_TRUE(raw.ok());
  raw.as<shm::Record>()->record_size = sizeof(shm::Record) + 64;
  auto view = View::Open(segment.name());
  ASSERT_FALSE(view.ok());
  EXPECT_NE(view.error().find("-byte record"), std::string::npos) << view.error();
}

TEST(ViewOpenTest, AcceptsNameWithOrWithoutSlash) {
  TestSegment segment("slash");
  auto writer = shm::Writer::Create(segment.name(), 0600, 1s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  EXPECT_TRUE(View::Open(segment.name()).ok());
  EXPECT_TRUE(View::Open(segment.posix()).ok());
}

TEST(WriterCreateTest, AppliesTheRequestedModeDespiteTheUmask) {
  for (const mode_t mode : {mode_t{0600}, mode_t{0660}}) {
    TestSegment segment("mode");
    const mode_t old_umask = umask(077);
    auto writer = shm::Writer::Create(segment.name(), mode, 1s);
    umask(old_umask);
    ASSERT_TRUE(writer.ok()) << writer.error();
    struct stat st;
    ASSERT_EQ(stat(("/dev/shm" + segment.posix()).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, mode);
  }
}

TEST(WriterCreateTest, RejectsOtherModesAndNonPositiveStaleAfter) {
  TestSegment segment("badargs");
  EXPECT_FALSE(shm::Writer::Create(segment.name(), 0666, 1s).ok());
  EXPECT_FALSE(shm::Writer::Create(segment.name(), 0600, 0s).ok());
  EXPECT_FALSE(View::Open(segment.name()).ok()) << "a rejected Create must leave nothing";
}

TEST(WriterCreateTest, ReplacesAnIncompatibleLeftover) {
  TestSegment segment("leftover");
  CreateRawSegment(segment.posix(), 4096);
  auto writer = shm::Writer::Create(segment.name(), 0600, 1s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  EXPECT_FALSE(view->snapshot().stale);
}

// An agent restarted after kill -9: apps that still map the old segment see the new agent
// without reopening, and the published term does not go back.
TEST(WriterCreateTest, TakesOverTheSegmentOfADeadAgentInPlace) {
  TestSegment segment("takeover");
  shm::PublishedState old_state;
  old_state.role = Role::kLeader;
  old_state.term = 42;
  old_state.self_id = "old-agent";
  const pid_t child = ForkPublishingAgent(segment.name(), old_state);
  ASSERT_GT(child, 0);

  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  EXPECT_EQ(view->snapshot().term, 42u);

  auto refused = shm::Writer::Create(segment.name(), 0600, 10s);
  EXPECT_FALSE(refused.ok()) << "the first agent is alive";
  if (!refused.ok()) {
    EXPECT_NE(refused.error().find("live agent"), std::string::npos) << refused.error();
  }

  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto writer = shm::Writer::Create(segment.name(), 0600, 10s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  shm::PublishedState state;
  state.role = Role::kFollower;
  state.term = 43;
  state.self_id = "new-agent";
  writer->Publish(state);
  const Snapshot seen = view->snapshot();  // through the mapping opened before the restart
  EXPECT_EQ(seen.term, 43u);
  EXPECT_EQ(seen.self_id, "new-agent");
  EXPECT_FALSE(seen.stale);
}

// A takeover that cannot start the thread that is to hold the life lock fails with the reason,
// and leaves nothing behind (its descriptor, its flock) that would refuse the next try of a
// process that goes on. Run as an unprivileged user, whom RLIMIT_NPROC binds (root it does not),
// with a limit that lets no new thread start.
TEST(WriterCreateTest, ATakeoverWithoutAThreadFailsCleanlyAndCanBeRetried) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to become an unprivileged user";
  TestSegment segment("nothread");
  const pid_t child = fork();
  if (child == 0) {
    auto fail = [](int code, const std::string& why) {
      std::fprintf(stderr, "%s\n", why.c_str());
      _exit(code);
    };
    if (setgid(65534) != 0 || setuid(65534) != 0) fail(10, "cannot become nobody");
    shm::PublishedState state;
    state.role = Role::kLeader;
    state.term = 7;
    const pid_t dying = ForkPublishingAgent(segment.name(), state);
    if (dying < 0) fail(11, "the first agent did not publish");
    kill(dying, SIGKILL);
    waitpid(dying, nullptr, 0);
    rlimit limit;
    getrlimit(RLIMIT_NPROC, &limit);
    const rlimit none{1, limit.rlim_max};  // this process alone: no thread can start
    if (setrlimit(RLIMIT_NPROC, &none) != 0) fail(12, "cannot set RLIMIT_NPROC");
    std::string error;
    try {
      auto first = shm::Writer::Create(segment.name(), 0600, 10s);
      if (first.ok()) fail(13, "took over without a thread to hold the life lock");
      error = first.error();
    } catch (const std::exception& e) {
      error = std::string("threw: ") + e.what();  // a caller that catches it goes on
    }
    if (error.find("cannot take the life lock") == std::string::npos) {
      std::fprintf(stderr, "first try: %s\n", error.c_str());
    }
    setrlimit(RLIMIT_NPROC, &limit);
    auto retried = shm::Writer::Create(segment.name(), 0600, 10s);
    if (!retried.ok()) fail(14, "first try: " + error + "; retry: " + retried.error());
    _exit(error.find("cannot take the life lock") == std::string::npos ? 15 : 0);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the taking process died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "13: took over without a thread; 14: the retry was refused; 15: the first try did not "
         "name the life lock (see stderr)";
}

TEST(WriterCreateTest, TakeOverKeepsTheTermAndDropsLeadership) {
  TestSegment segment("keepterm");
  {
    auto first = shm::Writer::Create(segment.name(), 0600, 10s);
    ASSERT_TRUE(first.ok()) << first.error();
    shm::PublishedState state;
    state.role = Role::kLeader;
    state.term = 7;
    state.lease_until_ns = UINT64_MAX / 2;
    first->Publish(state);
  }  // same pid: counts as a restarted agent
  auto second = shm::Writer::Create(segment.name(), 0600, 10s);
  ASSERT_TRUE(second.ok()) << second.error();
  const Snapshot s = second->view().snapshot();
  EXPECT_EQ(s.term, 7u);
  EXPECT_EQ(s.role, Role::kFollower);
  EXPECT_FALSE(second->view().is_leader());
}

// Between a dead agent's death and its successor's first publish, an app that reads the record
// must never see the dead agent's lease pass for a live one's: the successor takes the life
// lock (the moment readers see a live holder) only after it has withdrawn the old claim.
TEST(WriterCreateTest, NoReaderSeesADeadAgentsLeaseWhileItsSegmentIsTakenOver) {
  constexpr int kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    TestSegment segment("takeover-gap");
    shm::PublishedState dying;
    dying.role = Role::kLeader;
    dying.term = 9;
    dying.lease_until_ns = UINT64_MAX / 2;  // a lease that outlives the test
    dying.self_id = "dead-agent";
    const pid_t child = ForkPublishingAgent(segment.name(), dying);
    ASSERT_GT(child, 0);
    auto view = View::Open(segment.name());
    ASSERT_TRUE(view.ok()) << view.error();
    ASSERT_TRUE(view->is_leader()) << "the child leads before it dies";

    std::atomic<bool> dead{false};
    std::atomic<bool> done{false};
    std::atomic<int> claims_after_death{0};
    std::thread reader([&] {
      for (uint64_t i = 0; !done.load(std::memory_order_relaxed); ++i) {
        const bool was_dead = dead.load(std::memory_order_acquire);
        bool claims = false;
        if (i % 2 == 0) {
          claims = view->is_leader();
        } else {
          const Snapshot s = view->snapshot();
          claims = s.lease_valid && !s.stale;
        }
        if (was_dead && claims) claims_after_death.fetch_add(1);
      }
    });
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    dead.store(true, std::memory_order_release);
    auto successor = shm::Writer::Create(segment.name(), 0600, 10s);
    ASSERT_TRUE(successor.ok()) << successor.error();
    std::this_thread::sleep_for(1ms);  // the reader reads the new agent's record for a while too
    done.store(true);
    reader.join();
    EXPECT_EQ(claims_after_death.load(), 0) << "round " << round;
    EXPECT_EQ(view->snapshot().term, 9u);
    EXPECT_FALSE(view->is_leader());
  }
}

TEST(WriterCreateTest, UnlinkRemovesTheNameButNotOpenViews) {
  TestSegment segment("unlink");
  auto writer = shm::Writer::Create(segment.name(), 0600, 10s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  ASSERT_TRUE(writer->Unlink().ok());
  EXPECT_FALSE(View::Open(segment.name()).ok());
  shm::PublishedState state;
  state.term = 9;
  writer->Publish(state);
  EXPECT_EQ(view->snapshot().term, 9u);
}

TEST(WriterCreateTest, UnlinkLeavesASegmentThatReplacedOurs) {
  TestSegment segment("replaced");
  auto first = shm::Writer::Create(segment.name(), 0600, 10s);
  ASSERT_TRUE(first.ok()) << first.error();
  ASSERT_EQ(shm_unlink(segment.posix().c_str()), 0);
  auto second = shm::Writer::Create(segment.name(), 0600, 10s);
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_TRUE(first->Unlink().ok());
  EXPECT_TRUE(View::Open(segment.name()).ok()) << "the second writer's segment must survive";
}

}  // namespace
}  // namespace instaface

// AppPresence and its reader across real processes: the agent's side sees a registered app as
// alive, a killed one as gone at once (its lock is owner-died, no stamp has to age), a stopped
// one as gone once its stamp is older than the bound, and one that unregistered as gone.
#include "instaface/app_presence.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "instaface/clock.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;

uint64_t Now() { return static_cast<uint64_t>(LeaseClockNowNs()); }

class AppPresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    segment_ = "instaface-presence-test-" + std::to_string(getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    shm_unlink(("/" + segment_ + ".app").c_str());
  }

  // A process that registers as the app and then waits to be killed or stopped.
  void StartApp() {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      auto presence = AppPresence::Register(segment_, 5ms);
      char ok = presence.ok() ? 'y' : 'n';
      if (write(ready[1], &ok, 1) != 1) _exit(3);
      for (;;) pause();
    }
    close(ready[1]);
    char ok = 0;
    ASSERT_EQ(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    ASSERT_EQ(ok, 'y');
  }

  // Another process that tries to register beside the same agent, and must be refused.
  void StartAppExpectingRefusal() {
    const pid_t other = fork();
    ASSERT_GE(other, 0);
    if (other == 0) _exit(AppPresence::Register(segment_).ok() ? 1 : 0);
    int status = 0;
    ASSERT_EQ(waitpid(other, &status, 0), other);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a second app registered";
  }

  bool AliveWithin(AppPresenceReader& reader, std::chrono::milliseconds bound) {
    reader.Refresh();
    return reader.Alive(Now(), bound);
  }

  std::string segment_;
  pid_t child_ = -1;
};

TEST_F(AppPresenceTest, AKilledAppIsGoneAtOnce) {
  AppPresenceReader reader(segment_);
  EXPECT_FALSE(AliveWithin(reader, 1h)) << "no app has registered";
  StartApp();
  EXPECT_TRUE(AliveWithin(reader, 1h));
  kill(child_, SIGKILL);
  waitpid(child_, nullptr, 0);
  child_ = -1;
  // The bound is an hour: only the lock can tell, and it tells as soon as the process is reaped.
  EXPECT_FALSE(AliveWithin(reader, 1h));
}

TEST_F(AppPresenceTest, AStoppedAppIsGoneOnceItsStampIsOlderThanTheBound) {
  AppPresenceReader reader(segment_);
  StartApp();
  EXPECT_TRUE(AliveWithin(reader, 1h));
  kill(child_, SIGSTOP);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (AliveWithin(reader, 50ms) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(AliveWithin(reader, 50ms)) << "a stopped app's stamp never aged";
  EXPECT_TRUE(AliveWithin(reader, 1h)) << "its lock is still held: only the stamp aged";
  kill(child_, SIGCONT);
  const auto back = std::chrono::steady_clock::now() + 30s;
  while (!AliveWithin(reader, 50ms) && std::chrono::steady_clock::now() < back) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(AliveWithin(reader, 50ms)) << "a resumed app did not stamp again";
}

TEST_F(AppPresenceTest, AnAppThatUnregistersIsGoneAndCanRegisterAgain) {
  AppPresenceReader reader(segment_);
  {
    auto presence = AppPresence::Register(segment_);
    ASSERT_TRUE(presence.ok()) << presence.error();
    EXPECT_TRUE(AliveWithin(reader, 1h));
    // A second app beside the same agent is refused while the first lives.
    StartAppExpectingRefusal();
  }
  EXPECT_FALSE(AliveWithin(reader, 1h));
  auto again = AppPresence::Register(segment_);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_TRUE(AliveWithin(reader, 1h));
}

TEST_F(AppPresenceTest, BadNamesAreRefusedWithAReason) {
  for (const std::string& bad : {std::string(""), std::string("a/b"), std::string(300, 'x')}) {
    auto presence = AppPresence::Register(bad);
    EXPECT_FALSE(presence.ok()) << bad;
    if (!presence.ok()) {
      EXPECT_NE(presence.error().find("segment name"), std::string::npos) << presence.error();
    }
  }
}

}  // namespace
}  // namespace instaface

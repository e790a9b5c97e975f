// The death watch: what counts as a peer's death (its process ended, or a clean stop ended its
// connections as if it had: an orderly close, then a refused redial) and everything that must
// not (a stopped process, our own shutdown, a connection ended in order by something that still
// answers), with real sockets and, for a death, a real process killed with SIGKILL.
#include "instaface/transport/death_watch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "instaface/clock.h"

namespace instaface::transport {
namespace {

using namespace std::chrono_literals;

constexpr char kCluster[] = "watch-test";
constexpr char kSecret[] = "watch-secret";

DeathWatchOptions Options(const std::string& id) {
  DeathWatchOptions o;
  o.bind_host = "127.0.0.1";
  o.cluster = kCluster;
  o.secret = kSecret;
  o.self_id = id;
  o.timeout = 500ms;
  o.retry = 20ms;
  return o;
}

// Collects what a watcher's `died` reports.
class Deaths {
 public:
  DeathWatch::Died Callback() {
    return [this](const std::string& peer, int64_t observed_at_ns) {
      std::lock_guard<std::mutex> lock(mu_);
      peers_.push_back(peer);
      observed_.push_back(observed_at_ns);
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return peers_.size() >= n; });
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_.size();
  }
  std::string peer(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_.at(i);
  }
  int64_t observed(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return observed_.at(i);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> peers_;
  std::vector<int64_t> observed_;
};

template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

std::array<uint8_t, kWatchNonceBytes> Nonce(uint8_t fill) {
  std::array<uint8_t, kWatchNonceBytes> n{};
  n.fill(fill);
  return n;
}

// ---- the hello ----------------------------------------------------------------------------

TEST(WatchHelloTest, AuthenticatesItsIdClusterAndNonce) {
  const auto nonce = Nonce(7);
  const auto hello = EncodeWatchHello(kCluster, kSecret, "leader", nonce);
  EXPECT_TRUE(CheckWatchHello(hello.data(), hello.size(), kCluster, kSecret, "leader", nonce).ok());
  EXPECT_FALSE(CheckWatchHello(hello.data(), hello.size(), kCluster, kSecret, "other", nonce).ok());
  EXPECT_FALSE(
      CheckWatchHello(hello.data(), hello.size(), "another", kSecret, "leader", nonce).ok());
  EXPECT_FALSE(
      CheckWatchHello(hello.data(), hello.size(), kCluster, "wrong", "leader", nonce).ok());
  EXPECT_FALSE(
      CheckWatchHello(hello.data(), hello.size(), kCluster, kSecret, "leader", Nonce(8)).ok())
      << "a hello recorded for another nonce is a replay";
}

TEST(WatchHelloTest, RejectsMalformedBytesWithAReason) {
  const auto nonce = Nonce(1);
  const auto good = EncodeWatchHello(kCluster, kSecret, "leader", nonce);
  auto check = [&](std::array<uint8_t, kWatchHelloBytes> bytes) {
    return CheckWatchHello(bytes.data(), bytes.size(), kCluster, kSecret, "leader", nonce);
  };
  EXPECT_FALSE(
      CheckWatchHello(good.data(), good.size() - 1, kCluster, kSecret, "leader", nonce).ok());
  EXPECT_FALSE(CheckWatchHello(nullptr, 0, kCluster, kSecret, "leader", nonce).ok());
  auto bytes = good;
  bytes[0] ^= 1;
  EXPECT_NE(check(bytes).message().find("magic"), std::string::npos);
  bytes = good;
  bytes[4] = 9;
  EXPECT_NE(check(bytes).message().find("version"), std::string::npos);
  for (uint8_t len : {0, 65, 255}) {
    bytes = good;
    bytes[5] = len;
    EXPECT_FALSE(check(bytes).ok()) << int(len);
  }
  bytes = good;
  bytes[6 + 6] = 'x';  // a byte after the id
  EXPECT_FALSE(check(bytes).ok());
  bytes = good;
  bytes.back() ^= 1;
  EXPECT_NE(check(bytes).message().find("authenticate"), std::string::npos);
}

// ---- deaths and non-deaths ----------------------------------------------------------------

// A peer in a process of its own, so that SIGKILL ends it as it would end an agent.
// A plain listening socket on loopback, for peers written by hand; its port in *port.
int LoopbackListener(uint16_t* port) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 8) != 0) {
    close(listener);
    return -1;
  }
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return listener;
}

// Answers one watcher on `c` as the peer "leader" does: reads its nonce, writes the hello.
bool ServeHello(int c) {
  std::array<uint8_t, kWatchNonceBytes> nonce{};
  size_t got = 0;
  while (got < nonce.size()) {
    const ssize_t n = read(c, nonce.data() + got, nonce.size() - got);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  const auto hello = EncodeWatchHello(kCluster, kSecret, "leader", nonce);
  return write(c, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size());
}

class ChildPeer {
 public:
  ChildPeer() {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      auto watch = DeathWatch::Start(Options("leader"), [](const std::string&, int64_t) {});
      const uint16_t port = watch.ok() ? (*watch)->port() : 0;
      if (write(fds[1], &port, sizeof port) != sizeof port) _exit(1);
      for (;;) pause();
    }
    close(fds[1]);
    if (read(fds[0], &port_, sizeof port_) != sizeof port_) port_ = 0;
    close(fds[0]);
  }
  ~ChildPeer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  uint16_t port() const { return port_; }
  void Signal(int sig) { kill(pid_, sig); }
  void KillAndReap() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

TEST(DeathWatchTest, AKilledProcessIsReportedDeadAndAStoppedOneIsNot) {
  // Forked before any thread of ours exists.
  ChildPeer leader;
  ASSERT_NE(leader.port(), 0);
  Deaths deaths;
  auto watcher = DeathWatch::Start(Options("follower"), deaths.Callback());
  ASSERT_TRUE(watcher.ok()) << watcher.status().message();
  (*watcher)->Watch("leader", "127.0.0.1", leader.port());
  ASSERT_TRUE(Eventually([&] { return (*watcher)->counters().established == 1; }));

  leader.Signal(SIGSTOP);
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(deaths.count(), 0u) << "a stopped process keeps its connections";
  EXPECT_EQ((*watcher)->counters().ended, 0u);
  leader.Signal(SIGCONT);

  const int64_t before = LeaseClockNowNs();
  leader.KillAndReap();
  ASSERT_TRUE(deaths.WaitFor(1, 5s));
  EXPECT_EQ(deaths.peer(0), "leader");
  EXPECT_GE(deaths.observed(0), before);
  EXPECT_LE(deaths.observed(0), LeaseClockNowNs());
  EXPECT_EQ((*watcher)->counters().deaths, 1u);
}

TEST(DeathWatchTest, APeerThatShutsDownLeavesResetsNotEvidence) {
  Deaths deaths;
  auto leader = DeathWatch::Start(Options("leader"), [](const std::string&, int64_t) {});
  ASSERT_TRUE(leader.ok());
  auto watcher = DeathWatch::Start(Options("follower"), deaths.Callback());
  ASSERT_TRUE(watcher.ok());
  (*watcher)->Watch("leader", "127.0.0.1", (*leader)->port());
  ASSERT_TRUE(Eventually([&] { return (*leader)->counters().accepted == 1; }));
  ASSERT_TRUE(Eventually([&] { return (*watcher)->counters().established == 1; }));
  leader->reset();  // its own shutdown: every connection aborted, then the listener closed
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ((*watcher)->counters().ended, 0u) << "an abort is a reset, not an orderly close";
  EXPECT_EQ(deaths.count(), 0u);
}

// A clean stop that claims no lease ends its watchers' connections as its exit would: each of
// them sees it gone, while its process still runs.
TEST(DeathWatchTest, AnEndInOrderIsSeenAsAnExit) {
  Deaths deaths;
  auto leader = DeathWatch::Start(Options("leader"), [](const std::string&, int64_t) {});
  ASSERT_TRUE(leader.ok());
  auto first = DeathWatch::Start(Options("follower-1"), deaths.Callback());
  auto second = DeathWatch::Start(Options("follower-2"), deaths.Callback());
  ASSERT_TRUE(first.ok() && second.ok());
  (*first)->Watch("leader", "127.0.0.1", (*leader)->port());
  (*second)->Watch("leader", "127.0.0.1", (*leader)->port());
  ASSERT_TRUE(Eventually([&] { return (*leader)->counters().accepted == 2; }));
  ASSERT_TRUE(Eventually([&] {
    return (*first)->counters().established == 1 && (*second)->counters().established == 1;
  }));
  (*leader)->EndInOrder();
  ASSERT_TRUE(deaths.WaitFor(2, 5s)) << "each watcher sees the end, and its redial refused";
  EXPECT_EQ(deaths.peer(0), "leader");
  EXPECT_EQ(deaths.peer(1), "leader");
  EXPECT_EQ((*first)->counters().deaths + (*second)->counters().deaths, 2u);
  (*leader)->EndInOrder();  // idempotent, and the destructor after it has nothing to do
  leader->reset();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(deaths.count(), 2u);
}

TEST(DeathWatchTest, AnOrderlyCloseByAPeerThatStillAnswersIsNotEvidence) {
  // What a proxy that ends idle connections looks like: the stream ends in order, but the port
  // still answers, with the peer's own hello.
  uint16_t port = 0;
  const int listener = LoopbackListener(&port);
  ASSERT_GE(listener, 0);
  std::atomic<int> served{0};
  std::thread server([&] {
    for (int round = 0; round < 2; ++round) {
      const int c = accept(listener, nullptr, nullptr);
      if (c < 0) return;
      if (!ServeHello(c)) return;
      ++served;
      if (round == 0) {
        std::this_thread::sleep_for(100ms);
        close(c);  // in order: a FIN, while the listener stays open
      } else {
        std::this_thread::sleep_for(300ms);
        close(c);
      }
    }
  });
  Deaths deaths;
  auto watcher = DeathWatch::Start(Options("follower"), deaths.Callback());
  ASSERT_TRUE(watcher.ok());
  (*watcher)->Watch("leader", "127.0.0.1", port);
  EXPECT_TRUE(Eventually([&] { return served.load() == 2; }));
  EXPECT_TRUE(Eventually([&] { return (*watcher)->counters().not_evidence >= 1; }));
  EXPECT_GE((*watcher)->counters().ended, 1u);
  EXPECT_EQ(deaths.count(), 0u) << "the redial was answered: not a death";
  shutdown(listener, SHUT_RDWR);  // an accept still waiting returns
  server.join();
  close(listener);
  watcher->reset();
}

// What the kernel's cleanup of a dying process can look like from outside: the watched
// connection ends in order while the listening socket, closed a moment later, still completes
// handshakes and resets them. A redial in that moment must ask again until it is refused.
// (Seen with a restarted follower watching its leader: three immediate redials all met the
// resets, and the survivor waited out the lease instead.)
TEST(DeathWatchTest, ADeathIsSeenWhileTheDyingListenerStillResets) {
  uint16_t port = 0;
  const int listener = LoopbackListener(&port);
  ASSERT_GE(listener, 0);
  std::atomic<int> resets{0};
  std::thread dying([&] {
    const int c = accept(listener, nullptr, nullptr);
    if (c < 0) return;
    if (!ServeHello(c)) return;
    std::this_thread::sleep_for(100ms);
    close(c);  // in order: the FIN of the dying process's first descriptors
    const auto until = std::chrono::steady_clock::now() + 40ms;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{listener, POLLIN, 0};
      if (poll(&p, 1, 2) <= 0) continue;
      const int r = accept(listener, nullptr, nullptr);
      if (r < 0) continue;
      linger abort{1, 0};
      setsockopt(r, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
      close(r);  // a reset: nobody is left to answer
      ++resets;
    }
    close(listener);  // the last descriptor: from now on, refused
  });
  Deaths deaths;
  auto watcher = DeathWatch::Start(Options("follower"), deaths.Callback());
  ASSERT_TRUE(watcher.ok());
  (*watcher)->Watch("leader", "127.0.0.1", port);
  EXPECT_TRUE(deaths.WaitFor(1, 5s)) << "resets while dying, then refused: a death";
  dying.join();
  EXPECT_GE(resets.load(), 3) << "the test must reach the resets";
  EXPECT_EQ((*watcher)->counters().deaths, 1u);
  watcher->reset();
}

TEST(DeathWatchTest, AHelloFromAnotherNodeIsNeverWatched) {
  Deaths deaths;
  auto impostor = DeathWatch::Start(Options("someone-else"), [](const std::string&, int64_t) {});
  ASSERT_TRUE(impostor.ok());
  auto watcher = DeathWatch::Start(Options("follower"), deaths.Callback());
  ASSERT_TRUE(watcher.ok());
  (*watcher)->Watch("leader", "127.0.0.1", (*impostor)->port());
  ASSERT_TRUE(Eventually([&] { return (*impostor)->counters().accepted >= 2; }));
  EXPECT_EQ((*watcher)->counters().established, 0u);
  EXPECT_EQ(deaths.count(), 0u);
}

TEST(DeathWatchTest, BadOptionsAreErrors) {
  auto no_id = DeathWatch::Start(Options(""), nullptr);
  EXPECT_FALSE(no_id.ok());
  DeathWatchOptions o = Options("a");
  o.bind_host = "not a host name at all";
  EXPECT_FALSE(DeathWatch::Start(o, nullptr).ok());
}

}  // namespace
}  // namespace instaface::transport

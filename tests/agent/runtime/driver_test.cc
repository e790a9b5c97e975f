// The Driver's order of work, checked through recording seams: persist (and record the lease
// promises) before any message that depends on it, and publish a status that gives up the lease
// before any message that could let a rival win. And a restart's window: what the promise
// record says, no more.
#include "instaface/runtime/driver.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace instaface::runtime {
namespace {

using namespace std::chrono_literals;
using election::HardState;
using election::Message;
using election::MessageType;
using election::Role;

// Everything the driver did, in order, as one line each.
struct Log {
  std::vector<std::string> lines;
  size_t First(const std::string& prefix) const {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].rfind(prefix, 0) == 0) return i;
    }
    return lines.size();
  }
};

class FakeClock : public Clock {
 public:
  Nanos Now() override { return now; }
  Nanos now = 10s;
};

class RecordingOutbox : public Outbox {
 public:
  explicit RecordingOutbox(Log& log) : log_(log) {}
  void Send(const Message& m) override {
    sent.push_back(m);
    log_.lines.push_back(std::string("send ") + election::MessageTypeName(m.type) + " " + m.to);
  }
  std::vector<Message> sent;

 private:
  Log& log_;
};

class RecordingStore : public HardStateStore {
 public:
  explicit RecordingStore(Log& log) : log_(log) {}
  common::Status Save(const HardState& s) override {
    log_.lines.push_back("persist " + std::to_string(s.term) + " " + s.voted_for);
    if (fail) return common::Status::Error("disk full");
    return common::Status::Ok();
  }
  bool fail = false;

 private:
  Log& log_;
};

class RecordingPromises : public PromiseRecord {
 public:
  explicit RecordingPromises(Log& log) : log_(log) {}
  std::optional<Nanos> Earlier() const override { return earlier; }
  void Record(Nanos until) override {
    recorded = until;
    log_.lines.push_back("promise " + std::to_string(until.count()));
  }
  std::optional<Nanos> earlier;  // what an earlier incarnation left
  std::optional<Nanos> recorded;

 private:
  Log& log_;
};

class RecordingSink : public StatusSink {
 public:
  explicit RecordingSink(Log& log) : log_(log) {}
  void Publish(const PublishedStatus& s) override {
    last = s;
    log_.lines.push_back(std::string("publish ") + election::RoleName(s.election.role) +
                         (s.lease_valid() ? " lease" : " no-lease"));
  }
  PublishedStatus last;

 private:
  Log& log_;
};

struct Fixture {
  explicit Fixture(bool unsafe_order = false, std::optional<Nanos> earlier_promises = std::nullopt)
      : outbox(log), store(log), promises(log), sink(log) {
    promises.earlier = earlier_promises;
    DriverOptions o;
    o.self_id = "a";
    o.config.cluster_size = 3;
    o.unsafe_send_before_publish = unsafe_order;
    o.on_persist_failure = [this](const std::string& e) { failure = e; };
    driver = std::make_unique<Driver>(o, HardState{}, 1, clock, outbox, &store, &promises,
                                      std::vector<StatusSink*>{&sink});
    driver->SetPeers({{"b", {"tcp://b", "http://b"}}, {"c", {"tcp://c", "http://c"}}});
  }

  Message From(const std::string& peer, MessageType type, bool granted = true) {
    Message m;
    m.type = type;
    m.from = peer;
    m.to = "a";
    m.term = driver->core().hard_state().term;
    m.granted = granted;
    return m;
  }

  // Leads term 1 with a lease from b's ack.
  void Lead() {
    clock.now = driver->NextDeadline();
    while (driver->status().election.role == Role::kFollower) {
      driver->Tick();
      clock.now = std::max(clock.now, driver->NextDeadline());
    }
    Message pre = From("b", MessageType::kPreVoteResponse);
    pre.term = driver->core().hard_state().term + 1;
    driver->Step(pre);
    driver->Step(From("b", MessageType::kVoteResponse));
    ASSERT_EQ(driver->status().election.role, Role::kLeader);
    Message ack = From("b", MessageType::kHeartbeatResponse);
    ack.send_time = clock.now;
    clock.now += 1ms;
    driver->Step(ack);
    ASSERT_TRUE(driver->status().lease_valid());
    log.lines.clear();
  }

  Log log;
  FakeClock clock;
  RecordingOutbox outbox;
  RecordingStore store;
  RecordingPromises promises;
  RecordingSink sink;
  std::string failure;
  std::unique_ptr<Driver> driver;
};

// Regression: the driver sent a Ready's messages and then published. A transfer's TimeoutNow
// could then reach the target, which could win, while this node's app still saw its lease.
TEST(DriverOrder, GivingUpTheLeaseIsPublishedBeforeTheTimeoutNowLeaves) {
  Fixture f;
  f.Lead();
  ASSERT_TRUE(f.driver->TransferLeadership("b"));
  const size_t published = f.log.First("publish leader no-lease");
  const size_t timeout_now = f.log.First("send TimeoutNow b");
  ASSERT_LT(timeout_now, f.log.lines.size()) << "no TimeoutNow sent";
  ASSERT_LT(published, f.log.lines.size()) << "the lease was not given up";
  EXPECT_LT(published, timeout_now);
  EXPECT_LT(published, f.log.First("send "));
}

TEST(DriverOrder, TheUnsafeSwitchRestoresTheOldOrder) {
  Fixture f(/*unsafe_order=*/true);
  f.Lead();
  ASSERT_TRUE(f.driver->TransferLeadership("b"));
  EXPECT_GT(f.log.First("publish leader no-lease"), f.log.First("send TimeoutNow b"));
}

// A leader that learns of a newer term while its lease runs acks the new leader, and that ack
// counts towards the new leader's lease: its own app must have lost the old lease first.
TEST(DriverOrder, ALeaderDeposedInItsLeaseIsPublishedBeforeItAcksTheNewLeader) {
  for (bool unsafe : {false, true}) {
    Fixture f(unsafe);
    f.Lead();
    Message heartbeat = f.From("c", MessageType::kHeartbeat);
    heartbeat.term = f.driver->core().hard_state().term + 1;
    heartbeat.send_time = 1s;
    f.driver->Step(heartbeat);
    const size_t ack = f.log.First("send HeartbeatResponse c");
    ASSERT_LT(ack, f.log.lines.size());
    EXPECT_EQ(f.log.First("publish follower no-lease") < ack, !unsafe);
  }
}

TEST(DriverOrder, ANewLeadersLeaseIsPublishedBeforeItsHeartbeatsLeave) {
  // Its votes are its first lease: its app may act before a heartbeat costs anything.
  Fixture f;
  f.clock.now = f.driver->NextDeadline();
  while (f.driver->status().election.role == Role::kFollower) {
    f.driver->Tick();
    f.clock.now = std::max(f.clock.now, f.driver->NextDeadline());
  }
  Message pre = f.From("b", MessageType::kPreVoteResponse);
  pre.term = f.driver->core().hard_state().term + 1;
  f.driver->Step(pre);
  const Nanos asked = f.outbox.sent.back().send_time;
  Message vote = f.From("b", MessageType::kVoteResponse);
  vote.send_time = asked;
  f.log.lines.clear();
  f.driver->Step(vote);
  ASSERT_EQ(f.driver->status().election.role, Role::kLeader);
  const size_t published = f.log.First("publish leader lease");
  ASSERT_LT(published, f.log.lines.size()) << "no lease from the votes";
  EXPECT_LT(published, f.log.First("send Heartbeat"));
}

TEST(DriverOrder, RenewingTheLeaseIsPublished) {
  Fixture f;
  f.Lead();
  f.clock.now = f.driver->NextDeadline();
  f.driver->Tick();  // a heartbeat round; nothing to give up
  EXPECT_EQ(f.log.First("publish"), f.log.lines.size()) << "nothing changed the app's view";
  Message ack = f.From("c", MessageType::kHeartbeatResponse);
  ack.send_time = f.clock.now;
  f.clock.now += 1ms;
  f.driver->Step(ack);
  EXPECT_TRUE(f.sink.last.lease_valid());
}

// Stands: times out as a follower and wins the PreVote round on b's answer.
void Stand(Fixture& f) {
  f.clock.now = f.driver->NextDeadline();
  while (f.driver->status().election.role == Role::kFollower) {
    f.driver->Tick();
    f.clock.now = std::max(f.clock.now, f.driver->NextDeadline());
  }
  Message pre = f.From("b", MessageType::kPreVoteResponse);
  pre.term = 1;
  f.log.lines.clear();
  f.driver->Step(pre);
}

// The one exemption from persist-before-send: the candidate's vote for itself counts only when
// a reply is stepped, after the save.
TEST(DriverPersist, ACandidatesVoteRequestsLeaveBeforeItsSave) {
  Fixture g;
  Stand(g);
  const size_t saved = g.log.First("persist 1 a");
  ASSERT_LT(saved, g.log.lines.size());
  EXPECT_LT(g.log.First("send VoteRequest b"), saved);
  EXPECT_LT(g.log.First("send VoteRequest c"), saved);
  g.driver->Step(g.From("b", MessageType::kVoteResponse));
  ASSERT_EQ(g.driver->status().election.role, Role::kLeader);
  EXPECT_LT(saved, g.log.First("publish leader")) << "it led on a vote that was not durable";
}

TEST(DriverPersist, AVoteForAnotherLeavesOnlyAfterItIsDurable) {
  Fixture f(/*unsafe_order=*/false, /*earlier_promises=*/Nanos(0));  // no restart window
  Message request = f.From("b", MessageType::kVoteRequest);
  request.term = 1;
  f.log.lines.clear();
  f.driver->Step(request);
  const size_t vote = f.log.First("send VoteResponse b");
  ASSERT_LT(vote, f.log.lines.size()) << "no vote granted";
  EXPECT_LT(f.log.First("persist 1 b"), vote);
}

TEST(DriverPersist, AFailedSaveSendsNothingThatRestsOnItAndStopsTheDriver) {
  Fixture f(/*unsafe_order=*/false, /*earlier_promises=*/Nanos(0));
  f.store.fail = true;
  Message request = f.From("b", MessageType::kVoteRequest);
  request.term = 1;
  const size_t sent_before = f.outbox.sent.size();
  f.driver->Step(request);
  EXPECT_EQ(f.outbox.sent.size(), sent_before) << "the vote depends on the lost save";
  EXPECT_EQ(f.failure, "disk full");
  EXPECT_TRUE(f.driver->failed());
  f.driver->Step(request);
  f.driver->Tick();
  EXPECT_EQ(f.outbox.sent.size(), sent_before);
  EXPECT_EQ(f.driver->NextDeadline(), Nanos::max());
}

TEST(DriverPersist, ACandidateWhoseSaveFailedNeverLeads) {
  Fixture f;
  f.store.fail = true;
  Stand(f);
  ASSERT_TRUE(f.driver->failed());
  f.log.lines.clear();
  f.driver->Step(f.From("b", MessageType::kVoteResponse));
  EXPECT_NE(f.driver->status().election.role, Role::kLeader);
  EXPECT_TRUE(f.log.lines.empty()) << "nothing after a failed save";
}

TEST(DriverPeers, PublishesTheLeadersAddresses) {
  Fixture f;
  Message hb = f.From("b", MessageType::kHeartbeat);
  hb.term = 1;
  hb.send_time = 1s;
  f.clock.now += 2s;
  f.driver->Step(hb);
  EXPECT_EQ(f.sink.last.election.leader, "b");
  EXPECT_EQ(f.sink.last.leader_app_address, "http://b");
  EXPECT_EQ(f.sink.last.leader_peer_address, "tcp://b");
  f.driver->SetPeers({{"b", {"tcp://b2", "http://b2"}}, {"c", {"tcp://c", "http://c"}}});
  EXPECT_EQ(f.sink.last.leader_app_address, "http://b2") << "republished with the new address";
}

// ---- the restart window ------------------------------------------------------------------------

Message VoteRequestFrom(Fixture& f, const std::string& peer) {
  Message m = f.From(peer, MessageType::kVoteRequest);
  m.term = f.driver->core().hard_state().term + 1;
  m.send_time = f.clock.now;
  return m;
}

bool Granted(const Fixture& f) {
  return !f.outbox.sent.empty() && f.outbox.sent.back().type == MessageType::kVoteResponse &&
         f.outbox.sent.back().granted;
}

TEST(DriverPromises, AStartRecordsItsWindowBeforeAnythingLeaves) {
  Fixture f;  // no earlier record: a whole election_min
  ASSERT_TRUE(f.promises.recorded.has_value());
  EXPECT_EQ(*f.promises.recorded, 10s + 750ms);
  EXPECT_LT(f.log.First("promise"), f.log.First("send "));
}

TEST(DriverPromises, AnAckLeavesOnlyAfterItsPromiseIsRecorded) {
  Fixture f;
  f.log.lines.clear();
  f.clock.now += 2s;  // past the start's window
  Message heartbeat = f.From("b", MessageType::kHeartbeat);
  heartbeat.term = 1;
  heartbeat.send_time = 1s;
  f.driver->Step(heartbeat);
  const size_t ack = f.log.First("send HeartbeatResponse b");
  ASSERT_LT(ack, f.log.lines.size());
  EXPECT_LT(f.log.First("promise " + std::to_string(Nanos(f.clock.now + 750ms).count())), ack);
}

TEST(DriverPromises, ARestartWaitsOutOnlyWhatTheRecordSays) {
  // The earlier incarnation's last promise ends 10 ms after this start: a vote 11 ms in is free.
  Fixture recorded(false, 10s + 10ms);
  recorded.clock.now += 11ms;
  recorded.driver->Step(VoteRequestFrom(recorded, "b"));
  EXPECT_TRUE(Granted(recorded));

  // And 9 ms in it is not.
  Fixture early(false, 10s + 10ms);
  early.clock.now += 9ms;
  early.driver->Step(VoteRequestFrom(early, "b"));
  EXPECT_FALSE(Granted(early));

  // Without a record, 11 ms in is still within election_min of the start.
  Fixture unknown;
  unknown.clock.now += 11ms;
  unknown.driver->Step(VoteRequestFrom(unknown, "b"));
  EXPECT_FALSE(Granted(unknown));
}

TEST(DriverPromises, ARecordBeyondAnyPromiseIsClampedToElectionMin) {
  Fixture f(false, 10s + 1h);  // a promise never lasts more than election_min
  f.clock.now += 751ms;
  f.driver->Step(VoteRequestFrom(f, "b"));
  EXPECT_TRUE(Granted(f));
}

}  // namespace
}  // namespace instaface::runtime

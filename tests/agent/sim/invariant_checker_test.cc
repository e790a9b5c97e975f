// Each invariant check fires on a history that breaks it and stays quiet on a legal one, so a
// clean simulator run means something.
#include "invariant_checker.h"

#include <gtest/gtest.h>

namespace instaface::sim {
namespace {

using election::HardState;
using election::Message;
using election::MessageType;
using election::Role;
using election::Status;
using Nanos = election::Nanos;
using std::chrono::milliseconds;

class InvariantCheckerTest : public ::testing::Test {
 protected:
  InvariantChecker checker_{42, {"n1", "n2", "n3"}, 10};

  static Status Leader(election::Term term) {
    Status s;
    s.role = Role::kLeader;
    s.term = term;
    return s;
  }
  // Node `node` publishes leadership of `term`, its vote for itself durable as a leader's must be.
  void Lead(int node, Nanos now, election::Term term, Nanos lease_end) {
    checker_.OnPersist(node, now, HardState{term, "n" + std::to_string(node + 1)});
    checker_.OnStatus(node, now, Leader(term), lease_end);
  }
  static Message Vote(const std::string& from, const std::string& to, election::Term term) {
    Message m;
    m.type = MessageType::kVoteResponse;
    m.from = from;
    m.to = to;
    m.term = term;
    m.granted = true;
    return m;
  }
  bool Has(const char* check) {
    for (const Violation& v : checker_.violations()) {
      if (v.check == check) return true;
    }
    return false;
  }
  std::string FirstCheck() {
    return checker_.violations().empty() ? "" : checker_.violations().front().check;
  }
};

TEST_F(InvariantCheckerTest, OneLeaderPerTermAcrossTheWholeRun) {
  Lead(0, milliseconds(10), 3, Nanos(0));
  Lead(0, milliseconds(20), 3, Nanos(0));   // the same leader again: fine
  Lead(1, milliseconds(900), 4, Nanos(0));  // a new term: fine
  EXPECT_EQ(checker_.violation_count(), 0u);
  Lead(2, milliseconds(5000), 3, Nanos(0));  // long after, same term
  EXPECT_EQ(checker_.violation_count(), 1u);
  EXPECT_EQ(FirstCheck(), kOneLeaderPerTerm);
  EXPECT_EQ(checker_.violations().front().seed, 42u);
  EXPECT_EQ(checker_.elections(), 2u);
}

TEST_F(InvariantCheckerTest, LeasesMayFollowButNotOverlapInTrueTime) {
  Lead(0, milliseconds(0), 1, milliseconds(700));
  Lead(1, milliseconds(700), 2, milliseconds(1400));  // starts as n1's ends
  EXPECT_EQ(checker_.violation_count(), 0u);
  Lead(2, milliseconds(1399), 3, milliseconds(2000));
  EXPECT_TRUE(Has(kLeaseOverlap));
}

TEST_F(InvariantCheckerTest, ALeaderOfANewerTermWhileAnOlderLeaseHoldsIsAStaleFence) {
  Lead(0, milliseconds(0), 1, milliseconds(700));
  Lead(1, milliseconds(650), 2, Nanos(0));  // no lease yet, but it leads
  EXPECT_EQ(FirstCheck(), kStaleFence);
}

TEST_F(InvariantCheckerTest, ALeaseHandedOutAfterANewerLeaderPublishedIsAStaleFence) {
  Lead(1, milliseconds(100), 2, Nanos(0));
  Lead(0, milliseconds(200), 1, milliseconds(700));
  EXPECT_TRUE(Has(kStaleFence));
}

TEST_F(InvariantCheckerTest, AnOlderLeaseThatEndedBeforeTheNewLeaderIsFine) {
  Lead(0, milliseconds(0), 1, milliseconds(700));
  Lead(1, milliseconds(700), 2, Nanos(0));
  EXPECT_EQ(checker_.violation_count(), 0u);
}

TEST_F(InvariantCheckerTest, ALeaseStretchedByItsClockIntoAnotherIsAnOverlap) {
  Lead(0, milliseconds(0), 1, milliseconds(700));
  Lead(1, milliseconds(700), 2, milliseconds(1400));
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnLeaseMoved(1, milliseconds(800), Leader(2), milliseconds(1500));
  Lead(2, milliseconds(1450), 3, milliseconds(2000));
  EXPECT_TRUE(Has(kLeaseOverlap));
}

TEST_F(InvariantCheckerTest, ALeaseGivenUpWhileAliveEndsWhenItIsPublished) {
  Lead(0, milliseconds(0), 1, milliseconds(700));
  Status follower;
  follower.term = 2;
  checker_.OnStatus(0, milliseconds(100), follower, Nanos(0));
  Lead(1, milliseconds(200), 2, milliseconds(900));
  EXPECT_EQ(checker_.violation_count(), 0u);
}

TEST_F(InvariantCheckerTest, TermNeverDecreasesAcrossRestarts) {
  checker_.OnPersist(0, milliseconds(1), HardState{5, "n1"});
  checker_.OnPersist(0, milliseconds(2), HardState{4, ""});  // e.g. restart lost the write
  EXPECT_EQ(FirstCheck(), kTermDecreased);
}

TEST_F(InvariantCheckerTest, PublishedTermBelowPersistedTermIsCaught) {
  checker_.OnPersist(1, milliseconds(1), HardState{7, ""});
  Status s;
  s.term = 6;
  checker_.OnStatus(1, milliseconds(2), s, Nanos(0));
  EXPECT_EQ(FirstCheck(), kTermDecreased);
}

TEST_F(InvariantCheckerTest, TwoVotesInOneTermAreCaughtEvenAcrossIncarnations) {
  checker_.OnPersist(2, milliseconds(1), HardState{3, "n1"});
  checker_.OnSend(2, milliseconds(1), Vote("n3", "n1", 3), HardState{3, "n1"});
  EXPECT_EQ(checker_.violation_count(), 0u);
  // A restarted node that forgot its vote would persist and send a second one.
  checker_.OnPersist(2, milliseconds(50), HardState{3, "n2"});
  checker_.OnSend(2, milliseconds(50), Vote("n3", "n2", 3), HardState{3, "n2"});
  EXPECT_GE(checker_.violation_count(), 1u);
  EXPECT_EQ(FirstCheck(), kDoubleVote);
}

TEST_F(InvariantCheckerTest, ClearingTheVoteOfATermIsCaught) {
  checker_.OnPersist(0, milliseconds(1), HardState{3, "n2"});
  checker_.OnPersist(0, milliseconds(2), HardState{3, ""});
  EXPECT_EQ(FirstCheck(), kDoubleVote);
}

TEST_F(InvariantCheckerTest, AVoteSentBeforeItIsDurableIsCaught) {
  checker_.OnSend(1, milliseconds(1), Vote("n2", "n3", 9), HardState{8, ""});
  EXPECT_EQ(FirstCheck(), kUnpersistedSend);
}

// A candidate's vote requests may leave before its save; a crash may then lose the save, and the
// node may vote for another in that term, for nobody counted its vote for itself.
TEST_F(InvariantCheckerTest, AVoteRequestMayLeaveBeforeItsSave) {
  Message request;
  request.type = MessageType::kVoteRequest;
  request.from = "n1";
  request.to = "n2";
  request.term = 4;
  checker_.OnSend(0, milliseconds(1), request, HardState{3, ""});
  checker_.OnPersist(0, milliseconds(5), HardState{4, "n2"});  // restarted: votes for n2 in 4
  checker_.OnSend(0, milliseconds(5), Vote("n1", "n2", 4), HardState{4, "n2"});
  EXPECT_EQ(checker_.violation_count(), 0u);
}

TEST_F(InvariantCheckerTest, ALeaderMustHavePersistedItsOwnVote) {
  checker_.OnPersist(0, milliseconds(1), HardState{4, "n1"});
  checker_.OnStatus(0, milliseconds(2), Leader(4), Nanos(0));
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnPersist(1, milliseconds(1), HardState{4, ""});
  checker_.OnStatus(1, milliseconds(3), Leader(5), Nanos(0));
  EXPECT_EQ(FirstCheck(), kUnpersistedSend);
}

TEST_F(InvariantCheckerTest, AGrantedVoteMustBeDurableWhenItLeaves) {
  checker_.OnSend(1, milliseconds(1), Vote("n2", "n1", 4), HardState{4, "n1"});
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnSend(1, milliseconds(2), Vote("n2", "n3", 5), HardState{4, "n1"});
  EXPECT_EQ(FirstCheck(), kUnpersistedSend);
}

TEST_F(InvariantCheckerTest, SameTermHeartbeatAsLeaderIsReportedOncePerNode) {
  election::Stats stats;
  checker_.OnStats(0, milliseconds(1), stats);
  EXPECT_EQ(checker_.violation_count(), 0u);
  stats.same_term_heartbeats_as_leader = 1;
  checker_.OnStats(0, milliseconds(2), stats);
  checker_.OnStats(0, milliseconds(3), stats);
  EXPECT_EQ(checker_.violation_count(), 1u);
  EXPECT_EQ(FirstCheck(), kSameTermHeartbeat);
}

}  // namespace
}  // namespace instaface::sim

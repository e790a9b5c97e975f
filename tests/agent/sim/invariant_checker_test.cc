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
  checker_.OnStatus(0, milliseconds(10), Leader(3), Nanos(0));
  checker_.OnStatus(0, milliseconds(20), Leader(3), Nanos(0));   // the same leader again: fine
  checker_.OnStatus(1, milliseconds(900), Leader(4), Nanos(0));  // a new term: fine
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnStatus(2, milliseconds(5000), Leader(3), Nanos(0));  // long after, same term
  EXPECT_EQ(checker_.violation_count(), 1u);
  EXPECT_EQ(FirstCheck(), kOneLeaderPerTerm);
  EXPECT_EQ(checker_.violations().front().seed, 42u);
  EXPECT_EQ(checker_.elections(), 2u);
}

TEST_F(InvariantCheckerTest, LeasesMayFollowButNotOverlapInTrueTime) {
  checker_.OnStatus(0, milliseconds(0), Leader(1), milliseconds(700));
  checker_.OnStatus(1, milliseconds(700), Leader(2), milliseconds(1400));  // starts as n1's ends
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnStatus(2, milliseconds(1399), Leader(3), milliseconds(2000));
  EXPECT_TRUE(Has(kLeaseOverlap));
}

TEST_F(InvariantCheckerTest, ALeaderOfANewerTermWhileAnOlderLeaseHoldsIsAStaleFence) {
  checker_.OnStatus(0, milliseconds(0), Leader(1), milliseconds(700));
  checker_.OnStatus(1, milliseconds(650), Leader(2), Nanos(0));  // no lease yet, but it leads
  EXPECT_EQ(FirstCheck(), kStaleFence);
}

TEST_F(InvariantCheckerTest, ALeaseHandedOutAfterANewerLeaderPublishedIsAStaleFence) {
  checker_.OnStatus(1, milliseconds(100), Leader(2), Nanos(0));
  checker_.OnStatus(0, milliseconds(200), Leader(1), milliseconds(700));
  EXPECT_TRUE(Has(kStaleFence));
}

TEST_F(InvariantCheckerTest, AnOlderLeaseThatEndedBeforeTheNewLeaderIsFine) {
  checker_.OnStatus(0, milliseconds(0), Leader(1), milliseconds(700));
  checker_.OnStatus(1, milliseconds(700), Leader(2), Nanos(0));
  EXPECT_EQ(checker_.violation_count(), 0u);
}

TEST_F(InvariantCheckerTest, ALeaseStretchedByItsClockIntoAnotherIsAnOverlap) {
  checker_.OnStatus(0, milliseconds(0), Leader(1), milliseconds(700));
  checker_.OnStatus(1, milliseconds(700), Leader(2), milliseconds(1400));
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnLeaseMoved(1, milliseconds(800), Leader(2), milliseconds(1500));
  checker_.OnStatus(2, milliseconds(1450), Leader(3), milliseconds(2000));
  EXPECT_TRUE(Has(kLeaseOverlap));
}

TEST_F(InvariantCheckerTest, ALeaseGivenUpWhileAliveEndsWhenItIsPublished) {
  checker_.OnStatus(0, milliseconds(0), Leader(1), milliseconds(700));
  Status follower;
  follower.term = 2;
  checker_.OnStatus(0, milliseconds(100), follower, Nanos(0));
  checker_.OnStatus(1, milliseconds(200), Leader(2), milliseconds(900));
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

TEST_F(InvariantCheckerTest, ACandidacyMustPersistTheSelfVoteFirst) {
  Message request;
  request.type = MessageType::kVoteRequest;
  request.from = "n1";
  request.to = "n2";
  request.term = 4;
  checker_.OnSend(0, milliseconds(1), request, HardState{4, "n1"});
  EXPECT_EQ(checker_.violation_count(), 0u);
  checker_.OnSend(0, milliseconds(1), request, HardState{3, ""});
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

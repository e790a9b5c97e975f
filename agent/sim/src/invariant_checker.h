// Checks the election's safety invariants over one simulated run, from what the nodes persist,
// send and publish. The world calls it after every step; it keeps the whole history it needs
// (leaders by term, votes by term, lease ends) across crashes and restarts.
// Thread safety: none; one per simulated world.
#ifndef INSTAFACE_SIM_INVARIANT_CHECKER_H_
#define INSTAFACE_SIM_INVARIANT_CHECKER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "instaface/election/election.h"
#include "instaface/sim/simulator.h"

namespace instaface::sim {

class InvariantChecker {
 public:
  using Nanos = election::Nanos;

  InvariantChecker(uint64_t seed, std::vector<std::string> names, size_t max_listed);

  // The node made `state` durable (the simulated fsync).
  void OnPersist(int node, Nanos now, const election::HardState& state);
  // The node released `message` to the network; `durable` is what it had persisted by then.
  void OnSend(int node, Nanos now, const election::Message& message,
              const election::HardState& durable);
  // The node's app now reads `status` (its shared-memory record took it). `lease_end` is the
  // true time at which that lease runs out (its lease_until converted from its drifted clock),
  // or zero when it holds none.
  void OnStatus(int node, Nanos now, const election::Status& status, Nanos lease_end);
  // The node's clock changed rate, so the lease its app reads (`status`, published earlier)
  // now ends at `lease_end`.
  void OnLeaseMoved(int node, Nanos now, const election::Status& status, Nanos lease_end);
  void OnStats(int node, Nanos now, const election::Stats& stats);
  void OnLivenessFailure(Nanos now, const std::string& description);

  uint64_t violation_count() const { return count_; }
  std::vector<Violation>& violations() { return listed_; }
  uint64_t elections() const { return leader_by_term_.size(); }
  // The node that led `term`, or -1.
  int leader_by_term(election::Term term) const;

 private:
  void Record(Nanos now, const char* check, std::string description);
  // Every vote seen, persisted or sent, across restarts: one candidate per term.
  void RecordVote(int node, Nanos now, election::Term term, const std::string& candidate);
  // Records node's app-visible lease and checks it against every other app's.
  void SetLease(int node, Nanos now, election::Term term, Nanos lease_end);

  uint64_t seed_;
  std::vector<std::string> names_;
  size_t max_listed_;
  uint64_t count_ = 0;
  std::vector<Violation> listed_;

  std::map<election::Term, int> leader_by_term_;              // every term that had a leader
  std::vector<std::map<election::Term, std::string>> votes_;  // per voter: term -> candidate
  std::vector<election::HardState> last_persisted_;           // per node, across restarts
  std::vector<election::Term> highest_term_;                  // per node, across restarts
  std::vector<Nanos> lease_end_;                              // per node; true time, 0 = none
  std::vector<election::Term> lease_term_;                    // per node: the lease's term
  election::Term newest_published_leader_term_ = 0;           // by any app's record
  std::vector<bool> reported_same_term_heartbeat_;
  // (check, term, node, other node): one report per distinct conflict, not per status update.
  std::set<std::tuple<std::string, election::Term, int, int>> reported_;
};

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_INVARIANT_CHECKER_H_

#include "invariant_checker.h"

#include <cstdio>
#include <utility>

namespace instaface::sim {
namespace {

using election::HardState;
using election::Message;
using election::MessageType;
using election::Role;
using election::Status;
using election::Term;

std::string Ms(InvariantChecker::Nanos t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(t.count()) / 1e6);
  return buf;
}

}  // namespace

InvariantChecker::InvariantChecker(uint64_t seed, std::vector<std::string> names, size_t max_listed)
    : seed_(seed),
      names_(std::move(names)),
      max_listed_(max_listed),
      votes_(names_.size()),
      last_persisted_(names_.size()),
      highest_term_(names_.size(), 0),
      lease_end_(names_.size(), Nanos(0)),
      lease_term_(names_.size(), 0),
      reported_same_term_heartbeat_(names_.size(), false) {}

void InvariantChecker::Record(Nanos now, const char* check, std::string description) {
  ++count_;
  if (listed_.size() < max_listed_) listed_.push_back({seed_, now, check, std::move(description)});
}

int InvariantChecker::leader_by_term(Term term) const {
  auto it = leader_by_term_.find(term);
  return it == leader_by_term_.end() ? -1 : it->second;
}

void InvariantChecker::OnPersist(int node, Nanos now, const HardState& state) {
  const HardState& before = last_persisted_[node];
  const std::string& name = names_[node];
  if (state.term < before.term) {
    Record(now, kTermDecreased,
           name + " persisted term " + std::to_string(state.term) + " after term " +
               std::to_string(before.term));
  } else if (state.term == before.term && !before.voted_for.empty() && state.voted_for.empty()) {
    // Forgetting the vote of a term would let the node vote again in it.
    Record(now, kDoubleVote,
           name + " cleared its vote for '" + before.voted_for + "' in term " +
               std::to_string(state.term));
  }
  if (!state.voted_for.empty()) RecordVote(node, now, state.term, state.voted_for);
  last_persisted_[node] = state;
  if (state.term > highest_term_[node]) highest_term_[node] = state.term;
}

void InvariantChecker::OnSend(int node, Nanos now, const Message& message,
                              const HardState& durable) {
  const std::string& name = names_[node];
  // A granted vote spends this node's vote for message.term. A vote request does not yet: the
  // candidate's vote for itself counts once it leads, and must be durable by then (OnStatus);
  // until then a crash may lose it, and the node may vote again in that term as if it had
  // never stood.
  if (message.type != MessageType::kVoteResponse || !message.granted) return;
  const std::string& candidate = message.to;
  if (durable.term != message.term || durable.voted_for != candidate) {
    Record(now, kUnpersistedSend,
           name + " sent " + election::MessageTypeName(message.type) + " for '" + candidate +
               "' in term " + std::to_string(message.term) + " but had persisted term " +
               std::to_string(durable.term) + " vote '" + durable.voted_for + "'");
  }
  RecordVote(node, now, message.term, candidate);
}

void InvariantChecker::RecordVote(int node, Nanos now, Term term, const std::string& candidate) {
  auto [it, inserted] = votes_[node].emplace(term, candidate);
  if (!inserted && it->second != candidate) {
    Record(now, kDoubleVote,
           names_[node] + " voted for " + it->second + " and for " + candidate + " in term " +
               std::to_string(term));
  }
}

void InvariantChecker::OnStatus(int node, Nanos now, const Status& status, Nanos lease_end) {
  const std::string& name = names_[node];
  if (status.term < highest_term_[node]) {
    Record(now, kTermDecreased,
           name + " published term " + std::to_string(status.term) + " after term " +
               std::to_string(highest_term_[node]));
  } else {
    highest_term_[node] = status.term;
  }

  if (status.role == Role::kLeader) {
    const HardState& durable = last_persisted_[node];
    if ((durable.term != status.term || durable.voted_for != name) &&
        reported_.insert({kUnpersistedSend, status.term, node, -1}).second) {
      Record(now, kUnpersistedSend,
             name + " led term " + std::to_string(status.term) + " but had persisted term " +
                 std::to_string(durable.term) + " vote '" + durable.voted_for + "'");
    }
    auto [it, inserted] = leader_by_term_.emplace(status.term, node);
    // Reported once per usurper and term, not again at every later status it publishes.
    if (!inserted && it->second != node &&
        reported_.insert({kOneLeaderPerTerm, status.term, node, -1}).second) {
      Record(now, kOneLeaderPerTerm,
             name + " became leader in term " + std::to_string(status.term) + ", which " +
                 names_[it->second] + " already led");
    }
  }

  if (status.role == Role::kLeader && status.term > newest_published_leader_term_) {
    newest_published_leader_term_ = status.term;
    // Every app still acting on an older term's lease now holds a stale fence token.
    for (size_t other = 0; other < names_.size(); ++other) {
      if (static_cast<int>(other) == node || lease_end_[other] <= now ||
          lease_term_[other] >= status.term) {
        continue;
      }
      if (!reported_.insert({kStaleFence, lease_term_[other], static_cast<int>(other), node})
               .second) {
        continue;
      }
      Record(now, kStaleFence,
             names_[other] + "'s app holds a lease of term " + std::to_string(lease_term_[other]) +
                 " until " + Ms(lease_end_[other]) + " while " + name + " leads term " +
                 std::to_string(status.term));
    }
  }
  if (lease_end > now && status.term < newest_published_leader_term_ &&
      reported_.insert({kStaleFence, status.term, node, -1}).second) {
    Record(now, kStaleFence,
           name + "'s app was handed a lease of term " + std::to_string(status.term) +
               " after a leader of term " + std::to_string(newest_published_leader_term_) +
               " published");
  }
  SetLease(node, now, status.term, lease_end);
}

void InvariantChecker::OnLeaseMoved(int node, Nanos now, const Status& status, Nanos lease_end) {
  SetLease(node, now, status.term, lease_end);
}

void InvariantChecker::SetLease(int node, Nanos now, Term term, Nanos lease_end) {
  const std::string& name = names_[node];
  if (lease_end > now) {
    for (size_t other = 0; other < names_.size(); ++other) {
      if (static_cast<int>(other) == node || lease_end_[other] <= now) continue;
      if (!reported_.insert({kLeaseOverlap, term, node, static_cast<int>(other)}).second) {
        continue;
      }
      Record(now, kLeaseOverlap,
             name + " holds a lease (term " + std::to_string(term) + ") until " + Ms(lease_end) +
                 " while " + names_[other] + " holds one until " + Ms(lease_end_[other]));
    }
    lease_end_[node] = lease_end;
    lease_term_[node] = term;
  } else if (lease_end_[node] > now) {
    // Given up while alive (step-down, transfer, higher term): the app sees it end now.
    lease_end_[node] = now;
  }
}

void InvariantChecker::OnStats(int node, Nanos now, const election::Stats& stats) {
  if (stats.same_term_heartbeats_as_leader != 0 && !reported_same_term_heartbeat_[node]) {
    reported_same_term_heartbeat_[node] = true;
    Record(now, kSameTermHeartbeat,
           names_[node] + " as leader received a heartbeat of its own term (" +
               std::to_string(stats.same_term_heartbeats_as_leader) + " times)");
  }
}

void InvariantChecker::OnLivenessFailure(Nanos now, const std::string& description) {
  Record(now, kLiveness, description);
}

}  // namespace instaface::sim

#include "memory_network.h"

#include <algorithm>

namespace instaface::election::testing {

namespace {

std::vector<NodeId> Others(const std::vector<NodeId>& all, const NodeId& self) {
  std::vector<NodeId> out;
  for (const NodeId& id : all) {
    if (id != self) out.push_back(id);
  }
  return out;
}

std::string Describe(const Message& m) {
  return std::string(MessageTypeName(m.type)) + " " + m.from + "->" + m.to +
         " term=" + std::to_string(m.term);
}

}  // namespace

MemoryNetwork::MemoryNetwork(Options options) : options_(std::move(options)), rng_(options_.seed) {
  for (int i = 1; i <= options_.nodes; ++i) ids_.push_back("n" + std::to_string(i));
  for (size_t i = 0; i < ids_.size(); ++i) {
    Node& node = nodes_[ids_[i]];
    node.election = std::make_unique<Election>(options_.config, ids_[i], Others(ids_, ids_[i]),
                                               HardState{}, options_.seed * 1000003 + i, now_);
    drain(ids_[i]);
  }
}

Election& MemoryNetwork::node(const NodeId& id) { return *nodes_.at(id).election; }

bool MemoryNetwork::alive(const NodeId& id) const { return nodes_.at(id).election != nullptr; }

void MemoryNetwork::violation(std::string what) {
  violations_.push_back("t=" + std::to_string(now_.count() / 1000) + "us " + what);
}

bool MemoryNetwork::link_up(const NodeId& from, const NodeId& to) const {
  return cut_.count({from, to}) == 0;
}

void MemoryNetwork::drain(const NodeId& id) {
  Node& node = nodes_.at(id);
  if (!node.election) return;
  if (node.election->stats().same_term_heartbeats_as_leader != 0) {
    violation(id + " saw a same-term heartbeat while leader");
  }
  Ready ready = node.election->ready();
  if (ready.hard_state) {
    const HardState& next = *ready.hard_state;
    if (next.term < node.persisted.term) {
      violation(id + " term went back from " + std::to_string(node.persisted.term) + " to " +
                std::to_string(next.term));
    }
    if (!next.voted_for.empty()) {
      auto [it, inserted] = vote_of_.emplace(std::make_pair(id, next.term), next.voted_for);
      if (!inserted && it->second != next.voted_for) {
        violation(id + " voted twice in term " + std::to_string(next.term) + ": " + it->second +
                  " and " + next.voted_for);
      }
    }
    node.persisted = next;
  }
  if (ready.promised_until) node.promised_until = ready.promised_until;
  for (Message& m : ready.messages) {
    // A vote or candidacy may only leave once what it promises is durable.
    if (m.type == MessageType::kVoteRequest &&
        (node.persisted.term != m.term || node.persisted.voted_for != id)) {
      violation("unpersisted candidacy: " + Describe(m));
    }
    if (m.type == MessageType::kVoteResponse && m.granted &&
        (node.persisted.term != m.term || node.persisted.voted_for != m.to)) {
      violation("unpersisted vote: " + Describe(m));
    }
    if (m.from != id) violation("message with a forged sender: " + Describe(m));
    sent_.push_back(m);
    if (!link_up(m.from, m.to)) continue;
    bool dropped = std::any_of(drop_rules_.begin(), drop_rules_.end(),
                               [&](const auto& rule) { return rule(m); });
    if (dropped) continue;
    const int copies = options_.duplicate_percent > 0 &&
                               static_cast<int>(rng_() % 100) < options_.duplicate_percent
                           ? 2
                           : 1;
    for (int copy = 0; copy < copies; ++copy) {
      Nanos delay = options_.latency;
      if (options_.jitter > Nanos(0)) {
        delay += Nanos(static_cast<int64_t>(rng_() % (options_.jitter.count() + 1)));
      }
      queue_.push(InFlight{now_ + delay, seq_++, m});
    }
  }
  if (ready.status) {
    const Status& s = *ready.status;
    if (s.role == Role::kLeader) {
      auto [it, inserted] = leader_of_term_.emplace(s.term, id);
      if (!inserted && it->second != id) {
        violation("two leaders in term " + std::to_string(s.term) + ": " + it->second + " and " +
                  id);
      }
    }
    node.published = s;
  }
}

void MemoryNetwork::check_global() {
  std::vector<NodeId> holders;
  for (const auto& [id, node] : nodes_) {
    if (node.published && node.published->role == Role::kLeader &&
        node.published->lease_until > now_) {
      holders.push_back(id);
    }
  }
  if (holders.size() > 1) {
    violation("overlapping leases: " + holders[0] + " and " + holders[1]);
  }
}

Nanos MemoryNetwork::next_event() const {
  Nanos next = Nanos::max();
  if (!queue_.empty()) next = queue_.top().at;
  for (const auto& [id, node] : nodes_) {
    if (node.election) next = std::min(next, node.election->next_deadline());
  }
  // A deadline in the past after a tick was already reported; step on rather than spin.
  if (next <= now_) next = now_ + std::chrono::milliseconds(1);
  return next;
}

bool MemoryNetwork::run_until(const std::function<bool()>& done, Nanos limit) {
  const Nanos end = now_ + limit;
  while (!done()) {
    const Nanos next = next_event();
    if (next > end) {
      now_ = end;
      return done();
    }
    now_ = next;
    while (!queue_.empty() && queue_.top().at <= now_) {
      InFlight in_flight = queue_.top();
      queue_.pop();
      Node& target = nodes_.at(in_flight.message.to);
      if (!target.election) continue;
      ++delivered_;
      target.election->step(in_flight.message, now_);
      drain(in_flight.message.to);
    }
    for (const NodeId& id : ids_) {
      Node& node = nodes_.at(id);
      if (!node.election || node.election->next_deadline() > now_) continue;
      node.election->tick(now_);
      drain(id);
      if (node.election->next_deadline() <= now_) {
        violation(id + " deadline not in the future after tick");
      }
    }
    check_global();
  }
  return true;
}

void MemoryNetwork::run_for(Nanos duration) {
  run_until([] { return false; }, duration);
}

std::vector<NodeId> MemoryNetwork::leaders() const {
  std::vector<NodeId> out;
  for (const NodeId& id : ids_) {
    const Node& node = nodes_.at(id);
    if (node.election && node.election->status().role == Role::kLeader) out.push_back(id);
  }
  return out;
}

std::optional<NodeId> MemoryNetwork::leader() const {
  std::optional<NodeId> best;
  Term best_term = 0;
  for (const NodeId& id : leaders()) {
    Term term = nodes_.at(id).election->status().term;
    if (!best || term > best_term) {
      best = id;
      best_term = term;
    }
  }
  return best;
}

std::optional<NodeId> MemoryNetwork::elect(Nanos limit) {
  auto settled = [&] {
    std::vector<NodeId> current = leaders();
    if (current.size() != 1) return false;
    const Status ls = node(current[0]).status();
    for (const NodeId& id : ids_) {
      if (!alive(id) || id == current[0]) continue;
      if (!link_up(id, current[0]) || !link_up(current[0], id)) continue;
      const Status s = node(id).status();
      if (s.unplugged || ls.unplugged) continue;
      if (s.leader != current[0] || s.term != ls.term) return false;
    }
    return true;
  };
  if (!run_until(settled, limit)) return std::nullopt;
  return leaders()[0];
}

void MemoryNetwork::cut(const NodeId& a, const NodeId& b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void MemoryNetwork::isolate(const NodeId& id) {
  for (const NodeId& other : ids_) {
    if (other != id) cut(id, other);
  }
}

void MemoryNetwork::partition(const std::vector<NodeId>& side) {
  for (const NodeId& a : side) {
    for (const NodeId& b : ids_) {
      if (std::find(side.begin(), side.end(), b) == side.end()) cut(a, b);
    }
  }
}

void MemoryNetwork::heal() {
  cut_.clear();
  drop_rules_.clear();
}

void MemoryNetwork::drop_if(std::function<bool(const Message&)> rule) {
  drop_rules_.push_back(std::move(rule));
}

void MemoryNetwork::inject(const Message& message) {
  queue_.push(InFlight{now_ + options_.latency, seq_++, message});
}

void MemoryNetwork::crash(const NodeId& id) { nodes_.at(id).election.reset(); }

void MemoryNetwork::restart(const NodeId& id, PromiseRecord record) {
  Node& node = nodes_.at(id);
  ++node.incarnation;
  const size_t index = std::find(ids_.begin(), ids_.end(), id) - ids_.begin();
  std::optional<Nanos> earlier;
  if (record == PromiseRecord::kKept) earlier = node.promised_until;
  if (record == PromiseRecord::kForgotten) earlier = now_;
  node.election = std::make_unique<Election>(
      options_.config, id, Others(ids_, id), node.persisted,
      options_.seed * 1000003 + index + node.incarnation * 7919, now_, earlier);
  drain(id);
  check_global();
}

void MemoryNetwork::with_node(const NodeId& id,
                              const std::function<void(Election&, Nanos)>& action) {
  action(node(id), now_);
  drain(id);
  check_global();
}

}  // namespace instaface::election::testing

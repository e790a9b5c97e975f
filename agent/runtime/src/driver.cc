#include "instaface/runtime/driver.h"

#include <algorithm>
#include <utility>

namespace instaface::runtime {

using election::Role;

Driver::Driver(DriverOptions options, election::HardState restored, uint64_t seed, Clock& clock,
               Outbox& outbox, HardStateStore* store, PromiseRecord* promises,
               std::vector<StatusSink*> sinks)
    : options_(std::move(options)),
      clock_(clock),
      outbox_(outbox),
      store_(store),
      promises_(promises),
      sinks_(std::move(sinks)) {
  const Nanos now = clock_.Now();
  std::optional<Nanos> earlier;
  if (promises_ != nullptr) earlier = promises_->Earlier();
  core_ = std::make_unique<election::Election>(options_.config, options_.self_id,
                                               std::vector<election::NodeId>{}, std::move(restored),
                                               seed, now, earlier);
  published_.self_id = options_.self_id;
  published_.at = now;
  Drain(now);
  Housekeep(now);
}

Driver::~Driver() = default;

void Driver::Step(const election::Message& message) {
  if (failed_) return;
  const Nanos now = clock_.Now();
  core_->step(message, now);
  Drain(now);
}

void Driver::Tick() {
  if (failed_) return;
  const Nanos now = clock_.Now();
  core_->tick(now);
  Drain(now);
  if (now >= next_housekeeping_) Housekeep(now);
}

void Driver::PeerDied(const election::NodeId& peer, Nanos observed_at) {
  if (failed_) return;
  const Nanos now = clock_.Now();
  core_->peer_died(peer, observed_at, now);
  core_->tick(now);  // the first in rank stands in this same input
  Drain(now);
}

bool Driver::TransferLeadership(const election::NodeId& target) {
  if (failed_) return false;
  const Nanos now = clock_.Now();
  const bool started = core_->transfer_leadership(target, now);
  Drain(now);
  return started;
}

bool Driver::StepDown() {
  if (failed_) return false;
  const Nanos now = clock_.Now();
  const bool stepped = core_->step_down(now);
  Drain(now);
  return stepped;
}

void Driver::SetUnplugged(bool unplugged) {
  if (failed_) return;
  const Nanos now = clock_.Now();
  core_->set_unplugged(unplugged, now);
  Drain(now);
}

void Driver::SetEligible(bool eligible) {
  if (failed_) return;
  const Nanos now = clock_.Now();
  core_->set_eligible(eligible, now);
  Drain(now);
}

void Driver::SetPeers(std::map<election::NodeId, PeerAddresses> peers) {
  if (failed_) return;
  peers.erase(options_.self_id);
  const bool addresses_changed = peers != peers_;
  peers_ = std::move(peers);
  std::vector<election::NodeId> ids;
  ids.reserve(peers_.size());
  for (const auto& entry : peers_) ids.push_back(entry.first);
  core_->set_peers(std::move(ids));
  const Nanos now = clock_.Now();
  Drain(now);
  // The leader's addresses may have just become known.
  const PeerAddresses leader = AddressesOf(published_.election.leader);
  if (addresses_changed && !published_.election.leader.empty() &&
      (leader.peer != published_.leader_peer_address ||
       leader.app != published_.leader_app_address)) {
    PublishToSinks(published_.election, now);
  }
}

Nanos Driver::NextDeadline() const {
  if (failed_) return Nanos::max();
  return std::min(core_->next_deadline(), next_housekeeping_);
}

void Driver::Drain(Nanos now) {
  while (!failed_ && core_->has_ready()) {
    election::Ready ready = core_->ready();
    if (ready.hard_state && store_ != nullptr) {
      if (options_.unsafe_send_before_persist) {
        for (const election::Message& m : ready.messages) outbox_.Send(m);
        ready.messages.clear();
      } else if (IsCandidacy(ready)) {
        SendVoteRequests(ready);
      }
      if (common::Status st = store_->Save(*ready.hard_state); !st.ok()) {
        failed_ = true;
        if (options_.on_persist_failure) options_.on_persist_failure(st.message());
        return;
      }
    }
    if (ready.promised_until && promises_ != nullptr) promises_->Record(*ready.promised_until);
    // Published first, whatever the status: a lease given up must reach the app before any
    // message that could let a rival win, and a lease gained rests on promises already made
    // (acks, votes), so the app may act on it before this node's heartbeats leave.
    const bool first = ready.status && !options_.unsafe_send_before_publish;
    if (first) PublishToSinks(*ready.status, now);
    for (const election::Message& m : ready.messages) outbox_.Send(m);
    if (ready.status && !first) PublishToSinks(*ready.status, now);
  }
}

// A candidacy: a new term with this node's vote for itself, and nothing in the batch that
// promises anything or that its app must see first.
bool Driver::IsCandidacy(const election::Ready& ready) const {
  return ready.hard_state->voted_for == options_.self_id && !ready.promised_until &&
         published_.election.role != Role::kLeader;
}

// A candidate's vote requests leave before its term and vote are durable: they are the one
// thing a fdatasync need not precede. What must be durable first is the vote the candidate
// gives itself, before anything rests on it: the replies that make it leader are stepped after
// Drain returns, after the save, and a leadership won at once (a quorum of one) is published
// and announced below, after the save too. A crash before the save loses a vote nobody acted
// on: the node restarts in its old term and may vote in the new one, for another, as if it had
// never stood, and no one can have won with its vote. Takes them out of `ready`.
void Driver::SendVoteRequests(election::Ready& ready) {
  auto requests = std::stable_partition(
      ready.messages.begin(), ready.messages.end(),
      [](const election::Message& m) { return m.type != election::MessageType::kVoteRequest; });
  for (auto it = requests; it != ready.messages.end(); ++it) outbox_.Send(*it);
  ready.messages.erase(requests, ready.messages.end());
}

void Driver::PublishToSinks(const election::Status& status, Nanos now) {
  const PeerAddresses leader = AddressesOf(status.leader);
  published_.election = status;
  published_.leader_peer_address = leader.peer;
  published_.leader_app_address = leader.app;
  published_.at = now;
  for (StatusSink* sink : sinks_) sink->Publish(published_);
}

void Driver::Housekeep(Nanos now) {
  next_housekeeping_ = now + options_.housekeeping_interval;
  for (StatusSink* sink : sinks_) sink->Housekeep(now, *this);
}

PeerAddresses Driver::AddressesOf(const election::NodeId& id) const {
  if (id.empty()) return {};
  if (id == options_.self_id) return {options_.self_peer_address, options_.self_app_address};
  auto it = peers_.find(id);
  return it == peers_.end() ? PeerAddresses{} : it->second;
}

}  // namespace instaface::runtime

#include "status_sinks.h"

namespace instaface::runtime {

void ShmSink::Publish(const PublishedStatus& status) {
  const election::Status& s = status.election;
  shm::PublishedState state;
  switch (s.role) {
    case election::Role::kLeader:
      state.role = instaface::Role::kLeader;
      break;
    case election::Role::kCandidate:
    case election::Role::kPreCandidate:
      state.role = instaface::Role::kCandidate;
      break;
    case election::Role::kFollower:
      state.role = instaface::Role::kFollower;
      break;
  }
  state.term = s.term;
  state.lease_until_ns = s.role == election::Role::kLeader && s.lease_until.count() > 0
                             ? static_cast<uint64_t>(s.lease_until.count())
                             : 0;
  state.self_id = status.self_id;
  state.leader_id = s.leader;
  state.leader_peer_address = status.leader_peer_address;
  state.leader_app_address = status.leader_app_address;
  writer_.Publish(state);
}

void ShmSink::Housekeep(Nanos now, const Driver& /*driver*/) {
  writer_.StampLiveness(static_cast<uint64_t>(now.count()));
}

}  // namespace instaface::runtime

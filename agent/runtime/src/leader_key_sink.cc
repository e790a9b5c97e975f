#include "status_sinks.h"

namespace instaface::runtime {

void LeaderKeySink::Publish(const PublishedStatus& status) {
  const election::Status& s = status.election;
  const bool leading = s.role == election::Role::kLeader;
  if (leading && (!published_ || s.term != term_)) {
    discovery_.PublishLeader(self_id_, s.term, app_address_, ttl_);
    published_ = true;
    term_ = s.term;
  } else if (!leading && published_) {
    discovery_.ClearLeader();
    published_ = false;
  }
}

}  // namespace instaface::runtime

#include "status_sinks.h"

namespace instaface::runtime {

bool VisibleChange(const election::Status& a, const election::Status& b) {
  return a.role != b.role || a.term != b.term || a.leader != b.leader ||
         a.unplugged != b.unplugged || a.transferring != b.transferring;
}

void ControlSink::Publish(const PublishedStatus& status) {
  if (!VisibleChange(last_, status.election)) return;
  last_ = status.election;
  nlohmann::json event = describe_(status);
  event["event"] = "change";
  server_.Broadcast(event);
}

}  // namespace instaface::runtime

#include <spdlog/spdlog.h>

#include "status_sinks.h"

namespace instaface::runtime {

void LogSink::Publish(const PublishedStatus& status) {
  const election::Status& s = status.election;
  if (!VisibleChange(last_, s)) return;
  last_ = s;
  spdlog::info("role {} term {} leader {}{}{}", election::RoleName(s.role), s.term,
               s.leader.empty() ? "none" : s.leader, s.unplugged ? " (unplugged)" : "",
               s.transferring ? " (transferring)" : "");
}

}  // namespace instaface::runtime

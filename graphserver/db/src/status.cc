#include "instaface/graphdb/status.h"

#include <errmsg.h>
#include <mysqld_error.h>

namespace instaface::graphdb {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kConflict:
      return "Conflict";
    case StatusCode::kFenceLost:
      return "FenceLost";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

bool Status::connection_lost() const {
  switch (mysql_errno_) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_COMMANDS_OUT_OF_SYNC:  // the protocol state is unknown: do not reuse
    case ER_CONNECTION_KILLED:     // the server is shutting down or killed us
    case ER_SERVER_SHUTDOWN:
      return true;
    default:
      return false;
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = StatusCodeName(code_);
  s += ": ";
  s += message_;
  if (mysql_errno_ != 0) s += " (MySQL " + std::to_string(mysql_errno_) + ")";
  return s;
}

}  // namespace instaface::graphdb

#include "instaface/graphdb/mysql_error.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include <utility>

namespace instaface::graphdb {
namespace {

constexpr const char* kMysql = "MySQL";

}  // namespace

common::Status MysqlError(common::StatusCode code, std::string message, unsigned int mysql_errno) {
  common::ErrorCause cause;
  if (mysql_errno != 0) cause = {kMysql, mysql_errno};
  return common::Status(code, std::move(message), std::move(cause));
}

unsigned int MysqlErrno(const common::Status& status) {
  return status.cause().system == kMysql ? status.cause().number : 0;
}

bool ConnectionLost(unsigned int mysql_errno) {
  switch (mysql_errno) {
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

bool ConnectionLost(const common::Status& status) { return ConnectionLost(MysqlErrno(status)); }

}  // namespace instaface::graphdb

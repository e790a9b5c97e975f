// How a MySQL/MariaDB error travels in a common::Status. The graph database reports every
// failure as a common::Status whose code the HTTP layer maps to a response (InvalidArgument ->
// 400, NotFound -> 404, Conflict -> 409, FenceLost and Unavailable -> 503, Internal -> 500).
// When the server or the client library produced the error, its number (ER_* / CR_*) is the
// Status's cause, under the system name "MySQL", so callers can tell a lost connection or a
// missing privilege from the rest.
//
// Thread safety: free functions over values.
#ifndef INSTAFACE_GRAPHDB_MYSQL_ERROR_H_
#define INSTAFACE_GRAPHDB_MYSQL_ERROR_H_

#include <string>

#include "instaface/common/status.h"

namespace instaface::graphdb {

// A Status of `code` caused by MySQL error `mysql_errno` (none when 0).
common::Status MysqlError(common::StatusCode code, std::string message, unsigned int mysql_errno);

// The server's or client library's error number behind `status`, 0 when not from MySQL.
unsigned int MysqlErrno(const common::Status& status);

// True when the error means the connection is dead (server restarted, network cut): the
// connection must be dropped and a new one opened.
bool ConnectionLost(unsigned int mysql_errno);
bool ConnectionLost(const common::Status& status);

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_MYSQL_ERROR_H_

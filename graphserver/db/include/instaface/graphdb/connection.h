// RAII wrappers over MariaDB Connector/C (the MySQL C API): one Connection (MYSQL*) and the
// PreparedStatements (MYSQL_STMT*) it owns. Every statement that carries input is prepared and
// bound by type; no SQL text is ever assembled from input.
//
// Connections are opened with connect/read/write timeouts, utf8mb4, session time zone UTC
// (+00:00, so DATETIME values are UTC) and CLIENT_FOUND_ROWS (an UPDATE reports the rows it
// matched, not only those it changed: the fence relies on that). Automatic reconnection is off:
// a lost connection is reported (ConnectionLost() in mysql_error.h) and the Pool replaces it,
// because a silent reconnect would lose the open transaction and the prepared statements.
//
// Thread safety: a Connection and its statements belong to one thread at a time (the Pool hands
// them out exclusively). Different Connections may be used concurrently.
#ifndef INSTAFACE_GRAPHDB_CONNECTION_H_
#define INSTAFACE_GRAPHDB_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/graphdb/connection_string.h"

struct st_mysql;
struct st_mysql_stmt;

namespace instaface::graphdb {

// A parameter or a column value. Integer columns come back as int64_t, floating point as double,
// everything else (text, JSON, DATETIME as "YYYY-MM-DD HH:MM:SS.ffffff") as std::string;
// SQL NULL is std::monostate.
using Value = std::variant<std::monostate, int64_t, double, std::string>;
using Row = std::vector<Value>;

struct ExecResult {
  uint64_t affected_rows = 0;  // matched rows for UPDATE (CLIENT_FOUND_ROWS)
  uint64_t insert_id = 0;      // AUTO_INCREMENT value of an INSERT, else 0
};

class Connection;

class PreparedStatement {
 public:
  ~PreparedStatement();
  PreparedStatement(const PreparedStatement&) = delete;
  PreparedStatement& operator=(const PreparedStatement&) = delete;

  // Runs a statement that returns no rows (INSERT, UPDATE, DELETE).
  common::StatusOr<ExecResult> Execute(const std::vector<Value>& params);
  // Runs a SELECT and returns all rows (buffered on the client).
  common::StatusOr<std::vector<Row>> Query(const std::vector<Value>& params);

  unsigned int param_count() const;

 private:
  friend class Connection;
  PreparedStatement(Connection* owner, st_mysql_stmt* stmt) : owner_(owner), stmt_(stmt) {}
  common::Status Error(std::string_view what);

  Connection* owner_;
  st_mysql_stmt* stmt_;
};

class Connection {
 public:
  // Connects to config.server:port as config.user. With use_database false no default database
  // is selected (schema setup uses that to create an absent database).
  static common::StatusOr<std::unique_ptr<Connection>> Open(const ConnectionConfig& config,
                                                            bool use_database = true);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs fixed SQL text (DDL, BEGIN, SET ...). Never pass text that contains input.
  common::Status ExecuteFixed(std::string_view sql);
  // Prepares `sql` once per connection and caches it; the pointer stays valid as long as the
  // Connection does.
  common::StatusOr<PreparedStatement*> Prepare(const std::string& sql);

  common::Status Begin();
  // After Commit() was sent the outcome of a lost connection is unknown (the server may have
  // committed): commit_sent() tells the Pool not to retry such a transaction.
  common::Status Commit();
  common::Status Rollback();
  bool commit_sent() const { return commit_sent_; }

  // Round trip to the server; false (and the connection marked broken) when it is gone.
  bool Ping();
  // True once an operation failed with a lost-connection error; the Pool then drops it.
  bool broken() const { return broken_; }
  std::chrono::steady_clock::time_point last_used() const { return last_used_; }

  st_mysql* raw() { return mysql_; }

 private:
  friend class PreparedStatement;
  friend class Pool;
  explicit Connection(st_mysql* mysql) : mysql_(mysql) {}
  // Builds a Status from the connection's last error and marks it broken if it was lost.
  common::Status Error(std::string_view what);
  void NoteError(const common::Status& status);
  void Touch() { last_used_ = std::chrono::steady_clock::now(); }

  st_mysql* mysql_;
  std::map<std::string, std::unique_ptr<PreparedStatement>, std::less<>> statements_;
  bool broken_ = false;
  bool commit_sent_ = false;
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
};

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_CONNECTION_H_

#include "instaface/graphdb/connection.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <cstring>
#include <mutex>

#include "instaface/graphdb/mysql_error.h"

namespace instaface::graphdb {

using common::Status;
using common::StatusCode;
using common::StatusOr;

namespace {

StatusCode CodeForErrno(unsigned int err) {
  switch (err) {
    case ER_DUP_ENTRY:
      return StatusCode::kConflict;
    case ER_NO_REFERENCED_ROW_2:
    case ER_BAD_DB_ERROR:
      return StatusCode::kNotFound;
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_LOCK_DEADLOCK:
    case ER_CON_COUNT_ERROR:
    case ER_TOO_MANY_USER_CONNECTIONS:
      return StatusCode::kUnavailable;
    default:
      break;
  }
  if (ConnectionLost(err)) return StatusCode::kUnavailable;
  return StatusCode::kInternal;
}

Status MakeError(std::string_view what, unsigned int err, const char* text) {
  std::string message(what);
  message += ": ";
  message += (text != nullptr && *text != '\0') ? text : "unknown error";
  return MysqlError(CodeForErrno(err), std::move(message), err);
}

// mysql_library_init is not thread-safe and mysql_init calls it lazily; do it once up front.
void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

bool IsIntegerType(enum_field_types t) {
  return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
         t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

bool IsFloatType(enum_field_types t) { return t == MYSQL_TYPE_FLOAT || t == MYSQL_TYPE_DOUBLE; }

// Storage that a MYSQL_BIND points into; one per parameter or column.
struct BindSlot {
  int64_t i = 0;
  double d = 0;
  std::string s;
  unsigned long length = 0;
  my_bool is_null = 0;
  my_bool error = 0;
};

}  // namespace

// ---- PreparedStatement ----

PreparedStatement::~PreparedStatement() {
  if (stmt_ != nullptr) mysql_stmt_close(stmt_);
}

unsigned int PreparedStatement::param_count() const {
  return static_cast<unsigned int>(mysql_stmt_param_count(stmt_));
}

Status PreparedStatement::Error(std::string_view what) {
  Status status = MakeError(what, mysql_stmt_errno(stmt_), mysql_stmt_error(stmt_));
  owner_->NoteError(status);
  return status;
}

namespace {

// Binds `params` (copied into `slots`, which must outlive execution) to `stmt`.
Status BindParams(MYSQL_STMT* stmt, const std::vector<Value>& params, std::vector<BindSlot>& slots,
                  std::vector<MYSQL_BIND>& binds) {
  const unsigned long expected = mysql_stmt_param_count(stmt);
  if (params.size() != expected) {
    return Status::Internal("statement expects " + std::to_string(expected) + " parameters, got " +
                            std::to_string(params.size()));
  }
  slots.assign(params.size(), BindSlot{});
  binds.assign(params.size(), MYSQL_BIND{});
  for (size_t k = 0; k < params.size(); ++k) {
    MYSQL_BIND& b = binds[k];
    BindSlot& slot = slots[k];
    const Value& p = params[k];
    if (std::holds_alternative<std::monostate>(p)) {
      b.buffer_type = MYSQL_TYPE_NULL;
    } else if (const int64_t* i = std::get_if<int64_t>(&p)) {
      slot.i = *i;
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &slot.i;
    } else if (const double* d = std::get_if<double>(&p)) {
      slot.d = *d;
      b.buffer_type = MYSQL_TYPE_DOUBLE;
      b.buffer = &slot.d;
    } else {
      slot.s = std::get<std::string>(p);
      slot.length = static_cast<unsigned long>(slot.s.size());
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = slot.s.data();
      b.buffer_length = slot.length;
      b.length = &slot.length;
    }
  }
  if (!binds.empty() && mysql_stmt_bind_param(stmt, binds.data()) != 0) {
    return MakeError("binding parameters", mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
  }
  return Status();
}

}  // namespace

StatusOr<ExecResult> PreparedStatement::Execute(const std::vector<Value>& params) {
  owner_->Touch();
  std::vector<BindSlot> slots;
  std::vector<MYSQL_BIND> binds;
  if (Status s = BindParams(stmt_, params, slots, binds); !s.ok()) return s;
  if (mysql_stmt_execute(stmt_) != 0) return Error("executing statement");
  ExecResult result;
  result.affected_rows = mysql_stmt_affected_rows(stmt_);
  result.insert_id = mysql_stmt_insert_id(stmt_);
  return result;
}

StatusOr<std::vector<Row>> PreparedStatement::Query(const std::vector<Value>& params) {
  owner_->Touch();
  std::vector<BindSlot> slots;
  std::vector<MYSQL_BIND> binds;
  if (Status s = BindParams(stmt_, params, slots, binds); !s.ok()) return s;

  MYSQL_RES* meta = mysql_stmt_result_metadata(stmt_);
  if (meta == nullptr) return Status::Internal("Query() on a statement that returns no rows");
  struct MetaFree {
    MYSQL_RES* r;
    ~MetaFree() { mysql_free_result(r); }
  } meta_free{meta};

  my_bool update_max_length = 1;
  mysql_stmt_attr_set(stmt_, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max_length);
  if (mysql_stmt_execute(stmt_) != 0) return Error("executing query");
  if (mysql_stmt_store_result(stmt_) != 0) return Error("reading query result");
  struct ResultFree {
    MYSQL_STMT* s;
    ~ResultFree() { mysql_stmt_free_result(s); }
  } result_free{stmt_};

  const unsigned int columns = mysql_num_fields(meta);
  MYSQL_FIELD* fields = mysql_fetch_fields(meta);
  std::vector<BindSlot> out(columns);
  std::vector<MYSQL_BIND> out_binds(columns, MYSQL_BIND{});
  std::vector<char> kinds(columns);  // 'i', 'd' or 's'
  for (unsigned int c = 0; c < columns; ++c) {
    MYSQL_BIND& b = out_binds[c];
    BindSlot& slot = out[c];
    b.is_null = &slot.is_null;
    b.length = &slot.length;
    b.error = &slot.error;
    if (IsIntegerType(fields[c].type)) {
      kinds[c] = 'i';
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &slot.i;
      b.is_unsigned = (fields[c].flags & UNSIGNED_FLAG) != 0;
    } else if (IsFloatType(fields[c].type)) {
      kinds[c] = 'd';
      b.buffer_type = MYSQL_TYPE_DOUBLE;
      b.buffer = &slot.d;
    } else {
      kinds[c] = 's';
      // max_length is known after store_result; a value longer than the buffer is fetched
      // again below, so the size is a hint, not a limit.
      slot.s.resize(std::max<unsigned long>(fields[c].max_length, 64) + 1);
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = slot.s.data();
      b.buffer_length = static_cast<unsigned long>(slot.s.size());
    }
  }
  if (columns > 0 && mysql_stmt_bind_result(stmt_, out_binds.data()) != 0) {
    return Error("binding result columns");
  }

  std::vector<Row> rows;
  rows.reserve(mysql_stmt_num_rows(stmt_));
  while (true) {
    const int rc = mysql_stmt_fetch(stmt_);
    if (rc == MYSQL_NO_DATA) break;
    if (rc == 1) return Error("fetching row");
    Row row(columns);
    for (unsigned int c = 0; c < columns; ++c) {
      BindSlot& slot = out[c];
      if (slot.is_null) continue;  // std::monostate
      if (kinds[c] == 'i') {
        row[c] = slot.i;
      } else if (kinds[c] == 'd') {
        row[c] = slot.d;
      } else if (slot.length <= out_binds[c].buffer_length) {
        row[c] = std::string(slot.s.data(), slot.length);
      } else {  // MYSQL_DATA_TRUNCATED for this column: fetch it whole
        std::string whole(slot.length, '\0');
        MYSQL_BIND b{};
        unsigned long length = 0;
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = whole.data();
        b.buffer_length = static_cast<unsigned long>(whole.size());
        b.length = &length;
        if (mysql_stmt_fetch_column(stmt_, &b, c, 0) != 0) return Error("fetching long column");
        whole.resize(std::min<unsigned long>(length, whole.size()));
        row[c] = std::move(whole);
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// ---- Connection ----

StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectionConfig& config,
                                                       bool use_database) {
  InitLibraryOnce();
  MYSQL* mysql = mysql_init(nullptr);
  if (mysql == nullptr) return Status::Internal("mysql_init: out of memory");
  std::unique_ptr<Connection> conn(new Connection(mysql));

  unsigned int connect_timeout = static_cast<unsigned int>(config.connect_timeout.count());
  unsigned int read_timeout = static_cast<unsigned int>(config.read_timeout.count());
  unsigned int write_timeout = static_cast<unsigned int>(config.write_timeout.count());
  my_bool reconnect = 0;
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  mysql_options(mysql, MYSQL_OPT_RECONNECT, &reconnect);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  // DATETIME columns hold UTC: UTC_TIMESTAMP() and every conversion use +00:00. Strict mode,
  // whatever the server's default: a NULL for a NOT NULL column must fail the whole statement
  // (a fenced insert relies on it), never become a warning and an empty value.
  // idle_transaction_timeout: our transactions send their statements back to back, so one that
  // sits idle for a second has lost its client (a leader cut off between its fence raise and
  // COMMIT). The server then ends it, rolling it back and releasing the fence row's lock,
  // instead of holding that lock, and every later leader's writes, until wait_timeout (8 h).
  mysql_options(mysql, MYSQL_INIT_COMMAND,
                "SET time_zone = '+00:00', sql_mode = IF(@@SESSION.sql_mode = '', "
                "'STRICT_ALL_TABLES', CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')), "
                "idle_transaction_timeout = 1");

  if (mysql_real_connect(mysql, config.server.c_str(), config.user.c_str(), config.password.c_str(),
                         use_database ? config.database.c_str() : nullptr, config.port, nullptr,
                         CLIENT_FOUND_ROWS) == nullptr) {
    const unsigned int err = mysql_errno(mysql);
    Status status = MakeError(
        "connecting to " + config.server + ":" + std::to_string(config.port) + " as " + config.user,
        err, mysql_error(mysql));
    if (err == CR_CONNECTION_ERROR || err == CR_CONN_HOST_ERROR || err == CR_SERVER_LOST ||
        err == CR_SERVER_GONE_ERROR) {
      return MysqlError(StatusCode::kUnavailable, status.message(), err);
    }
    return status;
  }
  return conn;
}

Connection::~Connection() {
  statements_.clear();  // statements close before their connection
  if (mysql_ != nullptr) mysql_close(mysql_);
}

void Connection::NoteError(const Status& status) {
  if (ConnectionLost(status)) broken_ = true;
}

Status Connection::Error(std::string_view what) {
  Status status = MakeError(what, mysql_errno(mysql_), mysql_error(mysql_));
  NoteError(status);
  return status;
}

Status Connection::ExecuteFixed(std::string_view sql) {
  Touch();
  if (mysql_real_query(mysql_, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    return Error("running '" + std::string(sql.substr(0, 60)) + "'");
  }
  // Drain any result so the connection stays in sync.
  if (MYSQL_RES* res = mysql_store_result(mysql_); res != nullptr) mysql_free_result(res);
  if (mysql_errno(mysql_) != 0) return Error("reading result");
  return Status();
}

StatusOr<PreparedStatement*> Connection::Prepare(const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second.get();
  Touch();
  MYSQL_STMT* stmt = mysql_stmt_init(mysql_);
  if (stmt == nullptr) return Error("mysql_stmt_init");
  std::unique_ptr<PreparedStatement> prepared(new PreparedStatement(this, stmt));
  if (mysql_stmt_prepare(stmt, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    return prepared->Error("preparing statement");
  }
  PreparedStatement* raw = prepared.get();
  statements_.emplace(sql, std::move(prepared));
  return raw;
}

Status Connection::Begin() {
  commit_sent_ = false;
  return ExecuteFixed("START TRANSACTION");
}

Status Connection::Commit() {
  commit_sent_ = true;
  return ExecuteFixed("COMMIT");
}

Status Connection::Rollback() { return ExecuteFixed("ROLLBACK"); }

bool Connection::Ping() {
  Touch();
  if (mysql_ping(mysql_) != 0) {
    broken_ = true;
    return false;
  }
  return true;
}

}  // namespace instaface::graphdb

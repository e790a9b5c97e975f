#include "instaface/graphdb/schema.h"

#include <mysqld_error.h>

#include <set>
#include <string>

#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/mysql_error.h"

namespace instaface::graphdb {

using common::Status;
using common::StatusCode;
using common::StatusOr;

namespace {

bool IsSafeIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '$';
    if (!ok) return false;
  }
  return true;
}

bool IsPrivilegeError(unsigned int err) {
  return err == ER_DBACCESS_DENIED_ERROR || err == ER_ACCESS_DENIED_ERROR ||
         err == ER_TABLEACCESS_DENIED_ERROR || err == ER_SPECIFIC_ACCESS_DENIED_ERROR;
}

struct TableDefinition {
  const char* name;
  const char* create;
};

// `from_id`/`to_id` rather than from/to: FROM and TO are reserved words.
constexpr TableDefinition kTables[] = {
    {"entities",
     "CREATE TABLE IF NOT EXISTS entities ("
     " id BIGINT NOT NULL AUTO_INCREMENT,"
     " type VARCHAR(10) NOT NULL,"
     " created DATETIME(6) NOT NULL COMMENT 'UTC',"
     " attributes LONGTEXT NOT NULL CHECK (json_valid(attributes)),"
     " idempotency_key VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,"
     " leader_term BIGINT UNSIGNED NULL COMMENT 'term of the leader that wrote the row',"
     " PRIMARY KEY (id),"
     " KEY entities_by_type (type, id),"
     " UNIQUE KEY entities_by_idempotency_key (idempotency_key)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {"associations",
     "CREATE TABLE IF NOT EXISTS associations ("
     " type VARCHAR(10) NOT NULL,"
     " from_id BIGINT NOT NULL,"
     " to_id BIGINT NOT NULL,"
     " created DATETIME(6) NOT NULL COMMENT 'UTC',"
     " attributes LONGTEXT NOT NULL CHECK (json_valid(attributes)),"
     " idempotency_key VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,"
     " leader_term BIGINT UNSIGNED NULL COMMENT 'term of the leader that wrote the row',"
     " PRIMARY KEY (type, from_id, to_id),"
     " KEY associations_to (to_id),"
     " UNIQUE KEY associations_by_idempotency_key (idempotency_key),"
     " CONSTRAINT associations_from_fk FOREIGN KEY (from_id) REFERENCES entities (id),"
     " CONSTRAINT associations_to_fk FOREIGN KEY (to_id) REFERENCES entities (id)"
     ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"},
    {"fence",
     "CREATE TABLE IF NOT EXISTS fence ("
     " id TINYINT NOT NULL,"
     " term BIGINT UNSIGNED NOT NULL,"
     " PRIMARY KEY (id),"
     " CHECK (id = 1)"
     ") ENGINE=InnoDB"},
};

// Columns added after a table's first release, added to a database made before them. A NULL
// column with its index is added in place, without copying the table (ALGORITHM=INPLACE).
struct AddedColumn {
  const char* table;
  const char* column;
  const char* alter;
};

constexpr AddedColumn kAddedColumns[] = {
    {"entities", "idempotency_key",
     "ALTER TABLE entities ADD COLUMN idempotency_key VARCHAR(128) CHARACTER SET ascii COLLATE "
     "ascii_bin NULL, ADD UNIQUE KEY entities_by_idempotency_key (idempotency_key)"},
    {"associations", "idempotency_key",
     "ALTER TABLE associations ADD COLUMN idempotency_key VARCHAR(128) CHARACTER SET ascii "
     "COLLATE ascii_bin NULL, ADD UNIQUE KEY associations_by_idempotency_key (idempotency_key)"},
    {"entities", "leader_term",
     "ALTER TABLE entities ADD COLUMN leader_term BIGINT UNSIGNED NULL COMMENT 'term of the "
     "leader that wrote the row'"},
    {"associations", "leader_term",
     "ALTER TABLE associations ADD COLUMN leader_term BIGINT UNSIGNED NULL COMMENT 'term of the "
     "leader that wrote the row'"},
};

}  // namespace

Status EnsureSchema(const ConnectionConfig& config) {
  if (!IsSafeIdentifier(config.database)) {
    return Status::InvalidArgument("database name '" + config.database +
                                   "' must be 1 to 64 characters of A-Z, a-z, 0-9, _ and $");
  }
  StatusOr<std::unique_ptr<Connection>> opened = Connection::Open(config, /*use_database=*/false);
  if (!opened.ok()) return opened.status();
  Connection& conn = **opened;

  // 0. A binary log of statements would let a replica diverge: a fenced insert reads the fence
  //    row while it fills an auto-increment column, which MariaDB logs safely only by row
  //    (binlog_format MIXED, its default, switches to rows for such a statement by itself).
  StatusOr<PreparedStatement*> binlog = conn.Prepare("SELECT @@GLOBAL.log_bin, @@binlog_format");
  if (!binlog.ok()) return binlog.status();
  StatusOr<std::vector<Row>> logging = (*binlog)->Query({});
  if (!logging.ok()) return logging.status();
  if (!logging->empty()) {
    const int64_t* on = std::get_if<int64_t>(&(*logging)[0][0]);
    const std::string* format = std::get_if<std::string>(&(*logging)[0][1]);
    if (on != nullptr && *on != 0 && format != nullptr && *format == "STATEMENT") {
      return Status::InvalidArgument(
          "the server logs statements (binlog_format=STATEMENT), which a fenced insert is "
          "unsafe under; set binlog_format=MIXED (the default) or ROW");
    }
  }

  // 1. The database, only if absent: a least-privilege user cannot CREATE even IF NOT EXISTS.
  StatusOr<PreparedStatement*> find_db =
      conn.Prepare("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?");
  if (!find_db.ok()) return find_db.status();
  StatusOr<std::vector<Row>> dbs = (*find_db)->Query({config.database});
  if (!dbs.ok()) return dbs.status();
  if (dbs->empty()) {
    // The name was checked above, so quoting it is safe.
    Status created = conn.ExecuteFixed("CREATE DATABASE IF NOT EXISTS `" + config.database +
                                       "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
    if (!created.ok()) {
      if (IsPrivilegeError(MysqlErrno(created))) {
        return Status(StatusCode::kInternal,
                      "database '" + config.database + "' does not exist and user '" + config.user +
                          "' may not create it; create it as an administrator (CREATE DATABASE " +
                          config.database + ") or grant this user CREATE",
                      created.cause());
      }
      return created;
    }
  }
  if (Status s = conn.ExecuteFixed("USE `" + config.database + "`"); !s.ok()) {
    if (IsPrivilegeError(MysqlErrno(s))) {
      return Status(StatusCode::kInternal,
                    "user '" + config.user + "' has no privileges on database '" + config.database +
                        "'; grant SELECT, INSERT, UPDATE, DELETE on " + config.database + ".*",
                    s.cause());
    }
    return s;
  }

  // 2. The tables that are missing (again, so that no CREATE privilege is needed when none are).
  StatusOr<PreparedStatement*> find_tables =
      conn.Prepare("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?");
  if (!find_tables.ok()) return find_tables.status();
  StatusOr<std::vector<Row>> tables = (*find_tables)->Query({config.database});
  if (!tables.ok()) return tables.status();
  std::set<std::string> present;
  for (const Row& row : *tables) {
    if (const std::string* name = std::get_if<std::string>(&row[0])) present.insert(*name);
  }
  for (const TableDefinition& table : kTables) {
    if (present.count(table.name) != 0) continue;
    if (Status s = conn.ExecuteFixed(table.create); !s.ok()) {
      if (IsPrivilegeError(MysqlErrno(s))) {
        return Status(StatusCode::kInternal,
                      "table " + config.database + "." + table.name + " does not exist and user '" +
                          config.user +
                          "' may not create it; run the graphserver once as a user with CREATE "
                          "privilege, or create the schema as an administrator",
                      s.cause());
      }
      return s;
    }
  }

  // 3. The columns that tables made by an earlier release lack.
  StatusOr<PreparedStatement*> find_column = conn.Prepare(
      "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? "
      "AND COLUMN_NAME = ?");
  if (!find_column.ok()) return find_column.status();
  for (const AddedColumn& added : kAddedColumns) {
    StatusOr<std::vector<Row>> found =
        (*find_column)
            ->Query({config.database, std::string(added.table), std::string(added.column)});
    if (!found.ok()) return found.status();
    const int64_t* count = found->empty() ? nullptr : std::get_if<int64_t>(&(*found)[0][0]);
    if (count != nullptr && *count > 0) continue;
    if (Status s = conn.ExecuteFixed(added.alter); !s.ok()) {
      if (IsPrivilegeError(MysqlErrno(s))) {
        return Status(StatusCode::kInternal,
                      std::string("table ") + config.database + "." + added.table +
                          " lacks column " + added.column + " and user '" + config.user +
                          "' may not add it; run the graphserver once as a user with ALTER "
                          "privilege, or run: " +
                          added.alter,
                      s.cause());
      }
      return s;
    }
  }

  // 4. The fence row, at term 0, unless a leader already wrote one.
  StatusOr<PreparedStatement*> fence_row =
      conn.Prepare("INSERT IGNORE INTO fence (id, term) VALUES (1, 0)");
  if (!fence_row.ok()) return fence_row.status();
  if (StatusOr<ExecResult> r = (*fence_row)->Execute({}); !r.ok()) return r.status();
  return Status();
}

}  // namespace instaface::graphdb

#include "instaface/graphdb/fence.h"

#include <mysqld_error.h>

#include <limits>
#include <string>
#include <vector>

#include "instaface/graphdb/mysql_error.h"

namespace instaface::graphdb {

using common::Status;
using common::StatusCode;
using common::StatusOr;

namespace {

Status NewerTermWrote(uint64_t term) {
  return Status::FenceLost("a leader with a term newer than " + std::to_string(term) +
                           " has written; this node no longer leads");
}

// Raises the row to `term` in one autocommitted statement. Its exclusive lock waits for every
// write still holding the row's shared lock, so no write of an older term commits after it; and
// the server holds that lock only while it runs the statement, never across a round trip, so a
// leader cut off mid-raise leaves no lock behind it for the next leader to wait on.
Status RaiseTo(Pool& pool, int64_t term) {
  bool newer = false;
  Status status = pool.Write([&](Connection& conn) -> Status {
    StatusOr<PreparedStatement*> raise =
        conn.Prepare("UPDATE fence SET term = ? WHERE id = 1 AND term <= ?");
    if (!raise.ok()) return raise.status();
    StatusOr<ExecResult> updated = (*raise)->Execute({term, term});
    if (!updated.ok()) return updated.status();
    // CLIENT_FOUND_ROWS makes this the number of matched rows, so an unchanged term counts.
    newer = updated->affected_rows == 0;
    return Status();
  });
  // The UPDATE is idempotent and the caller's write has not been sent: a lost answer means the
  // database is unreachable, not that anything of the caller's is in doubt.
  if (status.code() == StatusCode::kOutcomeUnknown) {
    return Status::Unavailable("raising the fence to term " + std::to_string(term) + ": " +
                               status.message());
  }
  if (!status.ok()) return status;
  if (!newer) return Status();
  // No row matched: a newer term's, or no row at all (NotFound, from the read).
  StatusOr<uint64_t> stored = ReadFenceTerm(pool);
  if (!stored.ok()) return stored.status();
  return NewerTermWrote(static_cast<uint64_t>(term));
}

}  // namespace

Status RunFencedTransaction(Pool& pool, uint64_t term,
                            const std::function<Status(Connection&)>& body) {
  if (term > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("term " + std::to_string(term) + " is out of range");
  }
  const int64_t t = static_cast<int64_t>(term);
  bool must_raise = false;
  auto fenced = [&](Connection& conn) -> Status {
    must_raise = false;  // a retried attempt starts over
    // A locking read sees the latest committed term, whatever the transaction's snapshot.
    StatusOr<PreparedStatement*> check =
        conn.Prepare("SELECT term FROM fence WHERE id = 1 LOCK IN SHARE MODE");
    if (!check.ok()) return check.status();
    StatusOr<std::vector<Row>> rows = (*check)->Query({});
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return Status::NotFound("the fence row is missing (run schema setup)");
    const int64_t* stored = std::get_if<int64_t>(&(*rows)[0][0]);
    if (stored == nullptr) return Status::Internal("the fence row's term is not an integer");
    if (*stored > t) {
      return NewerTermWrote(term);
    }
    if (*stored < t) {
      must_raise = true;
      return Status::FenceLost("the fence is behind term " + std::to_string(term));
    }
    return body(conn);
  };
  Status status = pool.Transact(fenced);
  if (!must_raise) return status;
  // The first write of a new term raises the row first, on its own. A body that then fails
  // leaves the fence at `term`, which is harmless: the view says this node leads in `term`,
  // and LeaderFence raises it there anyway as soon as it does.
  if (Status raised = RaiseTo(pool, t); !raised.ok()) return raised;
  status = pool.Transact(fenced);
  if (must_raise) return Status::Internal("the fence fell below term " + std::to_string(term));
  return status;
}

namespace {

// The first row's first value, behind the fence: the value when the fence row is at the term
// (bound first), NULL otherwise, which its NOT NULL column refuses and so fails the statement.
constexpr const char* kFenceGate =
    "(SELECT IF(term = ?, ?, NULL) FROM fence WHERE id = 1 LOCK IN SHARE MODE)";

std::string FencedInsertSql(const FencedInsert& insert, size_t rows) {
  std::string first = insert.row;
  first.replace(first.find('?'), 1, kFenceGate);
  std::string sql = "INSERT INTO " + insert.into + " VALUES " + first;
  for (size_t r = 1; r < rows; ++r) sql += ", " + insert.row;
  return sql;
}

}  // namespace

StatusOr<ExecResult> RunFencedInsert(Pool& pool, uint64_t term, const FencedInsert& insert,
                                     const std::vector<Value>& params) {
  if (term > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("term " + std::to_string(term) + " is out of range");
  }
  if (insert.params_per_row == 0 || params.empty() || params.size() % insert.params_per_row) {
    return Status::InvalidArgument("a fenced insert needs whole rows of parameters");
  }
  if (insert.row.find('?') == std::string::npos) {
    return Status::InvalidArgument(
        "a fenced insert's row needs a parameter to put behind the fence");
  }
  const size_t rows = params.size() / insert.params_per_row;
  const std::string sql = FencedInsertSql(insert, rows);
  std::vector<Value> bound;
  bound.reserve(params.size() + 1);
  bound.emplace_back(static_cast<int64_t>(term));
  bound.insert(bound.end(), params.begin(), params.end());
  ExecResult result;
  auto execute = [&](Connection& conn) -> Status {
    StatusOr<PreparedStatement*> stmt = conn.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StatusOr<ExecResult> r = (*stmt)->Execute(bound);
    if (!r.ok()) return r.status();
    if (r->affected_rows != rows) {
      return Status::Internal("a fenced insert wrote " + std::to_string(r->affected_rows) + " of " +
                              std::to_string(rows) + " rows");
    }
    result = *r;
    return Status();
  };
  Status status = pool.Write(execute);
  if (status.ok()) return result;
  if (status.code() == StatusCode::kOutcomeUnknown) return status;
  // Anything but the gate's NULL is the statement's own error (a duplicate key, bad JSON).
  if (MysqlErrno(status) != ER_BAD_NULL_ERROR) return status;
  // The fence is not at `term` (or its row is missing). A new term's first write raises it (one
  // autocommitted UPDATE, FenceLost when a newer term has written) and sends the same statement
  // again: a fenced insert is always one autocommitted statement, so it never holds the fence
  // row's lock across a round trip, and a leader cut off mid-write leaves no lock behind.
  if (Status raised = RaiseTo(pool, static_cast<int64_t>(term)); !raised.ok()) return raised;
  status = pool.Write(execute);
  if (status.ok()) return result;
  // Raised to `term`, and a NULL refused again: the gate, if a newer term raised the fence in
  // between; otherwise a NULL of the caller's own rows, the statement's own error.
  if (status.code() != StatusCode::kOutcomeUnknown && MysqlErrno(status) == ER_BAD_NULL_ERROR) {
    StatusOr<uint64_t> stored = ReadFenceTerm(pool);
    if (stored.ok() && *stored > term) return NewerTermWrote(term);
  }
  return status;
}

Status RaiseFence(Pool& pool, uint64_t term) {
  if (term > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("term " + std::to_string(term) + " is out of range");
  }
  // One autocommitted UPDATE, no transaction around it: nothing a cut-off leader could leave
  // holding the row.
  return RaiseTo(pool, static_cast<int64_t>(term));
}

StatusOr<uint64_t> ReadFenceTerm(Pool& pool) {
  uint64_t term = 0;
  bool found = false;
  Status status = pool.Read([&](Connection& conn) -> Status {
    StatusOr<PreparedStatement*> read = conn.Prepare("SELECT term FROM fence WHERE id = 1");
    if (!read.ok()) return read.status();
    StatusOr<std::vector<Row>> rows = (*read)->Query({});
    if (!rows.ok()) return rows.status();
    found = !rows->empty();
    if (found) term = static_cast<uint64_t>(std::get<int64_t>((*rows)[0][0]));
    return Status();
  });
  if (!status.ok()) return status;
  if (!found) return Status::NotFound("the fence row is missing (run schema setup)");
  return term;
}

}  // namespace instaface::graphdb

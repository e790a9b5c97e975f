#include "instaface/graphdb/fence.h"

#include <limits>
#include <string>
#include <vector>

namespace instaface::graphdb {

namespace {

Status NewerTermWrote(uint64_t term) {
  return Status::FenceLost("a leader with a term newer than " + std::to_string(term) +
                           " has written; this node no longer leads");
}

// The first write of a new term: raise the row to `term` under its exclusive lock, in the same
// transaction as the body, so a failed body leaves the fence where it was.
Status RaiseAndRun(Pool& pool, int64_t term, const std::function<Status(Connection&)>& body) {
  return pool.Transact([&](Connection& conn) -> Status {
    StatusOr<PreparedStatement*> raise =
        conn.Prepare("UPDATE fence SET term = ? WHERE id = 1 AND term <= ?");
    if (!raise.ok()) return raise.status();
    StatusOr<ExecResult> updated = (*raise)->Execute({term, term});
    if (!updated.ok()) return updated.status();
    // CLIENT_FOUND_ROWS makes this the number of matched rows, so an unchanged term counts.
    if (updated->affected_rows == 0) {
      return NewerTermWrote(term);
    }
    return body(conn);
  });
}

}  // namespace

Status RunFencedTransaction(Pool& pool, uint64_t term,
                            const std::function<Status(Connection&)>& body) {
  if (term > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("term " + std::to_string(term) + " is out of range");
  }
  const int64_t t = static_cast<int64_t>(term);
  bool must_raise = false;
  Status status = pool.Transact([&](Connection& conn) -> Status {
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
  });
  if (!must_raise) return status;
  return RaiseAndRun(pool, t, body);
}

namespace {

std::string FencedInsertSql(const FencedInsert& insert, size_t rows) {
  std::string sql =
      "INSERT INTO " + insert.into + " SELECT " + insert.select_list + " FROM fence JOIN (";
  for (size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "SELECT 0 AS o" : " UNION ALL SELECT " + std::to_string(r);
    for (size_t p = 0; p < insert.params_per_row; ++p) {
      sql += r == 0 ? ", ? AS p" + std::to_string(p) : ", ?";
    }
  }
  sql += ") AS v WHERE fence.id = 1 AND fence.term = ? ORDER BY v.o LOCK IN SHARE MODE";
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
  const size_t rows = params.size() / insert.params_per_row;
  const std::string sql = FencedInsertSql(insert, rows);
  std::vector<Value> bound = params;
  bound.emplace_back(static_cast<int64_t>(term));
  ExecResult result;
  auto execute = [&](Connection& conn) -> Status {
    StatusOr<PreparedStatement*> stmt = conn.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StatusOr<ExecResult> r = (*stmt)->Execute(bound);
    if (!r.ok()) return r.status();
    result = *r;
    return Status();
  };
  if (Status s = pool.Write(execute); !s.ok()) {
    if (!s.connection_lost()) return s;
    return Status(StatusCode::kUnavailable,
                  "the database connection was lost during the write, which may or may not have "
                  "been applied: " +
                      s.message(),
                  s.mysql_errno());
  }
  if (result.affected_rows == rows) return result;
  if (result.affected_rows != 0) {
    return Status::Internal("a fenced insert wrote " + std::to_string(result.affected_rows) +
                            " of " + std::to_string(rows) + " rows");
  }
  // The fence is not at `term`. Under the fence's lock the same statement selects every row.
  Status status = RunFencedTransaction(pool, term, [&](Connection& conn) -> Status {
    if (Status s = execute(conn); !s.ok()) return s;
    if (result.affected_rows != rows) {
      return Status::Internal("a fenced insert wrote " + std::to_string(result.affected_rows) +
                              " of " + std::to_string(rows) + " rows under the fence's lock");
    }
    return Status();
  });
  if (!status.ok()) return status;
  return result;
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

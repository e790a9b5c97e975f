#include "instaface/graphdb/fence.h"

#include <limits>

namespace instaface::graphdb {

Status RunFencedTransaction(Pool& pool, uint64_t term,
                            const std::function<Status(Connection&)>& body) {
  if (term > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("term " + std::to_string(term) + " is out of range");
  }
  return pool.Transact([&](Connection& conn) -> Status {
    StatusOr<PreparedStatement*> fence =
        conn.Prepare("UPDATE fence SET term = ? WHERE id = 1 AND term <= ?");
    if (!fence.ok()) return fence.status();
    const int64_t t = static_cast<int64_t>(term);
    StatusOr<ExecResult> updated = (*fence)->Execute({t, t});
    if (!updated.ok()) return updated.status();
    // CLIENT_FOUND_ROWS makes this the number of matched rows, so an unchanged term counts.
    if (updated->affected_rows == 0) {
      return Status::FenceLost("a leader with a term newer than " + std::to_string(term) +
                               " has written; this node no longer leads");
    }
    return body(conn);
  });
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

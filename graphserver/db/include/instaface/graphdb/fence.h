// The database side of a fenced write: a transaction that may commit only while no newer leader
// has written.
//
// RunFencedTransaction(pool, term, body) runs body in ONE transaction that first reads the fence
// row with a shared lock:
//   SELECT term FROM fence WHERE id = 1 LOCK IN SHARE MODE
// - equal to <term>: body runs; the shared lock is held until COMMIT.
// - newer: a newer leader has written; nothing runs, and the result is FenceLost.
// - older (this term's first write): the transaction is rolled back, the row is raised by one
//   autocommitted statement,
//     UPDATE fence SET term = <term> WHERE id = 1 AND term <= <term>
//   (0 rows matched: FenceLost), and the transaction runs again.
// If body fails, its transaction is rolled back and body's Status is returned (a raise before
// it stays: the fence at a term whose leader asked for it is where LeaderFence puts it anyway).
//
// Why this is a fence: a raise needs the exclusive lock, so a new leader's raise waits for every
// in-flight transaction of the old term (each holds the shared lock) to finish; once it commits,
// every later check of the old term sees the newer one and refuses. Why the raise commits on
// its own: the server holds its exclusive lock only while it runs that one statement, never
// across a round trip, so a leader cut off mid-raise leaves nothing locked for the next one
// (a transaction holding the shared lock that loses its client is ended by the server's
// idle_transaction_timeout, which every connection sets). And why a shared lock: writes of the
// same term do not wait for each other, so several transactions can be in flight at once and
// share the database's group commit.
//
// Thread safety: safe from any thread (the Pool is).
#ifndef INSTAFACE_GRAPHDB_FENCE_H_
#define INSTAFACE_GRAPHDB_FENCE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/pool.h"

namespace instaface::graphdb {

common::Status RunFencedTransaction(Pool& pool, uint64_t term,
                                    const std::function<common::Status(Connection&)>& body);

// A multi-row INSERT whose first value passes through the fence row, so that one autocommitted
// statement is a whole fenced write (one round trip):
//
//   INSERT INTO <into> VALUES
//     ((SELECT IF(term = <term>, ?, NULL) FROM fence WHERE id = 1 LOCK IN SHARE MODE), ...),
//     <row>, <row>, ...
//
// When the fence row is not at the term, the first value is NULL; its column is NOT NULL, and
// every connection runs in strict mode (Connection::Open), so the statement fails as a whole
// and writes nothing. The shared lock gives it the same ordering against a new term as a fenced
// transaction: it waits for an uncommitted raise and then sees the new term. Rows go in in
// parameter order, and with consecutive auto-increment ids row k gets insert_id + k.
//
// A plain INSERT ... VALUES with this one subquery costs MariaDB less than an
// INSERT ... SELECT joining the rows to the fence (bench: scripts/bench-graphserver fence-cost).
struct FencedInsert {
  std::string into;  // "entities (type, created, attributes)"
  std::string row;   // "(?, UTC_TIMESTAMP(6), ?)": the column of its first ? must be NOT NULL
  size_t params_per_row = 0;
};

// Runs `insert` for params.size() / params_per_row rows as one autocommitted statement. When the
// fence is not at `term` (a new term's first write), the fence is raised by one autocommitted
// UPDATE and the same statement is sent once more; FenceLost when a newer term has written. So
// it never holds the fence row's lock across a round trip. Not retried on a lost connection
// (the statement may have committed).
common::StatusOr<ExecResult> RunFencedInsert(Pool& pool, uint64_t term, const FencedInsert& insert,
                                             const std::vector<Value>& params);

// Raises the fence row to `term` with no write of its own: what a new leader does as soon as it
// leads, so that a deposed leader is refused from then on, not only after the new leader's
// first write. OK when the row is already at `term`; FenceLost when a newer term has written.
common::Status RaiseFence(Pool& pool, uint64_t term);

// The term in the fence row (0 on a fresh database).
common::StatusOr<uint64_t> ReadFenceTerm(Pool& pool);

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_FENCE_H_

// The database side of a fenced write: a transaction that may commit only while no newer leader
// has written.
//
// RunFencedTransaction(pool, term, body) runs, in ONE transaction,
//   UPDATE fence SET term = <term> WHERE id = 1 AND term <= <term>
// and then body. If the UPDATE matched no row a newer term already wrote: the transaction is
// rolled back and the result is FenceLost. If body fails, everything is rolled back (the fence
// included) and body's Status is returned. The fence row lock is held until COMMIT, so a new
// leader's first write waits for an old leader's in-flight transaction and then sees its term.
//
// Thread safety: safe from any thread (the Pool is).
#ifndef INSTAFACE_GRAPHDB_FENCE_H_
#define INSTAFACE_GRAPHDB_FENCE_H_

#include <cstdint>
#include <functional>

#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/status.h"

namespace instaface::graphdb {

Status RunFencedTransaction(Pool& pool, uint64_t term,
                            const std::function<Status(Connection&)>& body);

// The term in the fence row (0 on a fresh database).
StatusOr<uint64_t> ReadFenceTerm(Pool& pool);

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_FENCE_H_

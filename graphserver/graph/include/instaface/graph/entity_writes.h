// The graph's creates, written at most once per idempotency key, and retried when a retry is
// safe. GraphService and its group commit (EntityBatcher) both write through these.
//
// A create may carry a key (ValidateIdempotencyKey: 1..128 printable ASCII characters). It is
// stored in the row's idempotency_key column, which is unique (graphdb/schema.h), so:
// - the first create with a key inserts its row;
// - a later one with the same key and the same request (type and attributes, and for an
//   association its from and to) inserts nothing and answers what the first one did: the
//   entity's id, or success;
// - one with the same key and another request is KeyReused, and writes nothing.
// The row is the record, so this holds across leaders, terms and restarts. A key names one create
// of one kind: an entity's key and an association's key are not compared with each other.
//
// Why a keyed create whose outcome is unknown is always safe to retry: if the first attempt
// committed, the retry hits the unique key and answers with the first row; if it did not, the
// retry inserts it. An insert that meets an uncommitted row with its key waits for that row's
// transaction, so two attempts in flight at once also end with one row.
//
// Thread safety: free functions, safe from any thread (the Pool is).
#ifndef INSTAFACE_GRAPH_ENTITY_WRITES_H_
#define INSTAFACE_GRAPH_ENTITY_WRITES_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"
#include "instaface/graphdb/pool.h"

namespace instaface::graph {

// One entity create. `attributes` is the JSON text to store (AttributesText); `key` is empty
// for a create without one.
struct EntityCreate {
  std::string type;
  std::string attributes;
  std::string key;
};

// The canonical text of validated attributes, as stored and as compared for a reused key
// (null is stored as {}). Invalid UTF-8 is replaced, never thrown.
std::string AttributesText(const nlohmann::json& attributes);

// Inserts one entity behind the fence of `term` (graphdb::RunFencedInsert), or finds the row its
// key already made. Not retried.
common::StatusOr<int64_t> WriteEntity(graphdb::Pool& pool, uint64_t term,
                                      const EntityCreate& create);

// The id of the entity that `create.key` made: NotFound when none has it, KeyReused when its
// type or attributes differ from `create`'s.
common::StatusOr<int64_t> FindKeyedEntity(graphdb::Pool& pool, const EntityCreate& create);

// Inserts one association behind the fence of `term`; a row that `key` already made with the
// same type, ends and attributes is success. Not retried. Conflict: the association exists
// (made without this key); NotFound: an end does not exist.
common::Status WriteAssociation(graphdb::Pool& pool, uint64_t term, const std::string& type,
                                int64_t from, int64_t to, const std::string& attributes,
                                const std::string& key);

// Whether a failed write may be tried again: always when it was not applied (Unavailable: the
// database is restarting, a lock wait timed out, no connection was free), and when its outcome
// is unknown only if it is keyed.
bool SafeToRetry(const common::Status& status, bool keyed);

// Runs `write` until it succeeds, fails in a way a retry cannot help or is unsafe for
// (SafeToRetry), or the next attempt would start after `give_up`; the pause between attempts
// doubles from 25 ms to 400 ms. Returns the last attempt's status.
common::Status RetryWrite(std::chrono::steady_clock::time_point give_up, bool keyed,
                          const std::function<common::Status()>& write);

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_ENTITY_WRITES_H_

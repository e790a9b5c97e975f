// The graph's fenced inserts (graphdb::RunFencedInsert), shared by entity_writes.cc and the
// leader's group commit (EntityBatcher).
#ifndef INSTAFACE_GRAPH_STATEMENTS_H_
#define INSTAFACE_GRAPH_STATEMENTS_H_

#include <string>

#include "instaface/graphdb/fence.h"

namespace instaface::graph {

// Every row records the term of the leader that wrote it (leader_term), so that an audit can
// check each commit against the fence at its place in the commit order.

// Parameters per row: type, attributes (JSON text), idempotency key (NULL for none), term.
inline const graphdb::FencedInsert& EntityInsert() {
  static const graphdb::FencedInsert insert{
      "entities (type, created, attributes, idempotency_key, leader_term)",
      "(?, UTC_TIMESTAMP(6), ?, ?, ?)", 4};
  return insert;
}

// The same, unfenced, for a row inside a fenced transaction.
inline constexpr const char kEntityInsertRow[] =
    "INSERT INTO entities (type, created, attributes, idempotency_key, leader_term) "
    "VALUES (?, UTC_TIMESTAMP(6), ?, ?, ?)";

// Parameters per row: type, from_id, to_id, attributes (JSON text), idempotency key (or NULL),
// term.
inline const graphdb::FencedInsert& AssociationInsert() {
  static const graphdb::FencedInsert insert{
      "associations (type, from_id, to_id, created, attributes, idempotency_key, leader_term)",
      "(?, ?, ?, UTC_TIMESTAMP(6), ?, ?, ?)", 6};
  return insert;
}

// A term as a statement parameter (RunFencedInsert refuses terms past INT64_MAX first).
inline graphdb::Value TermParam(uint64_t term) {
  return graphdb::Value{static_cast<int64_t>(term)};
}

// A key as a statement parameter: NULL for none, so that unkeyed rows never collide.
inline graphdb::Value KeyParam(const std::string& key) {
  if (key.empty()) return graphdb::Value{};
  return graphdb::Value{key};
}

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_STATEMENTS_H_

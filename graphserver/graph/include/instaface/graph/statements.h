// The graph's fenced inserts (graphdb::RunFencedInsert), shared by entity_writes.cc and the
// leader's group commit (EntityBatcher).
#ifndef INSTAFACE_GRAPH_STATEMENTS_H_
#define INSTAFACE_GRAPH_STATEMENTS_H_

#include <string>

#include "instaface/graphdb/fence.h"

namespace instaface::graph {

// Parameters per row: type, attributes (JSON text), idempotency key (NULL for none).
inline const graphdb::FencedInsert& EntityInsert() {
  static const graphdb::FencedInsert insert{"entities (type, created, attributes, idempotency_key)",
                                            "(?, UTC_TIMESTAMP(6), ?, ?)", 3};
  return insert;
}

// The same, unfenced, for a row inside a fenced transaction.
inline constexpr const char kEntityInsertRow[] =
    "INSERT INTO entities (type, created, attributes, idempotency_key) "
    "VALUES (?, UTC_TIMESTAMP(6), ?, ?)";

// Parameters per row: type, from_id, to_id, attributes (JSON text), idempotency key (or NULL).
inline const graphdb::FencedInsert& AssociationInsert() {
  static const graphdb::FencedInsert insert{
      "associations (type, from_id, to_id, created, attributes, idempotency_key)",
      "(?, ?, ?, UTC_TIMESTAMP(6), ?, ?)", 5};
  return insert;
}

// A key as a statement parameter: NULL for none, so that unkeyed rows never collide.
inline graphdb::Value KeyParam(const std::string& key) {
  if (key.empty()) return graphdb::Value{};
  return graphdb::Value{key};
}

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_STATEMENTS_H_

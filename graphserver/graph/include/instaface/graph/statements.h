// The graph's fenced inserts (graphdb::RunFencedInsert), shared by GraphService and the leader's
// group commit (graphserver's EntityBatcher).
#ifndef INSTAFACE_GRAPH_STATEMENTS_H_
#define INSTAFACE_GRAPH_STATEMENTS_H_

#include "instaface/graphdb/fence.h"

namespace instaface::graph {

// Parameters per row: type, attributes (JSON text).
inline const graphdb::FencedInsert& EntityInsert() {
  static const graphdb::FencedInsert insert{"entities (type, created, attributes)",
                                            "(?, UTC_TIMESTAMP(6), ?)", 2};
  return insert;
}

// Parameters per row: type, from_id, to_id, attributes (JSON text).
inline const graphdb::FencedInsert& AssociationInsert() {
  static const graphdb::FencedInsert insert{
      "associations (type, from_id, to_id, created, attributes)", "(?, ?, ?, UTC_TIMESTAMP(6), ?)",
      4};
  return insert;
}

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_STATEMENTS_H_

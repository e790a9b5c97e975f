// Schema setup at start: the database (only if absent), then the tables, columns added since
// and the fence row.
//
//   entities     (id BIGINT AUTO_INCREMENT PK, type VARCHAR(10), created DATETIME(6) UTC,
//                 attributes JSON, idempotency_key VARCHAR(128) ascii NULL UNIQUE)
//                 + index (type, id) for random ids by type
//   associations (type VARCHAR(10), from_id, to_id, created DATETIME(6) UTC, attributes JSON,
//                 idempotency_key VARCHAR(128) ascii NULL UNIQUE,
//                 PRIMARY KEY (type, from_id, to_id)) + foreign keys to entities
//   fence        (id TINYINT PK = 1, term BIGINT UNSIGNED): the highest term that wrote
//
// The idempotency key of the create that wrote a row (graph/entity_writes.h) is unique, so a
// retried create finds its first row instead of making a second. A table made before the column
// existed gets it added (ALTER TABLE, which needs the ALTER privilege once).
//
// A server that writes a binary log of statements (binlog_format=STATEMENT) is refused: the
// fenced insert is unsafe for it, and a replica could diverge. MIXED (MariaDB's default) and
// ROW are fine.
//
// Only what is missing is created, so a least-privilege user (SELECT, INSERT, UPDATE, DELETE on
// the database, as in the seed's GRANT) can start on a schema an administrator set up. When the
// database is absent and the user may not create it, the error says exactly that.
//
// Thread safety: a free function; it opens its own connection.
#ifndef INSTAFACE_GRAPHDB_SCHEMA_H_
#define INSTAFACE_GRAPHDB_SCHEMA_H_

#include "instaface/common/status.h"
#include "instaface/graphdb/connection_string.h"

namespace instaface::graphdb {

// Database names are limited to [A-Za-z0-9_$] (1..64 chars) because CREATE DATABASE cannot take
// a bound parameter; anything else is InvalidArgument.
common::Status EnsureSchema(const ConnectionConfig& config);

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_SCHEMA_H_

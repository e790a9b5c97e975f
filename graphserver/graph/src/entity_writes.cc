#include "instaface/graph/entity_writes.h"

#include <algorithm>
#include <thread>
#include <variant>
#include <vector>

#include "instaface/graph/statements.h"

namespace instaface::graph {

using common::Status;
using common::StatusCode;
using common::StatusOr;
using graphdb::Connection;
using graphdb::Row;

namespace {

// A key in a message: it is the client's text, so it is cut short.
std::string Quoted(const std::string& key) {
  return "'" + key.substr(0, 64) + (key.size() > 64 ? "...'" : "'");
}

Status Reused(const std::string& key, const std::string& what) {
  return Status::KeyReused("Idempotency-Key " + Quoted(key) + " was first used for " + what +
                           "; a new create needs a new key");
}

// The one row that `sql` finds for `key`, on the primary (a row that made a duplicate-key error
// has committed, and the primary is where it is sure to be seen). Empty when there is none.
StatusOr<std::vector<Row>> FindByKey(graphdb::Pool& pool, const char* sql, const std::string& key) {
  std::vector<Row> rows;
  Status status = pool.Read([&](Connection& conn) -> Status {
    StatusOr<graphdb::PreparedStatement*> stmt = conn.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    StatusOr<std::vector<Row>> found = (*stmt)->Query({key});
    if (!found.ok()) return found.status();
    rows = std::move(*found);
    return Status();
  });
  if (!status.ok()) return status;
  return rows;
}

const std::string* Text(const graphdb::Value& v) { return std::get_if<std::string>(&v); }
const int64_t* Int(const graphdb::Value& v) { return std::get_if<int64_t>(&v); }

}  // namespace

std::string AttributesText(const nlohmann::json& attributes) {
  if (attributes.is_null()) return "{}";
  return attributes.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<int64_t> FindKeyedEntity(graphdb::Pool& pool, const EntityCreate& create) {
  StatusOr<std::vector<Row>> rows = FindByKey(
      pool, "SELECT id, type, attributes FROM entities WHERE idempotency_key = ?", create.key);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return Status::NotFound("no entity has Idempotency-Key " + Quoted(create.key));
  const Row& row = (*rows)[0];
  const int64_t* id = Int(row[0]);
  const std::string* type = Text(row[1]);
  const std::string* attributes = Text(row[2]);
  if (id == nullptr || type == nullptr || attributes == nullptr) {
    return Status::Internal("the entity row of Idempotency-Key " + Quoted(create.key) +
                            " is not (id, type, attributes)");
  }
  if (*type != create.type || *attributes != create.attributes) {
    return Reused(create.key, "another create (entity " + std::to_string(*id) + " of type '" +
                                  *type + "' with other attributes)");
  }
  return *id;
}

StatusOr<int64_t> WriteEntity(graphdb::Pool& pool, uint64_t term, const EntityCreate& create) {
  StatusOr<graphdb::ExecResult> r = graphdb::RunFencedInsert(
      pool, term, EntityInsert(),
      {create.type, create.attributes, KeyParam(create.key), TermParam(term)});
  if (r.ok()) return static_cast<int64_t>(r->insert_id);
  // The only unique key an entity insert can collide on is its idempotency key.
  if (r.status().code() != StatusCode::kConflict || create.key.empty()) return r.status();
  StatusOr<int64_t> first = FindKeyedEntity(pool, create);
  if (first.status().code() == StatusCode::kNotFound) {
    // The colliding row went away between the insert and the read: nothing deletes rows, so
    // this is a bug, not a race to retry.
    return Status::Internal("an insert collided on Idempotency-Key " + Quoted(create.key) +
                            " but no row has it");
  }
  return first;
}

Status WriteAssociation(graphdb::Pool& pool, uint64_t term, const std::string& type, int64_t from,
                        int64_t to, const std::string& attributes, const std::string& key) {
  Status status =
      graphdb::RunFencedInsert(pool, term, AssociationInsert(),
                               {type, from, to, attributes, KeyParam(key), TermParam(term)})
          .status();
  if (status.code() != StatusCode::kConflict || key.empty()) return status;
  // The collision is the key (a retry) or the primary key (the association exists).
  StatusOr<std::vector<Row>> rows = FindByKey(
      pool, "SELECT type, from_id, to_id, attributes FROM associations WHERE idempotency_key = ?",
      key);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return status;  // made by another create
  const Row& row = (*rows)[0];
  const std::string* stored_type = Text(row[0]);
  const int64_t* stored_from = Int(row[1]);
  const int64_t* stored_to = Int(row[2]);
  const std::string* stored_attributes = Text(row[3]);
  if (stored_type == nullptr || stored_from == nullptr || stored_to == nullptr ||
      stored_attributes == nullptr) {
    return Status::Internal("the association row of Idempotency-Key " + Quoted(key) +
                            " is not (type, from, to, attributes)");
  }
  if (*stored_type != type || *stored_from != from || *stored_to != to ||
      *stored_attributes != attributes) {
    return Reused(key, "another create (association " + *stored_type + " from " +
                           std::to_string(*stored_from) + " to " + std::to_string(*stored_to) +
                           ")");
  }
  return Status();
}

bool SafeToRetry(const Status& status, bool keyed) {
  return status.code() == StatusCode::kUnavailable ||
         (keyed && status.code() == StatusCode::kOutcomeUnknown);
}

Status RetryWrite(std::chrono::steady_clock::time_point give_up, bool keyed,
                  const std::function<Status()>& write) {
  std::chrono::milliseconds pause{25};
  while (true) {
    Status status = write();
    if (status.ok() || !SafeToRetry(status, keyed)) return status;
    const auto now = std::chrono::steady_clock::now();
    if (now + pause > give_up) return status;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(400));
  }
}

}  // namespace instaface::graph

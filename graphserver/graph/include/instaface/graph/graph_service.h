// GraphService: the social-graph domain of instaface-graphserver, JSON in and JSON out, one
// method per route of /api/graph. It reads through bounded LRU caches (entities by id,
// associations by (type, from)), fills misses from a MissFiller (a follower asking the leader),
// a read-replica Pool (falling back to the primary when the replica is unreachable; a replica
// may lag the primary by its replication delay), or the primary Pool; it writes through the
// primary Pool in fenced transactions (graphdb/fence.h) with the term the caller leads in.
//
// Shapes (mirroring the original service):
//   entity       {"id": 7, "type": "user", "created": "2026-11-28T01:02:03.456789Z",
//                 "attributes": {...}}
//   association  {"type": "friend", "from": 7, "to": 9, "created": "...Z", "attributes": {...}}
//   query        request  {"entities": [7], "template": {"friend": {"likes": {}}}}; the two
//                         keys are matched case-insensitively ("Entities", "Template"), any
//                         other key is refused, and "entities" is required.
//                answer   {"stats": {"timeRunning": ms, "calls": fetches, "timeFetching": ms},
//                          "entities": [{"id": 7, "type": "user", "created": "...",
//                           <attributes of 7>,
//                           "friend": [{"id": 9, "linked": <association created>,
//                                       <association attributes>, "type": "user",
//                                       "created": <entity 9 created>, <attributes of 9>,
//                                       "likes": [...]}]}]}
//                An entity with no associations of a template's type has no key for that type
//                (the original's shape). Reserved keys (id, type, created, linked and the
//                template's keys) win over attributes of the same name. Each template level
//                costs one IN (...) query per association type for the cache misses, plus one
//                for the entities it reaches.
//
// Errors: InvalidArgument (bad input, with a message naming the field), Conflict (association
// exists), NotFound (an association's from/to entity does not exist), FenceLost (a newer leader
// wrote; nothing was written), KeyReused (an idempotency key came back with another request),
// Unavailable (database unreachable; nothing was written), OutcomeUnknown (the write was sent
// and its answer lost: it may have been applied), Internal.
//
// Thread safety: all methods are safe to call concurrently from any number of threads.
#ifndef INSTAFACE_GRAPH_GRAPH_SERVICE_H_
#define INSTAFACE_GRAPH_GRAPH_SERVICE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"
#include "instaface/graph/entity_batcher.h"
#include "instaface/graph/miss_filler.h"
#include "instaface/graphdb/pool.h"

namespace instaface::graph {

struct GraphOptions {
  size_t entity_cache_capacity = 100000;
  size_t association_cache_capacity = 100000;
  // Entities never change once created, so they are cached forever (within capacity). An
  // association list grows when another node writes, so it is kept this long at most; writes
  // through this service invalidate it at once.
  std::chrono::milliseconds association_cache_ttl{1000};
  size_t max_ids_per_request = 1000;
  int64_t max_random_count = 1000;
  size_t max_query_depth = 8;
  size_t max_query_nodes = 100000;  // entities in one query answer
  // How long a create that failed is tried again when a retry is safe: it was not applied (the
  // database restarting), or it is keyed and its outcome is unknown (entity_writes.h).
  std::chrono::milliseconds write_retry_window{2000};
};

struct GraphStats {
  uint64_t entity_cache_hits = 0;
  uint64_t entity_cache_misses = 0;
  uint64_t association_cache_hits = 0;
  uint64_t association_cache_misses = 0;
  uint64_t filler_fetches = 0;   // miss batches filled by the MissFiller
  uint64_t filler_failures = 0;  // ... that failed and fell back to the database
  uint64_t database_errors = 0;
  uint64_t replica_failures = 0;      // reads that fell back to the primary (replica unreachable)
  uint64_t database_queries = 0;      // SELECTs sent to a database (to check batching)
  uint64_t queries_answered = 0;      // POST /query requests that passed validation
  uint64_t group_commits = 0;         // entity batches written by group commit
  uint64_t group_commit_creates = 0;  // creates they carried
};

class GraphService {
 public:
  // `primary` is required; `replica` may be null (ConnectionStrings__ReadReplica unset).
  GraphService(std::shared_ptr<graphdb::Pool> primary, std::shared_ptr<graphdb::Pool> replica,
               GraphOptions options = {});
  ~GraphService();
  GraphService(const GraphService&) = delete;
  GraphService& operator=(const GraphService&) = delete;

  // Set once before serving (not synchronised with concurrent reads).
  void set_miss_filler(std::shared_ptr<MissFiller> filler);
  // Group commit for entity creates (entity_batcher.h): set once before serving; off until then.
  void EnableGroupCommit(EntityBatcherOptions options);
  // Finishes the groups in flight and refuses later creates with Unavailable; call it while the
  // HTTP server still answers, so that every caller of a queued create gets its answer.
  void StopGroupCommit();
  bool group_commit() const;

  // POST /entities, body [ids] -> [entity...] for the ids that exist, in request order.
  common::StatusOr<nlohmann::json> GetEntities(const nlohmann::json& ids);
  // POST /entities/{type}, body [from ids] -> [association...] ordered by from (request order),
  // then to.
  common::StatusOr<nlohmann::json> GetAssociations(const std::string& type,
                                                   const nlohmann::json& from_ids);
  // POST /query -> {"stats", "entities": [entity tree...]} for the root ids that exist.
  common::StatusOr<nlohmann::json> Query(const nlohmann::json& request);
  // POST /random/{type}/{count} -> [ids], at most min(count, max_random_count), no repeats.
  common::StatusOr<nlohmann::json> Random(const std::string& type, int64_t count);

  // POST /entities/{type}/create -> the new entity's id; through group commit when enabled.
  // With an idempotency key (empty: none), a create that this key already made answers that
  // entity's id and writes nothing; the key with another type or attributes is KeyReused.
  common::StatusOr<int64_t> CreateEntity(const std::string& type, const nlohmann::json& attributes,
                                         uint64_t fence_term,
                                         const std::string& idempotency_key = {});
  // The same without waiting: `done` gets the id or the error exactly once, from a group commit
  // thread, or from this thread without group commit and for input refused up front.
  void CreateEntityAsync(const std::string& type, const nlohmann::json& attributes,
                         uint64_t fence_term, EntityBatcher::Done done,
                         std::string idempotency_key = {});
  // POST /associations/{type}/from/{from}/to/{to}. With a key that already made this
  // association: success, nothing written; Conflict when it exists but another create made it.
  common::Status CreateAssociation(const std::string& type, int64_t from, int64_t to,
                                   const nlohmann::json& attributes, uint64_t fence_term,
                                   const std::string& idempotency_key = {});

  // For a follower that forwarded a write: forget what the write made stale here.
  void InvalidateAssociations(const std::string& type, int64_t from);
  void ClearCaches();

  // A round trip to the primary database (for /readyz).
  common::Status CheckDatabase();

  GraphStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_GRAPH_SERVICE_H_

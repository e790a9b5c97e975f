#include "instaface/graph/graph_service.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "instaface/graph/entity_writes.h"
#include "instaface/graph/lru_cache.h"
#include "instaface/graph/validation.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/mysql_error.h"

namespace instaface::graph {

using common::Status;
using common::StatusCode;
using common::StatusOr;
using graphdb::Connection;
using graphdb::ExecResult;
using graphdb::PreparedStatement;
using graphdb::Row;
using graphdb::Value;
using json = nlohmann::json;

namespace {

// The longest IN (...) list in one statement. Longer id lists are split into chunks.
constexpr size_t kMaxInList = 1024;

// IN lists are padded to a power of two (repeating the last id, which IN ignores) so that each
// connection caches at most a dozen variants of a statement instead of one per list length.
size_t PaddedSize(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

std::string Placeholders(size_t n) {
  std::string s;
  s.reserve(n * 2);
  for (size_t k = 0; k < n; ++k) s += k == 0 ? "?" : ",?";
  return s;
}

// What one query spent filling cache misses, for the answer's "stats" (the original service
// reports the same): how many fetches (one per batch of misses: an entity batch, or one
// association type's) and the time they took.
struct FetchStats {
  int64_t calls = 0;
  std::chrono::steady_clock::duration fetching{0};
};

// Counts one fetch and adds its duration to `stats` (if any) when the scope ends.
class FetchTimer {
 public:
  explicit FetchTimer(FetchStats* stats) : stats_(stats), start_(std::chrono::steady_clock::now()) {
    if (stats_) ++stats_->calls;
  }
  ~FetchTimer() {
    if (stats_) stats_->fetching += std::chrono::steady_clock::now() - start_;
  }
  FetchTimer(const FetchTimer&) = delete;
  FetchTimer& operator=(const FetchTimer&) = delete;

 private:
  FetchStats* stats_;
  std::chrono::steady_clock::time_point start_;
};

double Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

constexpr const char* kCreatedIso = "DATE_FORMAT(created, '%Y-%m-%dT%H:%i:%s.%fZ')";

struct AssocKey {
  std::string type;
  int64_t from;
  bool operator==(const AssocKey& o) const { return from == o.from && type == o.type; }
};
struct AssocKeyHash {
  size_t operator()(const AssocKey& k) const {
    return std::hash<std::string>()(k.type) * 31 + std::hash<int64_t>()(k.from);
  }
};

using EntityPtr = std::shared_ptr<const json>;
using AssocListPtr = std::shared_ptr<const json>;  // a JSON array of associations

json ParseAttributes(const std::string& text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return json::object();
  return parsed;
}

const std::string* AsString(const Value& v) { return std::get_if<std::string>(&v); }
int64_t AsInt(const Value& v) {
  const int64_t* i = std::get_if<int64_t>(&v);
  return i ? *i : 0;
}

// Probes per statement of RandomIds: a UNION ALL of this many single-row index lookups.
constexpr size_t kRandomProbesPerStatement = 64;

// Up to `count` distinct random ids of `type`, without reading every id of the type (ORDER BY
// RAND() does: a full scan of the type's index per call). The id range of the type costs two
// index dives; then each probe is one more, "the first id of the type at or after a random
// point". An id that follows a wide gap of other types' ids is found more often than one that
// follows a narrow gap: random enough for sampling a social graph, not uniform. When the probes
// cannot find enough distinct ids the type is small, and it is read whole (at most a few times
// `count` index entries) and sampled exactly.
Status RandomIds(Connection& conn, const std::string& type, int64_t count, json* out) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  *out = json::array();  // a retried attempt starts over
  StatusOr<PreparedStatement*> range =
      conn.Prepare("SELECT MIN(id), MAX(id) FROM entities WHERE type = ?");
  if (!range.ok()) return range.status();
  StatusOr<std::vector<Row>> bounds = (*range)->Query({type});
  if (!bounds.ok()) return bounds.status();
  if (bounds->empty() || std::holds_alternative<std::monostate>((*bounds)[0][0])) {
    return Status();  // no entity of the type
  }
  const int64_t low = AsInt((*bounds)[0][0]);
  const int64_t high = AsInt((*bounds)[0][1]);
  const auto wanted = static_cast<size_t>(count);
  std::vector<int64_t> found;
  std::unordered_set<int64_t> seen;
  std::uniform_int_distribution<int64_t> point(low, high);
  for (int round = 0; round < 3 && found.size() < wanted; ++round) {
    const size_t probes = std::min<size_t>(2 * (wanted - found.size()), 1024);
    for (size_t start = 0; start < probes && found.size() < wanted;
         start += kRandomProbesPerStatement) {
      const size_t n = std::min(kRandomProbesPerStatement, probes - start);
      const size_t padded = PaddedSize(n);  // a repeated probe only finds a repeated id
      std::string sql;
      std::vector<Value> params;
      for (size_t k = 0; k < padded; ++k) {
        sql += k == 0 ? "" : " UNION ALL ";
        // MIN, not ORDER BY id LIMIT 1: MariaDB answers MIN over an index prefix with one
        // dive, where the other form became a ref on `type` that stepped through every id
        // below the point.
        sql += "SELECT MIN(id) FROM entities WHERE type = ? AND id >= ?";
      }
      int64_t last = low;
      for (size_t k = 0; k < padded; ++k) {
        if (k < n) last = point(random);
        params.emplace_back(type);
        params.emplace_back(last);
      }
      StatusOr<PreparedStatement*> stmt = conn.Prepare(sql);
      if (!stmt.ok()) return stmt.status();
      StatusOr<std::vector<Row>> rows = (*stmt)->Query(params);
      if (!rows.ok()) return rows.status();
      for (const Row& row : *rows) {
        if (std::holds_alternative<std::monostate>(row[0])) continue;  // none at or after it
        const int64_t id = AsInt(row[0]);
        if (found.size() < wanted && seen.insert(id).second) found.push_back(id);
      }
    }
  }
  if (found.size() < wanted) {
    // Few ids of this type: read them all (the limit bounds the read if that guess is wrong).
    const int64_t limit = 4 * count + 1;
    StatusOr<PreparedStatement*> all =
        conn.Prepare("SELECT id FROM entities WHERE type = ? ORDER BY id LIMIT ?");
    if (!all.ok()) return all.status();
    StatusOr<std::vector<Row>> rows = (*all)->Query({type, limit});
    if (!rows.ok()) return rows.status();
    std::vector<int64_t> rest;
    for (const Row& row : *rows) {
      const int64_t id = AsInt(row[0]);
      if (!seen.count(id)) rest.push_back(id);
    }
    std::shuffle(rest.begin(), rest.end(), random);
    for (int64_t id : rest) {
      if (found.size() >= wanted) break;
      found.push_back(id);
    }
  }
  for (int64_t id : found) out->push_back(id);
  return Status();
}

// Checks the shape of an entity the leader sent; a follower caches only well-formed ones.
bool WellFormedEntity(const json& e) {
  return e.is_object() && e.contains("id") && e["id"].is_number_integer() && e.contains("type") &&
         e["type"].is_string() && e.contains("created") && e["created"].is_string() &&
         e.contains("attributes") && e["attributes"].is_object();
}

bool WellFormedAssociation(const json& a) {
  return a.is_object() && a.contains("type") && a["type"].is_string() && a.contains("from") &&
         a["from"].is_number_integer() && a.contains("to") && a["to"].is_number_integer() &&
         a.contains("created") && a["created"].is_string() && a.contains("attributes") &&
         a["attributes"].is_object();
}

std::vector<int64_t> Dedupe(const std::vector<int64_t>& ids) {
  std::vector<int64_t> out;
  std::unordered_set<int64_t> seen;
  for (int64_t id : ids) {
    if (seen.insert(id).second) out.push_back(id);
  }
  return out;
}

}  // namespace

class GraphService::Impl {
 public:
  Impl(std::shared_ptr<graphdb::Pool> primary, std::shared_ptr<graphdb::Pool> replica,
       GraphOptions options)
      : primary_(std::move(primary)),
        replica_(std::move(replica)),
        options_(options),
        entities_(options.entity_cache_capacity),
        associations_(options.association_cache_capacity, options.association_cache_ttl) {}

  // Reads go to the replica when there is one; if it cannot be reached they go to the primary,
  // which has all the data (the replica only takes load off it).
  Status ReadDatabase(const std::function<Status(Connection&)>& body) {
    if (replica_) {
      Status status = replica_->Read(body);
      if (status.code() != StatusCode::kUnavailable) return status;
      replica_failures_.fetch_add(1, std::memory_order_relaxed);
    }
    return primary_->Read(body);
  }

  Status CountError(Status s) {
    if (!s.ok() && (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kInternal)) {
      database_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    return s;
  }

  // ---- entities ----

  // Fills `out` with the entities among `ids` that exist (cache, then filler or database).
  Status LoadEntities(const std::vector<int64_t>& ids, std::unordered_map<int64_t, EntityPtr>& out,
                      FetchStats* stats = nullptr) {
    std::vector<int64_t> misses;
    for (int64_t id : ids) {
      if (out.count(id)) continue;
      if (EntityPtr e = entities_.Get(id)) {
        out.emplace(id, std::move(e));
      } else {
        misses.push_back(id);
      }
    }
    misses = Dedupe(misses);
    if (misses.empty()) return Status();
    FetchTimer timer(stats);

    if (filler_ && filler_->ShouldUse()) {
      filler_fetches_.fetch_add(1, std::memory_order_relaxed);
      StatusOr<json> fetched = filler_->FetchEntities(misses);
      if (fetched.ok() && fetched->is_array()) {
        std::unordered_set<int64_t> wanted(misses.begin(), misses.end());
        for (const json& e : *fetched) {
          if (!WellFormedEntity(e)) continue;
          const int64_t id = e["id"].get<int64_t>();
          if (!wanted.count(id)) continue;
          auto ptr = std::make_shared<const json>(e);
          entities_.Put(id, ptr);
          out.emplace(id, std::move(ptr));
        }
        return Status();
      }
      filler_failures_.fetch_add(1, std::memory_order_relaxed);
    }
    return CountError(ReadDatabase([&](Connection& conn) -> Status {
      for (size_t start = 0; start < misses.size(); start += kMaxInList) {
        const size_t n = std::min(kMaxInList, misses.size() - start);
        const size_t padded = PaddedSize(n);
        StatusOr<PreparedStatement*> stmt =
            conn.Prepare(std::string("SELECT id, type, ") + kCreatedIso +
                         ", attributes FROM entities WHERE id IN (" + Placeholders(padded) + ")");
        if (!stmt.ok()) return stmt.status();
        std::vector<Value> params;
        params.reserve(padded);
        for (size_t k = 0; k < padded; ++k) params.emplace_back(misses[start + std::min(k, n - 1)]);
        queries_.fetch_add(1, std::memory_order_relaxed);
        StatusOr<std::vector<Row>> rows = (*stmt)->Query(params);
        if (!rows.ok()) return rows.status();
        for (const Row& row : *rows) {
          const int64_t id = AsInt(row[0]);
          const std::string* type = AsString(row[1]);
          const std::string* created = AsString(row[2]);
          const std::string* attributes = AsString(row[3]);
          auto e = std::make_shared<const json>(
              json{{"id", id},
                   {"type", type ? *type : ""},
                   {"created", created ? *created : ""},
                   {"attributes", attributes ? ParseAttributes(*attributes) : json::object()}});
          entities_.Put(id, e);
          out[id] = std::move(e);
        }
      }
      return Status();
    }));
  }

  // ---- associations ----

  Status LoadAssociations(const std::string& type, const std::vector<int64_t>& from_ids,
                          std::unordered_map<int64_t, AssocListPtr>& out,
                          FetchStats* stats = nullptr) {
    std::vector<int64_t> misses;
    for (int64_t from : from_ids) {
      if (out.count(from)) continue;
      if (AssocListPtr list = associations_.Get(AssocKey{type, from})) {
        out.emplace(from, std::move(list));
      } else {
        misses.push_back(from);
      }
    }
    misses = Dedupe(misses);
    if (misses.empty()) return Status();
    FetchTimer timer(stats);

    std::map<int64_t, json> grouped;  // from -> array, for every miss (empty when none)
    for (int64_t from : misses) grouped[from] = json::array();
    bool filled = false;
    if (filler_ && filler_->ShouldUse()) {
      filler_fetches_.fetch_add(1, std::memory_order_relaxed);
      StatusOr<json> fetched = filler_->FetchAssociations(type, misses);
      if (fetched.ok() && fetched->is_array()) {
        for (const json& a : *fetched) {
          if (!WellFormedAssociation(a) || a["type"].get<std::string>() != type) continue;
          auto it = grouped.find(a["from"].get<int64_t>());
          if (it != grouped.end()) it->second.push_back(a);
        }
        filled = true;
      } else {
        filler_failures_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (!filled) {
      Status status = CountError(ReadDatabase([&](Connection& conn) -> Status {
        for (size_t start = 0; start < misses.size(); start += kMaxInList) {
          const size_t n = std::min(kMaxInList, misses.size() - start);
          const size_t padded = PaddedSize(n);
          StatusOr<PreparedStatement*> stmt =
              conn.Prepare(std::string("SELECT from_id, to_id, ") + kCreatedIso +
                           ", attributes FROM associations WHERE type = ? AND from_id IN (" +
                           Placeholders(padded) + ") ORDER BY from_id, to_id");
          if (!stmt.ok()) return stmt.status();
          std::vector<Value> params;
          params.reserve(padded + 1);
          params.emplace_back(type);
          for (size_t k = 0; k < padded; ++k) {
            params.emplace_back(misses[start + std::min(k, n - 1)]);
          }
          queries_.fetch_add(1, std::memory_order_relaxed);
          StatusOr<std::vector<Row>> rows = (*stmt)->Query(params);
          if (!rows.ok()) return rows.status();
          for (const Row& row : *rows) {
            const std::string* created = AsString(row[2]);
            const std::string* attributes = AsString(row[3]);
            grouped[AsInt(row[0])].push_back(
                json{{"type", type},
                     {"from", AsInt(row[0])},
                     {"to", AsInt(row[1])},
                     {"created", created ? *created : ""},
                     {"attributes", attributes ? ParseAttributes(*attributes) : json::object()}});
          }
        }
        return Status();
      }));
      if (!status.ok()) return status;
    }
    for (auto& [from, list] : grouped) {
      auto ptr = std::make_shared<const json>(std::move(list));
      associations_.Put(AssocKey{type, from}, ptr);
      out[from] = std::move(ptr);
    }
    return Status();
  }

  // ---- query ----

  struct Frontier {
    const json* tmpl;
    std::vector<int64_t> ids;
  };

  Status ValidateTemplate(const json& tmpl, size_t depth) {
    if (!tmpl.is_object()) return Status::InvalidArgument("template values must be JSON objects");
    if (depth > options_.max_query_depth && !tmpl.empty()) {
      return Status::InvalidArgument("template is deeper than " +
                                     std::to_string(options_.max_query_depth) + " levels");
    }
    for (const auto& [key, nested] : tmpl.items()) {
      if (Status s = ValidateType(key); !s.ok()) {
        return Status::InvalidArgument("template key '" + key + "': " + s.message());
      }
      if (nested.is_null()) continue;
      if (Status s = ValidateTemplate(nested, depth + 1); !s.ok()) return s;
    }
    return Status();
  }

  // Builds the answer for entity `id` under template `tmpl`; `via` is the association that led
  // here (null for a root). Returns false when the answer would exceed max_query_nodes.
  bool Build(int64_t id, const json& tmpl, const json* via,
             const std::unordered_map<int64_t, EntityPtr>& entities,
             const std::map<std::string, std::unordered_map<int64_t, AssocListPtr>>& assocs,
             size_t* nodes, json* out) {
    if (++*nodes > options_.max_query_nodes) return false;
    json obj = json::object();
    auto e = entities.find(id);
    if (e != entities.end()) {
      for (const auto& [k, v] : (*e->second)["attributes"].items()) obj[k] = v;
    }
    if (via != nullptr) {
      for (const auto& [k, v] : (*via)["attributes"].items()) obj[k] = v;
    }
    if (e != entities.end()) {
      obj["type"] = (*e->second)["type"];
      obj["created"] = (*e->second)["created"];
    }
    obj["id"] = id;
    if (via != nullptr) obj["linked"] = (*via)["created"];
    if (tmpl.is_object()) {
      for (const auto& [type, nested] : tmpl.items()) {
        // As in the original service, an entity with no associations of a type has no key for
        // it at all (not an empty list): its clients test `"posted" in user`.
        auto by_type = assocs.find(type);
        if (by_type == assocs.end()) continue;
        auto list = by_type->second.find(id);
        if (list == by_type->second.end() || list->second->empty()) continue;
        json children = json::array();
        for (const json& a : *list->second) {
          json child;
          static const json kEmpty = json::object();
          if (!Build(a["to"].get<int64_t>(), nested.is_null() ? kEmpty : nested, &a, entities,
                     assocs, nodes, &child)) {
            return false;
          }
          children.push_back(std::move(child));
        }
        obj[type] = std::move(children);
      }
    }
    *out = std::move(obj);
    return true;
  }

  StatusOr<json> Query(const json& request) {
    const auto started = std::chrono::steady_clock::now();
    static const json kEmptyObject = json::object();
    StatusOr<QueryParts> parts = SplitQuery(request);
    if (!parts.ok()) return parts.status();
    StatusOr<std::vector<int64_t>> roots =
        IdsFromJson(*parts->entities, options_.max_ids_per_request, "entities");
    if (!roots.ok()) return roots.status();
    const json& tmpl =
        parts->tmpl != nullptr && !parts->tmpl->is_null() ? *parts->tmpl : kEmptyObject;
    if (Status s = ValidateTemplate(tmpl, 1); !s.ok()) return s;
    queries_answered_.fetch_add(1, std::memory_order_relaxed);

    FetchStats fetch;
    std::unordered_map<int64_t, EntityPtr> entities;
    std::map<std::string, std::unordered_map<int64_t, AssocListPtr>> assocs;
    std::vector<int64_t> root_ids = Dedupe(*roots);
    if (Status s = LoadEntities(root_ids, entities, &fetch); !s.ok()) return s;

    // Breadth-first over the template: each level loads the associations of every type it
    // names in one batch per type, then every entity those associations reach in one batch.
    std::vector<Frontier> frontier{{&tmpl, root_ids}};
    size_t loaded = root_ids.size();
    while (!frontier.empty()) {
      std::map<std::string, std::vector<int64_t>> wanted;
      for (const Frontier& f : frontier) {
        for (const auto& [type, nested] : f.tmpl->items()) {
          auto& ids = wanted[type];
          ids.insert(ids.end(), f.ids.begin(), f.ids.end());
        }
      }
      for (auto& [type, ids] : wanted) {
        if (Status s = LoadAssociations(type, Dedupe(ids), assocs[type], &fetch); !s.ok()) {
          return s;
        }
      }
      std::vector<Frontier> next;
      std::vector<int64_t> reached;
      for (const Frontier& f : frontier) {
        for (const auto& [type, nested] : f.tmpl->items()) {
          Frontier child{nested.is_null() ? &kEmptyObject : &nested, {}};
          const auto& lists = assocs[type];
          for (int64_t from : f.ids) {
            auto it = lists.find(from);
            if (it == lists.end()) continue;
            for (const json& a : *it->second) child.ids.push_back(a["to"].get<int64_t>());
          }
          child.ids = Dedupe(child.ids);
          loaded += child.ids.size();
          if (loaded > options_.max_query_nodes) {
            return Status::InvalidArgument("query reaches more than " +
                                           std::to_string(options_.max_query_nodes) +
                                           " entities; narrow the template");
          }
          reached.insert(reached.end(), child.ids.begin(), child.ids.end());
          next.push_back(std::move(child));
        }
      }
      if (Status s = LoadEntities(reached, entities, &fetch); !s.ok()) return s;
      frontier = std::move(next);
    }

    json answer = json::array();
    size_t nodes = 0;
    for (int64_t id : root_ids) {
      if (!entities.count(id)) continue;
      json tree;
      if (!Build(id, tmpl, nullptr, entities, assocs, &nodes, &tree)) {
        return Status::InvalidArgument("query answer has more than " +
                                       std::to_string(options_.max_query_nodes) +
                                       " entities; narrow the template");
      }
      answer.push_back(std::move(tree));
    }
    return json{{"stats",
                 {{"timeRunning", Millis(std::chrono::steady_clock::now() - started)},
                  {"calls", fetch.calls},
                  {"timeFetching", Millis(fetch.fetching)}}},
                {"entities", std::move(answer)}};
  }

  std::shared_ptr<graphdb::Pool> primary_;
  std::shared_ptr<graphdb::Pool> replica_;
  const GraphOptions options_;
  std::shared_ptr<MissFiller> filler_;
  std::shared_ptr<EntityBatcher> batcher_;  // group commit, when enabled before serving
  LruCache<int64_t, json> entities_;
  LruCache<AssocKey, json, AssocKeyHash> associations_;
  std::atomic<uint64_t> filler_fetches_{0};
  std::atomic<uint64_t> filler_failures_{0};
  std::atomic<uint64_t> database_errors_{0};
  std::atomic<uint64_t> queries_{0};
  std::atomic<uint64_t> queries_answered_{0};
  std::atomic<uint64_t> replica_failures_{0};
};

GraphService::GraphService(std::shared_ptr<graphdb::Pool> primary,
                           std::shared_ptr<graphdb::Pool> replica, GraphOptions options)
    : impl_(std::make_unique<Impl>(std::move(primary), std::move(replica), options)) {}

GraphService::~GraphService() = default;

void GraphService::set_miss_filler(std::shared_ptr<MissFiller> filler) {
  impl_->filler_ = std::move(filler);
}

StatusOr<json> GraphService::GetEntities(const json& ids) {
  StatusOr<std::vector<int64_t>> parsed = IdsFromJson(ids, impl_->options_.max_ids_per_request);
  if (!parsed.ok()) return parsed.status();
  const std::vector<int64_t> wanted = Dedupe(*parsed);
  std::unordered_map<int64_t, EntityPtr> found;
  if (Status s = impl_->LoadEntities(wanted, found); !s.ok()) return s;
  json answer = json::array();
  for (int64_t id : wanted) {
    auto it = found.find(id);
    if (it != found.end()) answer.push_back(*it->second);
  }
  return answer;
}

StatusOr<json> GraphService::GetAssociations(const std::string& type, const json& from_ids) {
  if (Status s = ValidateType(type); !s.ok()) return s;
  StatusOr<std::vector<int64_t>> parsed =
      IdsFromJson(from_ids, impl_->options_.max_ids_per_request);
  if (!parsed.ok()) return parsed.status();
  const std::vector<int64_t> wanted = Dedupe(*parsed);
  std::unordered_map<int64_t, AssocListPtr> found;
  if (Status s = impl_->LoadAssociations(type, wanted, found); !s.ok()) return s;
  json answer = json::array();
  for (int64_t from : wanted) {
    auto it = found.find(from);
    if (it == found.end()) continue;
    for (const json& a : *it->second) answer.push_back(a);
  }
  return answer;
}

StatusOr<json> GraphService::Query(const json& request) { return impl_->Query(request); }

StatusOr<json> GraphService::Random(const std::string& type, int64_t count) {
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (count < 0) return Status::InvalidArgument("count must not be negative");
  count = std::min(count, impl_->options_.max_random_count);
  json answer = json::array();
  if (count == 0) return answer;
  Status status = impl_->CountError(impl_->ReadDatabase(
      [&](Connection& conn) -> Status { return RandomIds(conn, type, count, &answer); }));
  if (!status.ok()) return status;
  return answer;
}

void GraphService::EnableGroupCommit(EntityBatcherOptions options) {
  options.retry_window = impl_->options_.write_retry_window;
  impl_->batcher_ = std::make_shared<EntityBatcher>(impl_->primary_, options);
}

void GraphService::StopGroupCommit() {
  if (impl_->batcher_) impl_->batcher_->Stop();
}

bool GraphService::group_commit() const { return impl_->batcher_ != nullptr; }

void GraphService::CreateEntityAsync(const std::string& type, const json& attributes,
                                     uint64_t fence_term, EntityBatcher::Done done,
                                     std::string idempotency_key) {
  if (impl_->batcher_) {
    impl_->batcher_->CreateAsync(
        type, attributes, fence_term,
        [this, done = std::move(done)](StatusOr<int64_t> id) {
          if (!id.ok()) impl_->CountError(id.status());
          done(std::move(id));
        },
        std::move(idempotency_key));
    return;
  }
  done(CreateEntity(type, attributes, fence_term, idempotency_key));
}

StatusOr<int64_t> GraphService::CreateEntity(const std::string& type, const json& attributes,
                                             uint64_t fence_term,
                                             const std::string& idempotency_key) {
  if (impl_->batcher_) {
    StatusOr<int64_t> id = impl_->batcher_->Create(type, attributes, fence_term, idempotency_key);
    if (!id.ok()) return impl_->CountError(id.status());
    return id;
  }
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (Status s = ValidateAttributes(attributes); !s.ok()) return s;
  if (!idempotency_key.empty()) {
    if (Status s = ValidateIdempotencyKey(idempotency_key); !s.ok()) return s;
  }
  const EntityCreate create{type, AttributesText(attributes), idempotency_key};
  StatusOr<int64_t> id = Status::Internal("the create was not written");
  RetryWrite(std::chrono::steady_clock::now() + impl_->options_.write_retry_window,
             !create.key.empty(), [&]() -> Status {
               id = WriteEntity(*impl_->primary_, fence_term, create);
               return id.status();
             });
  if (!id.ok()) return impl_->CountError(id.status());
  return id;
}

Status GraphService::CreateAssociation(const std::string& type, int64_t from, int64_t to,
                                       const json& attributes, uint64_t fence_term,
                                       const std::string& idempotency_key) {
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (from <= 0 || to <= 0) {
    return Status::InvalidArgument("from and to must be integers from 1 to 9223372036854775807");
  }
  if (Status s = ValidateAttributes(attributes); !s.ok()) return s;
  if (!idempotency_key.empty()) {
    if (Status s = ValidateIdempotencyKey(idempotency_key); !s.ok()) return s;
  }
  const std::string text = AttributesText(attributes);
  Status status = RetryWrite(std::chrono::steady_clock::now() + impl_->options_.write_retry_window,
                             !idempotency_key.empty(), [&] {
                               return WriteAssociation(*impl_->primary_, fence_term, type, from, to,
                                                       text, idempotency_key);
                             });
  // Invalidate even on failure: the cached list may be what made the caller try.
  impl_->associations_.Erase(AssocKey{type, from});
  if (status.code() == StatusCode::kConflict) {
    return Status(StatusCode::kConflict,
                  "association " + type + " from " + std::to_string(from) + " to " +
                      std::to_string(to) + " already exists",
                  status.cause());
  }
  if (status.code() == StatusCode::kNotFound) {
    return Status(
        StatusCode::kNotFound,
        "entity " + std::to_string(from) + " or " + std::to_string(to) + " does not exist",
        status.cause());
  }
  return impl_->CountError(status);
}

void GraphService::InvalidateAssociations(const std::string& type, int64_t from) {
  impl_->associations_.Erase(AssocKey{type, from});
}

void GraphService::ClearCaches() {
  impl_->entities_.Clear();
  impl_->associations_.Clear();
}

Status GraphService::CheckDatabase() {
  return impl_->primary_->Read([](Connection& conn) -> Status {
    return conn.Ping()
               ? Status()
               : graphdb::MysqlError(StatusCode::kUnavailable, "database does not answer a ping",
                                     2006 /* CR_SERVER_GONE_ERROR */);
  });
}

GraphStats GraphService::stats() const {
  GraphStats s;
  s.entity_cache_hits = impl_->entities_.hits();
  s.entity_cache_misses = impl_->entities_.misses();
  s.association_cache_hits = impl_->associations_.hits();
  s.association_cache_misses = impl_->associations_.misses();
  s.filler_fetches = impl_->filler_fetches_.load(std::memory_order_relaxed);
  s.filler_failures = impl_->filler_failures_.load(std::memory_order_relaxed);
  s.database_errors = impl_->database_errors_.load(std::memory_order_relaxed);
  s.database_queries = impl_->queries_.load(std::memory_order_relaxed);
  s.queries_answered = impl_->queries_answered_.load(std::memory_order_relaxed);
  s.replica_failures = impl_->replica_failures_.load(std::memory_order_relaxed);
  if (impl_->batcher_) {
    s.group_commits = impl_->batcher_->transactions();
    s.group_commit_creates = impl_->batcher_->creates();
  }
  return s;
}

}  // namespace instaface::graph

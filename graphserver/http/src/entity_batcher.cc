#include "instaface/graphserver/entity_batcher.h"

#include "instaface/graph/validation.h"
#include "instaface/graphdb/fence.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <variant>

namespace instaface::graphserver {

EntityBatcher::EntityBatcher(std::shared_ptr<graphdb::Pool> primary, size_t max_batch,
                             int max_in_flight)
    : primary_(std::move(primary)),
      max_batch_(std::max<size_t>(1, max_batch)),
      max_in_flight_(std::max(1, max_in_flight)) {}

graphdb::StatusOr<int64_t> EntityBatcher::Create(const std::string& type,
                                                 const nlohmann::json& attributes,
                                                 uint64_t fence_term) {
  if (graphdb::Status s = graph::ValidateType(type); !s.ok()) return s;
  if (graphdb::Status s = graph::ValidateAttributes(attributes); !s.ok()) return s;
  auto mine = std::make_shared<Pending>();
  mine->type = type;
  mine->attributes = attributes.is_null() ? "{}" : attributes.dump();
  mine->term = fence_term;

  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(mine);
  while (!mine->done) {
    // An empty queue means this caller's create is already in another caller's batch.
    if (flushing_ >= max_in_flight_ || queue_.empty()) {
      mine->wake.wait(lock);
      continue;
    }
    // A flush slot is free: this caller runs the next batch (which may or may not include its
    // own create; if not, it loops and runs another).
    ++flushing_;
    std::deque<std::shared_ptr<Pending>> batch;
    uint64_t term = queue_.front()->term;
    for (auto it = queue_.begin(); it != queue_.end() && batch.size() < max_batch_;) {
      if ((*it)->term == term) {
        batch.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    lock.unlock();
    Flush(batch);
    lock.lock();
    ++transactions_;
    creates_ += batch.size();
    --flushing_;
    // Wake one queued caller to run the next batch; the rest sleep on until their own create
    // is done, so a flush wakes only the threads that have something to do.
    if (!queue_.empty()) queue_.front()->wake.notify_one();
  }
  if (!mine->status.ok()) return mine->status;
  return mine->id;
}

namespace {

constexpr size_t kMaxRowsPerInsert = 32;

// "INSERT ... VALUES (?, UTC_TIMESTAMP(6), ?), ..." with `rows` tuples.
std::string MultiRowInsert(size_t rows) {
  std::string sql = "INSERT INTO entities (type, created, attributes) VALUES ";
  for (size_t i = 0; i < rows; ++i)
    sql += i == 0 ? "(?, UTC_TIMESTAMP(6), ?)" : ", (?, UTC_TIMESTAMP(6), ?)";
  return sql;
}

int64_t AsInt(const graphdb::Value& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  if (const std::string* s = std::get_if<std::string>(&v)) return std::atoll(s->c_str());
  return -1;
}

}  // namespace

// Whether one multi-row INSERT hands out consecutive ids (first id = LAST_INSERT_ID()): true
// for InnoDB's "traditional" and "consecutive" auto-increment lock modes with an increment of 1,
// not for "interleaved" mode.
graphdb::Status EntityBatcher::CheckConsecutiveIds(graphdb::Connection& conn) {
  auto stmt = conn.Prepare("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment");
  if (!stmt.ok()) return stmt.status();
  auto rows = (*stmt)->Query({});
  if (!rows.ok()) return rows.status();
  bool consecutive = !rows->empty() && (*rows)[0].size() == 2 && AsInt((*rows)[0][0]) >= 0 &&
                     AsInt((*rows)[0][0]) <= 1 && AsInt((*rows)[0][1]) == 1;
  id_mode_.store(consecutive ? kMultiRow : kRowByRow);
  return graphdb::Status();
}

void EntityBatcher::Flush(std::deque<std::shared_ptr<Pending>>& batch) {
  std::vector<int64_t> ids(batch.size(), 0);
  graphdb::Status status;
  // Every caller in the batch waits for its `done`, and the flush slot is only given back below:
  // an exception escaping here would hang them all, so it becomes an error answer instead.
  try {
    status = graphdb::RunFencedTransaction(
        *primary_, batch.front()->term, [&](graphdb::Connection& conn) -> graphdb::Status {
          if (id_mode_.load() == kUnknown) {
            if (graphdb::Status s = CheckConsecutiveIds(conn); !s.ok()) return s;
          }
          // One INSERT per batch of up to kMaxRowsPerInsert rows: the batch is a serial step
          // (the fence row's lock orders batches), so every extra round trip inside it costs
          // throughput. Each connection prepares at most kMaxRowsPerInsert statement shapes.
          size_t done = 0;
          while (done < batch.size()) {
            size_t chunk = 1;
            if (id_mode_.load() == kMultiRow) {
              chunk = std::min(batch.size() - done, kMaxRowsPerInsert);
            }
            auto stmt = conn.Prepare(MultiRowInsert(chunk));
            if (!stmt.ok()) return stmt.status();
            std::vector<graphdb::Value> params;
            params.reserve(chunk * 2);
            for (size_t i = done; i < done + chunk; ++i) {
              params.emplace_back(batch[i]->type);
              params.emplace_back(batch[i]->attributes);
            }
            auto r = (*stmt)->Execute(params);
            if (!r.ok()) return r.status();
            if (r->affected_rows != chunk) {
              return graphdb::Status::Internal("a batched insert wrote " +
                                               std::to_string(r->affected_rows) + " of " +
                                               std::to_string(chunk) + " rows");
            }
            for (size_t i = 0; i < chunk; ++i) {
              ids[done + i] = static_cast<int64_t>(r->insert_id) + static_cast<int64_t>(i);
            }
            done += chunk;
          }
          return graphdb::Status();
        });
  } catch (const std::exception& e) {
    status = graphdb::Status::Internal(std::string("entity batch failed: ") + e.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->status = status;
    batch[i]->id = status.ok() ? ids[i] : 0;
    batch[i]->done = true;
    batch[i]->wake.notify_one();
  }
}

uint64_t EntityBatcher::transactions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return transactions_;
}

uint64_t EntityBatcher::creates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return creates_;
}

}  // namespace instaface::graphserver

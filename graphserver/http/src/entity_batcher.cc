#include "instaface/graphserver/entity_batcher.h"

#include "instaface/graph/validation.h"
#include "instaface/graphdb/fence.h"

namespace instaface::graphserver {

EntityBatcher::EntityBatcher(std::shared_ptr<graphdb::Pool> primary, size_t max_batch)
    : primary_(std::move(primary)), max_batch_(std::max<size_t>(1, max_batch)) {}

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
    if (flushing_) {
      done_cv_.wait(lock);
      continue;
    }
    // Nobody is writing: this caller runs the next batch (which may or may not include its own
    // create; if not, it loops and runs another).
    flushing_ = true;
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
    flushing_ = false;
    done_cv_.notify_all();
  }
  if (!mine->status.ok()) return mine->status;
  return mine->id;
}

void EntityBatcher::Flush(std::deque<std::shared_ptr<Pending>>& batch) {
  std::vector<int64_t> ids(batch.size(), 0);
  graphdb::Status status = graphdb::RunFencedTransaction(
      *primary_, batch.front()->term, [&](graphdb::Connection& conn) -> graphdb::Status {
        auto stmt = conn.Prepare(
            "INSERT INTO entities (type, created, attributes) VALUES (?, UTC_TIMESTAMP(6), ?)");
        if (!stmt.ok()) return stmt.status();
        for (size_t i = 0; i < batch.size(); ++i) {
          auto r = (*stmt)->Execute({batch[i]->type, batch[i]->attributes});
          if (!r.ok()) return r.status();
          ids[i] = static_cast<int64_t>(r->insert_id);
        }
        return graphdb::Status();
      });
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->status = status;
    batch[i]->id = status.ok() ? ids[i] : 0;
    batch[i]->done = true;
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

#include "instaface/graph/entity_batcher.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <future>
#include <variant>

#include "instaface/graph/statements.h"
#include "instaface/graph/validation.h"
#include "instaface/graphdb/fence.h"

namespace instaface::graph {

namespace {

// Rows per multi-row statement; each connection prepares at most this many statement shapes.
constexpr size_t kMaxRowsPerInsert = 32;

int64_t AsInt(const graphdb::Value& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  if (const std::string* s = std::get_if<std::string>(&v)) return std::atoll(s->c_str());
  return -1;
}

common::Status ShuttingDown() {
  return common::Status::Unavailable(
      "the graphserver is shutting down; the create was not written");
}

}  // namespace

EntityBatcher::EntityBatcher(std::shared_ptr<graphdb::Pool> primary, EntityBatcherOptions options)
    : primary_(std::move(primary)), options_(options) {
  options_.max_batch = std::max<size_t>(1, options_.max_batch);
  options_.max_in_flight = std::max(1, options_.max_in_flight);
  options_.linger = std::max(std::chrono::microseconds(0), options_.linger);
  common::MutexLock lock(stop_mu_);
  for (int i = 0; i < options_.max_in_flight; ++i) flushers_.emplace_back([this] { FlushLoop(); });
}

EntityBatcher::~EntityBatcher() { Stop(); }

void EntityBatcher::Stop() {
  common::MutexLock stop_lock(stop_mu_);  // a second caller waits for the first
  {
    common::MutexLock lock(mu_);
    if (stopping_ && flushers_.empty()) return;
    stopping_ = true;
  }
  queued_.notify_all();
  for (std::thread& t : flushers_) t.join();
  flushers_.clear();
  std::deque<Pending> left;
  {
    common::MutexLock lock(mu_);
    left.swap(queue_);
  }
  for (Pending& p : left) p.done(ShuttingDown());
}

void EntityBatcher::CreateAsync(const std::string& type, const nlohmann::json& attributes,
                                uint64_t fence_term, Done done, std::string idempotency_key) {
  if (common::Status s = ValidateType(type); !s.ok()) return done(s);
  if (common::Status s = ValidateAttributes(attributes); !s.ok()) return done(s);
  if (!idempotency_key.empty()) {
    if (common::Status s = ValidateIdempotencyKey(idempotency_key); !s.ok()) return done(s);
  }
  Pending p{EntityCreate{type, AttributesText(attributes), std::move(idempotency_key)}, fence_term,
            std::move(done)};
  common::MutexLock lock(mu_);
  if (stopping_) {
    lock.Unlock();
    return p.done(ShuttingDown());
  }
  queue_.push_back(std::move(p));
  // Wake a flusher for the first create of a batch, and a lingering one once its batch is full.
  const bool wake = queue_.size() == 1 || (linger_target_ > 0 && queue_.size() >= linger_target_);
  lock.Unlock();
  if (wake) queued_.notify_one();
}

common::StatusOr<int64_t> EntityBatcher::Create(const std::string& type,
                                                const nlohmann::json& attributes,
                                                uint64_t fence_term, std::string idempotency_key) {
  std::promise<common::StatusOr<int64_t>> outcome;
  CreateAsync(
      type, attributes, fence_term,
      [&outcome](common::StatusOr<int64_t> r) { outcome.set_value(std::move(r)); },
      std::move(idempotency_key));
  return outcome.get_future().get();
}

void EntityBatcher::FlushLoop() {
  common::MutexLock lock(mu_);
  while (true) {
    while (!stopping_ && queue_.empty()) queued_.wait(lock.native());
    if (stopping_) return;
    const size_t want = std::min(last_batch_, options_.max_batch);
    if (options_.linger.count() > 0 && queue_.size() < want && linger_target_ == 0) {
      linger_target_ = want;
      const auto until = std::chrono::steady_clock::now() + options_.linger;
      while (!stopping_ && queue_.size() < want &&
             queued_.wait_until(lock.native(), until) == std::cv_status::no_timeout) {
      }
      linger_target_ = 0;
      if (stopping_) return;
    }
    if (queue_.empty()) continue;  // another flusher took them
    std::vector<Pending> batch;
    const uint64_t term = queue_.front().term;
    for (auto it = queue_.begin(); it != queue_.end() && batch.size() < options_.max_batch;) {
      if (it->term == term) {
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    last_batch_ = batch.size();
    // More than one batch's worth, or another term, is waiting: let another flusher start on it.
    if (!queue_.empty()) queued_.notify_one();
    lock.Unlock();
    std::vector<common::StatusOr<int64_t>> outcomes = Flush(batch);
    lock.Lock();
    // Counted before anyone is answered, so a caller with its answer sees its batch counted.
    ++transactions_;
    creates_ += batch.size();
    lock.Unlock();
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
    lock.Lock();
  }
}

// Whether one multi-row INSERT hands out consecutive ids (first id = LAST_INSERT_ID()): true
// for InnoDB's "traditional" and "consecutive" auto-increment lock modes with an increment of 1,
// not for "interleaved" mode.
common::Status EntityBatcher::LearnIdMode() {
  return primary_->Read([&](graphdb::Connection& conn) -> common::Status {
    auto stmt = conn.Prepare("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment");
    if (!stmt.ok()) return stmt.status();
    auto rows = (*stmt)->Query({});
    if (!rows.ok()) return rows.status();
    bool consecutive = !rows->empty() && (*rows)[0].size() == 2 && AsInt((*rows)[0][0]) >= 0 &&
                       AsInt((*rows)[0][0]) <= 1 && AsInt((*rows)[0][1]) == 1;
    id_mode_.store(consecutive ? kMultiRow : kRowByRow);
    return common::Status();
  });
}

std::vector<common::StatusOr<int64_t>> EntityBatcher::Flush(const std::vector<Pending>& batch) {
  std::vector<common::StatusOr<int64_t>> outcomes(
      batch.size(), common::Status::Internal("the create was not written"));
  const auto give_up = std::chrono::steady_clock::now() + options_.retry_window;
  size_t settled = 0;  // creates whose outcome is known
  // A caller waits for its callback: an exception escaping here would leave it hanging, so it
  // becomes an error answer instead.
  try {
    if (id_mode_.load() == kUnknown) {
      if (common::Status s = LearnIdMode(); !s.ok()) {
        std::fill(outcomes.begin(), outcomes.end(), s);
        return outcomes;
      }
    }
    if (id_mode_.load() == kMultiRow) {
      // One autocommitted statement per chunk: the fence check, the rows and the commit in one
      // round trip. Each chunk commits or fails on its own.
      while (settled < batch.size()) {
        const size_t chunk = std::min(batch.size() - settled, kMaxRowsPerInsert);
        WriteChunk(batch, settled, settled + chunk, give_up, outcomes);
        settled += chunk;
      }
    } else {
      WriteChunk(batch, 0, batch.size(), give_up, outcomes);
      settled = batch.size();
    }
  } catch (const std::exception& e) {
    std::fill(outcomes.begin() + static_cast<std::ptrdiff_t>(settled), outcomes.end(),
              common::Status::Internal(std::string("entity batch failed: ") + e.what()));
  }
  return outcomes;
}

void EntityBatcher::WriteChunk(const std::vector<Pending>& batch, size_t begin, size_t end,
                               std::chrono::steady_clock::time_point give_up,
                               std::vector<common::StatusOr<int64_t>>& outcomes) {
  const uint64_t term = batch[begin].term;
  bool any_keyed = false;
  bool all_keyed = true;
  for (size_t i = begin; i < end; ++i) {
    any_keyed = any_keyed || !batch[i].create.key.empty();
    all_keyed = all_keyed && !batch[i].create.key.empty();
  }
  std::vector<int64_t> ids(end - begin, 0);
  auto attempt = [&]() -> common::Status {
    if (id_mode_.load() == kMultiRow) {
      std::vector<graphdb::Value> params;
      params.reserve((end - begin) * EntityInsert().params_per_row);
      for (size_t i = begin; i < end; ++i) {
        params.emplace_back(batch[i].create.type);
        params.emplace_back(batch[i].create.attributes);
        params.push_back(KeyParam(batch[i].create.key));
        params.push_back(TermParam(term));
      }
      auto r = graphdb::RunFencedInsert(*primary_, term, EntityInsert(), params);
      if (!r.ok()) return r.status();
      for (size_t i = 0; i < ids.size(); ++i) {
        ids[i] = static_cast<int64_t>(r->insert_id) + static_cast<int64_t>(i);
      }
      return common::Status();
    }
    // Ids may interleave with other inserts: one row per INSERT, all in one fenced transaction.
    return graphdb::RunFencedTransaction(
        *primary_, term, [&](graphdb::Connection& conn) -> common::Status {
          auto stmt = conn.Prepare(kEntityInsertRow);
          if (!stmt.ok()) return stmt.status();
          for (size_t i = begin; i < end; ++i) {
            auto r = (*stmt)->Execute({batch[i].create.type, batch[i].create.attributes,
                                       KeyParam(batch[i].create.key), TermParam(term)});
            if (!r.ok()) return r.status();
            ids[i - begin] = static_cast<int64_t>(r->insert_id);
          }
          return common::Status();
        });
  };
  common::Status status = RetryWrite(give_up, all_keyed, attempt);
  if (status.ok()) {
    for (size_t i = begin; i < end; ++i) outcomes[i] = ids[i - begin];
    return;
  }
  if (status.code() != common::StatusCode::kConflict || !any_keyed) {
    for (size_t i = begin; i < end; ++i) outcomes[i] = status;
    return;
  }
  // A key in the chunk was taken: nothing of the chunk was written. Row by row, each create
  // either inserts or finds the row its key made.
  for (size_t i = begin; i < end; ++i) {
    const EntityCreate& create = batch[i].create;
    common::StatusOr<int64_t> id = common::Status::Internal("the create was not written");
    RetryWrite(give_up, !create.key.empty(), [&]() -> common::Status {
      id = WriteEntity(*primary_, term, create);
      return id.status();
    });
    outcomes[i] = std::move(id);
  }
}

uint64_t EntityBatcher::transactions() const {
  common::MutexLock lock(mu_);
  return transactions_;
}

uint64_t EntityBatcher::creates() const {
  common::MutexLock lock(mu_);
  return creates_;
}

}  // namespace instaface::graph

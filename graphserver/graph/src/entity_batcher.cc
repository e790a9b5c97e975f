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

constexpr const char* kSingleRowInsert =
    "INSERT INTO entities (type, created, attributes) VALUES (?, UTC_TIMESTAMP(6), ?)";

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
                                uint64_t fence_term, Done done) {
  if (common::Status s = ValidateType(type); !s.ok()) return done(s);
  if (common::Status s = ValidateAttributes(attributes); !s.ok()) return done(s);
  Pending p{type, attributes.is_null() ? "{}" : attributes.dump(), fence_term, std::move(done)};
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
                                                uint64_t fence_term) {
  std::promise<common::StatusOr<int64_t>> outcome;
  CreateAsync(type, attributes, fence_term,
              [&outcome](common::StatusOr<int64_t> r) { outcome.set_value(std::move(r)); });
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
  const uint64_t term = batch.front().term;
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
        std::vector<graphdb::Value> params;
        params.reserve(chunk * 2);
        for (size_t i = settled; i < settled + chunk; ++i) {
          params.emplace_back(batch[i].type);
          params.emplace_back(batch[i].attributes);
        }
        auto r = graphdb::RunFencedInsert(*primary_, term, EntityInsert(), params);
        for (size_t i = 0; i < chunk; ++i) {
          if (r.ok()) {
            outcomes[settled + i] = static_cast<int64_t>(r->insert_id) + static_cast<int64_t>(i);
          } else {
            outcomes[settled + i] = r.status();
          }
        }
        settled += chunk;
      }
    } else {
      // Ids may interleave with other inserts: one row per INSERT, all in one fenced transaction.
      std::vector<int64_t> ids(batch.size(), 0);
      common::Status status = graphdb::RunFencedTransaction(
          *primary_, term, [&](graphdb::Connection& conn) -> common::Status {
            auto stmt = conn.Prepare(kSingleRowInsert);
            if (!stmt.ok()) return stmt.status();
            for (size_t i = 0; i < batch.size(); ++i) {
              auto r = (*stmt)->Execute({batch[i].type, batch[i].attributes});
              if (!r.ok()) return r.status();
              ids[i] = static_cast<int64_t>(r->insert_id);
            }
            return common::Status();
          });
      for (size_t i = 0; i < batch.size(); ++i) {
        if (status.ok()) {
          outcomes[i] = ids[i];
        } else {
          outcomes[i] = status;
        }
      }
      settled = batch.size();
    }
  } catch (const std::exception& e) {
    std::fill(outcomes.begin() + static_cast<std::ptrdiff_t>(settled), outcomes.end(),
              common::Status::Internal(std::string("entity batch failed: ") + e.what()));
  }
  return outcomes;
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

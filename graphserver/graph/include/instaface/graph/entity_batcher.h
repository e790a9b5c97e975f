// EntityBatcher: group commit for the leader's entity creates.
//
// A commit costs a log flush, whatever it carries. The batcher queues concurrent creates and
// writes each group in one fenced statement (graphdb::RunFencedInsert: fence check, rows and
// commit in one round trip), so a flush carries many creates. Rows go in with multi-row
// statements when the server hands out consecutive auto-increment ids (it checks once);
// otherwise row by row inside one fenced transaction. Every create gets its own id; a group of
// up to 32 rows commits or fails as a whole, and each caller gets its group's outcome.
//
// Flusher threads (max_in_flight, each with its own connection from the pool) take whatever is
// queued. Under steady load the callers of one batch come back together, a little apart: a
// flusher waits up to `linger` for as many creates as its last batch took, so that one commit
// carries them all again instead of the first few committing alone and the rest waiting a whole
// commit for the next batch. The wait ends as soon as they are there, and only a shrinking load
// ever waits the full linger (once, after which the expected size follows the load down).
//
// CreateAsync never blocks: an HTTP I/O thread can hand a create over and answer it from the
// callback, with no thread parked per request. Create is the blocking form.
//
// Only creates of the same fence term share a batch. Associations are not batched: one
// duplicate (409) would fail everyone else's write.
//
// Idempotency keys (entity_writes.h): a keyed create goes into the batch's statement like any
// other. When a key is already taken (a retry of a create that committed) the statement fails
// as a whole, and that chunk is written again row by row, where the retry finds its first row.
// A chunk that failed without effect, or with an unknown outcome when every create in it is
// keyed, is tried again until `retry_window` has passed, so a database restart does not fail
// writes that a retry can still make.
//
// Thread safety: Create and CreateAsync may be called from any number of threads at once.
// Callbacks run on a flusher thread (or on the caller's, for input refused up front); they must
// not throw, and should not block for long.
#ifndef INSTAFACE_GRAPH_ENTITY_BATCHER_H_
#define INSTAFACE_GRAPH_ENTITY_BATCHER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include <string>
#include <thread>
#include <vector>
#include "instaface/common/thread_annotations.h"

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"
#include "instaface/graph/entity_writes.h"
#include "instaface/graphdb/pool.h"

namespace instaface::graph {

struct EntityBatcherOptions {
  size_t max_batch = 128;  // creates per batch
  int max_in_flight = 1;   // batches at once: flusher threads, each on its own connection
  // How long a batch may wait to fill up to the size of the one before it; 0 flushes at once.
  std::chrono::microseconds linger{0};
  // How long a failed chunk is retried when a retry is safe (entity_writes.h SafeToRetry).
  std::chrono::milliseconds retry_window{0};
};

class EntityBatcher {
 public:
  using Done = std::function<void(common::StatusOr<int64_t>)>;

  // Starts the flusher threads.
  EntityBatcher(std::shared_ptr<graphdb::Pool> primary, EntityBatcherOptions options = {});
  ~EntityBatcher();  // Stop()
  EntityBatcher(const EntityBatcher&) = delete;
  EntityBatcher& operator=(const EntityBatcher&) = delete;

  // Validates like GraphService::CreateEntity, then queues the create; `done` gets the new id or
  // the error, exactly once. After Stop() it gets Unavailable at once. An empty key is none.
  void CreateAsync(const std::string& type, const nlohmann::json& attributes, uint64_t fence_term,
                   Done done, std::string idempotency_key = {});
  // The same, waiting for the outcome.
  common::StatusOr<int64_t> Create(const std::string& type, const nlohmann::json& attributes,
                                   uint64_t fence_term, std::string idempotency_key = {});

  // Finishes the batches in flight, answers what is still queued with Unavailable, and joins the
  // flushers; no callback runs after it returns. Idempotent, and safe from any thread.
  void Stop();

  uint64_t transactions() const;  // batches run so far (committed or failed)
  uint64_t creates() const;       // creates they carried

 private:
  struct Pending {
    EntityCreate create;
    uint64_t term = 0;
    Done done;
  };
  enum IdMode { kUnknown, kMultiRow, kRowByRow };

  void FlushLoop();
  // Writes one batch (same term) and returns each create's outcome; holds no lock.
  std::vector<common::StatusOr<int64_t>> Flush(const std::vector<Pending>& batch);
  // Writes batch[begin, end) in one statement (or one transaction), retried while safe; on a
  // taken key, row by row. Fills outcomes[begin, end).
  void WriteChunk(const std::vector<Pending>& batch, size_t begin, size_t end,
                  std::chrono::steady_clock::time_point give_up,
                  std::vector<common::StatusOr<int64_t>>& outcomes);
  common::Status LearnIdMode();

  std::shared_ptr<graphdb::Pool> primary_;
  EntityBatcherOptions options_;
  std::atomic<int> id_mode_{kUnknown};  // learned from the server by the first batch

  mutable common::Mutex mu_;
  std::condition_variable queued_;  // a create arrived, or stopping
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  size_t linger_target_ GUARDED_BY(mu_) = 0;  // the size a lingering flusher waits for, or 0
  size_t last_batch_ GUARDED_BY(mu_) = 0;     // creates the last batch took
  uint64_t transactions_ GUARDED_BY(mu_) = 0;
  uint64_t creates_ GUARDED_BY(mu_) = 0;
  common::Mutex stop_mu_;                                   // serializes Stop()
  std::vector<std::thread> flushers_ GUARDED_BY(stop_mu_);  // joined and cleared by Stop()
};

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_ENTITY_BATCHER_H_

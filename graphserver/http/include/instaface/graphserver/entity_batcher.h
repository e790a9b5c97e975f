// EntityBatcher: group commit for the leader's entity creates.
//
// Every fenced write takes the fence row's lock until COMMIT, so per-request transactions run
// one at a time, each paying its own log flush; the database's group commit never gets to
// combine them. The batcher restores it: concurrent creates queue up while one transaction is
// in flight, and the next transaction takes all of them (up to max_batch) under one fence
// check and one COMMIT, inserted with multi-row INSERTs when the server hands out consecutive
// auto-increment ids (it checks once). Every create in a batch gets its own id; a batch fails
// or commits as a whole, and every waiter gets the batch's outcome.
//
// Up to max_in_flight batches run at once, each on its own connection (default 1). Their
// fence checks still queue on the fence row's lock; measured here (graphserver_bench,
// --graphserver-arg --batches-in-flight=2), a second batch in flight did not raise
// throughput, as the batches split the waiting creates between them and wait on each other's
// lock.
//
// Only creates of the same fence term share a transaction. Associations are not batched: one
// duplicate (409) would abort everyone else's write.
//
// Thread safety: Create() may be called from any number of threads at once.
#ifndef INSTAFACE_GRAPHSERVER_ENTITY_BATCHER_H_
#define INSTAFACE_GRAPHSERVER_ENTITY_BATCHER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/status.h"

namespace instaface::graphserver {

class EntityBatcher {
 public:
  EntityBatcher(std::shared_ptr<graphdb::Pool> primary, size_t max_batch = 128,
                int max_in_flight = 1);

  // Validates like GraphService::CreateEntity, then inserts within a fenced transaction that
  // may also carry other callers' creates. Returns the new id.
  graphdb::StatusOr<int64_t> Create(const std::string& type, const nlohmann::json& attributes,
                                    uint64_t fence_term);

  uint64_t transactions() const;  // committed or failed batches so far
  uint64_t creates() const;       // creates they carried

 private:
  struct Pending {
    std::string type;
    std::string attributes;
    uint64_t term = 0;
    bool done = false;
    graphdb::Status status;
    int64_t id = 0;
    // Signalled when this create is done, or when its caller should run the next batch.
    std::condition_variable wake;
  };
  enum IdMode { kUnknown, kMultiRow, kRowByRow };
  // Runs one batch; the caller holds no lock.
  void Flush(std::deque<std::shared_ptr<Pending>>& batch);
  graphdb::Status CheckConsecutiveIds(graphdb::Connection& conn);

  std::shared_ptr<graphdb::Pool> primary_;
  size_t max_batch_;
  int max_in_flight_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Pending>> queue_;  // under mu_
  int flushing_ = 0;                            // under mu_: callers running a batch now
  uint64_t transactions_ = 0;                   // under mu_
  uint64_t creates_ = 0;                        // under mu_
  std::atomic<int> id_mode_{kUnknown};          // learned from the server once
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_ENTITY_BATCHER_H_

// A bounded, thread-safe pool of Connections to one server.
//
// Connections are opened on demand up to max_connections; Acquire waits up to acquire_timeout
// for a free one and then fails with Unavailable. A connection idle for longer than
// ping_after_idle is pinged before it is handed out, and a broken one (it saw
// CR_SERVER_GONE_ERROR / CR_SERVER_LOST) is closed instead of returned, so after a database
// restart the pool refills itself with fresh connections.
//
// Read() and Transact() also retry once on a fresh connection when the first attempt lost its
// connection and a retry is safe: always for reads, and for a transaction only if COMMIT had not
// been sent (a transaction that lost its connection before COMMIT was rolled back by the server).
// Write() (one autocommitted statement) is never retried: the statement may have committed.
// When a write may have been applied without an answer (Write's statement, or a transaction's
// COMMIT, lost its connection), the error is OutcomeUnknown.
//
// Thread safety: all methods are safe from any thread. A Lease is owned by one thread.
#ifndef INSTAFACE_GRAPHDB_POOL_H_
#define INSTAFACE_GRAPHDB_POOL_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/connection_string.h"

namespace instaface::graphdb {

struct PoolOptions {
  size_t max_connections = 8;
  std::chrono::milliseconds acquire_timeout{5000};
  std::chrono::milliseconds ping_after_idle{2000};
};

struct PoolStats {
  size_t open = 0;  // connections that exist now (idle + leased)
  size_t idle = 0;
  uint64_t opened_total = 0;   // connections ever opened
  uint64_t dropped_total = 0;  // connections closed because they were broken or failed a ping
  uint64_t retries_total = 0;  // operations retried after a lost connection
};

class Pool {
 public:
  // An exclusively held connection, returned to the pool (or closed if broken) on destruction.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    friend class Pool;
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  explicit Pool(ConnectionConfig config, PoolOptions options = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  common::StatusOr<Lease> Acquire();

  // Runs `body` on a pooled connection; retried once on a lost connection.
  common::Status Read(const std::function<common::Status(Connection&)>& body);
  // BEGIN, body, COMMIT on one pooled connection; ROLLBACK when body fails. Retried once on a
  // lost connection if COMMIT was not sent. body must not commit or roll back itself.
  common::Status Transact(const std::function<common::Status(Connection&)>& body);
  // Runs body, which executes ONE write statement that commits itself (autocommit), on a pooled
  // connection: a transaction in one round trip. Not retried on a lost connection, since the
  // statement may have committed.
  common::Status Write(const std::function<common::Status(Connection&)>& body);

  const ConnectionConfig& config() const { return config_; }
  PoolStats stats() const;

 private:
  void Return(std::unique_ptr<Connection> conn);
  enum class Mode { kRead, kTransaction, kWrite };
  common::Status RunOnce(const std::function<common::Status(Connection&)>& body, Mode mode,
                         bool* may_retry);
  common::Status RunWithRetry(const std::function<common::Status(Connection&)>& body, Mode mode);

  const ConnectionConfig config_;
  PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  size_t open_ = 0;                                // guarded by mu_
  PoolStats counters_;                             // guarded by mu_ (open/idle unused)
};

}  // namespace instaface::graphdb

#endif  // INSTAFACE_GRAPHDB_POOL_H_

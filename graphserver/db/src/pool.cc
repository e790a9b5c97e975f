#include "instaface/graphdb/pool.h"

namespace instaface::graphdb {

using common::Status;
using common::StatusCode;
using common::StatusOr;

Pool::Lease::Lease(Lease&& other) noexcept : pool_(other.pool_), conn_(std::move(other.conn_)) {}

Pool::Lease& Pool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    if (conn_) pool_->Return(std::move(conn_));
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
  }
  return *this;
}

Pool::Lease::~Lease() {
  if (conn_) pool_->Return(std::move(conn_));
}

Pool::Pool(ConnectionConfig config, PoolOptions options)
    : config_(std::move(config)), options_(options) {
  if (options_.max_connections == 0) options_.max_connections = 1;
}

Pool::~Pool() = default;

StatusOr<Pool::Lease> Pool::Acquire() {
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  while (true) {
    std::unique_ptr<Connection> conn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (idle_.empty() && open_ >= options_.max_connections) {
        if (returned_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_ >= options_.max_connections) {
          return Status::Unavailable("all " + std::to_string(options_.max_connections) +
                                     " database connections are busy");
        }
      }
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      } else {
        ++open_;  // reserve the slot before connecting outside the lock
      }
    }

    if (conn) {
      // A connection idle for a while may have been cut by a server restart; find out now
      // rather than in the middle of the caller's transaction.
      if (std::chrono::steady_clock::now() - conn->last_used() < options_.ping_after_idle ||
          conn->Ping()) {
        return Lease(this, std::move(conn));
      }
      conn.reset();
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      ++counters_.dropped_total;
      returned_.notify_one();
      continue;  // try the next idle one, or open a new one
    }

    StatusOr<std::unique_ptr<Connection>> opened = Connection::Open(config_);
    std::lock_guard<std::mutex> lock(mu_);
    if (!opened.ok()) {
      --open_;
      returned_.notify_one();
      return opened.status();
    }
    ++counters_.opened_total;
    return Lease(this, std::move(opened).value());
  }
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn->broken()) {
    conn.reset();
    --open_;
    ++counters_.dropped_total;
    // One lost connection usually means the server restarted: the idle ones are dead too, and
    // handing them out would spend the caller's single retry on another dead connection.
    counters_.dropped_total += idle_.size();
    open_ -= idle_.size();
    idle_.clear();
    returned_.notify_all();
  } else {
    idle_.push_back(std::move(conn));
  }
  returned_.notify_one();
}

Status Pool::RunOnce(const std::function<Status(Connection&)>& body, Mode mode, bool* may_retry) {
  *may_retry = false;
  StatusOr<Lease> lease = Acquire();
  if (!lease.ok()) return lease.status();
  Connection& conn = **lease;
  Status status;
  if (mode != Mode::kTransaction) {
    status = body(conn);
  } else {
    status = conn.Begin();
    if (status.ok()) status = body(conn);
    if (status.ok()) {
      status = conn.Commit();
    } else if (!conn.broken()) {
      // The body's error is the answer; a failed ROLLBACK only means the connection is bad,
      // and the server rolls back when it closes.
      conn.Rollback();
    }
  }
  if (!status.ok() && conn.broken()) {
    *may_retry = mode == Mode::kRead || (mode == Mode::kTransaction && !conn.commit_sent());
    // A write statement or a COMMIT went out and no answer came back: the server may have
    // applied it. Saying so lets the caller tell this from a refusal, and retry only what a
    // retry cannot apply twice.
    if (mode == Mode::kWrite || (mode == Mode::kTransaction && conn.commit_sent())) {
      status = Status(StatusCode::kOutcomeUnknown,
                      "the database connection was lost after the write was sent, so it may or "
                      "may not have been applied: " +
                          status.message(),
                      status.cause());
    }
  }
  return status;
}

Status Pool::RunWithRetry(const std::function<Status(Connection&)>& body, Mode mode) {
  bool may_retry = false;
  Status status = RunOnce(body, mode, &may_retry);
  if (may_retry) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++counters_.retries_total;
    }
    status = RunOnce(body, mode, &may_retry);
  }
  return status;
}

Status Pool::Read(const std::function<Status(Connection&)>& body) {
  return RunWithRetry(body, Mode::kRead);
}

Status Pool::Transact(const std::function<Status(Connection&)>& body) {
  return RunWithRetry(body, Mode::kTransaction);
}

Status Pool::Write(const std::function<Status(Connection&)>& body) {
  return RunWithRetry(body, Mode::kWrite);
}

PoolStats Pool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PoolStats s = counters_;
  s.open = open_;
  s.idle = idle_.size();
  return s;
}

}  // namespace instaface::graphdb

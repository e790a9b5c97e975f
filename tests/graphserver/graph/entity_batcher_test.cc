// EntityBatcher (the leader's group commit for entity creates) against a real, private MariaDB
// (one per test binary); each test has a database of its own.
//
// Interleaved auto-increment mode (innodb_autoinc_lock_mode = 2), where the batcher falls back to
// row-by-row inserts, is not covered: the variable is read-only at runtime, and this server runs
// in the default consecutive mode (ServerHandsOutConsecutiveIds checks that the multi-row path is
// the one under test).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/graph/entity_batcher.h"
#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace instaface::graph {
namespace {

using common::Status;
using common::StatusCode;
using common::StatusOr;
using graphdb::Connection;
using ::instaface::testing::MariaDbEnvironment;
using json = nlohmann::json;

::testing::Environment* const kMariaDb =
    ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

// A liveness deadline only: a create that has no answer by then is lost or deadlocked.
constexpr std::chrono::seconds kAnswerDeadline{60};

struct StoredEntity {
  std::string type;
  json attributes;
};

// What one create asked for, so that its id's row can be checked against it.
struct Request {
  std::string type;
  json attributes;
};

// Collects the answers of n creates: how often each one's callback ran, and its last outcome.
class Answers {
 public:
  explicit Answers(size_t n) : calls_(n, 0), results_(n, Status::Internal("no answer yet")) {}

  EntityBatcher::Done For(size_t k) {
    return [this, k](StatusOr<int64_t> r) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[k];
      results_[k] = std::move(r);
      ++answered_;
      all_.notify_all();
    };
  }

  bool WaitForAll(std::chrono::seconds deadline = kAnswerDeadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return all_.wait_for(lock, deadline, [&] { return answered_ >= calls_.size(); });
  }

  size_t size() const { return calls_.size(); }
  int calls(size_t k) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[k];
  }
  StatusOr<int64_t> result(size_t k) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_[k];
  }

 private:
  std::mutex mu_;
  std::condition_variable all_;
  std::vector<int> calls_;
  std::vector<StatusOr<int64_t>> results_;
  size_t answered_ = 0;
};

// Splits answered creates into the written ones (with their ids) and the refused ones, which
// must each have been answered once, with Unavailable. Returns how many were refused.
size_t SplitWrittenFromRefused(Answers& answers, const std::vector<Request>& requests,
                               std::vector<Request>* written, std::vector<int64_t>* ids) {
  size_t unavailable = 0;
  for (size_t k = 0; k < requests.size(); ++k) {
    EXPECT_EQ(answers.calls(k), 1) << "create " << k;
    StatusOr<int64_t> r = answers.result(k);
    if (r.ok()) {
      written->push_back(requests[k]);
      ids->push_back(*r);
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << "create " << k;
      ++unavailable;
    }
  }
  return unavailable;
}

// Holds the fence row's exclusive lock in an open transaction on its own connection, so every
// fenced write waits behind it: creates pile up in the batcher's queue until Release().
class FenceLock {
 public:
  explicit FenceLock(graphdb::Pool& pool) {
    std::future<Status> is_locked = locked_.get_future();
    std::shared_future<void> released = release_.get_future().share();
    holder_ = std::thread([&pool, released, this] {
      bool told = false;
      Status s = pool.Transact([&](Connection& conn) -> Status {
        auto stmt = conn.Prepare("SELECT term FROM fence WHERE id = 1 FOR UPDATE");
        if (!stmt.ok()) return stmt.status();
        auto rows = (*stmt)->Query({});
        if (!rows.ok()) return rows.status();
        if (!told) locked_.set_value(Status());
        told = true;
        released.wait();
        return Status();
      });
      if (!told) locked_.set_value(s);
    });
    Status s = is_locked.get();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~FenceLock() { Release(); }
  void Release() {
    if (!holder_.joinable()) return;
    release_.set_value();
    holder_.join();
  }

 private:
  std::promise<Status> locked_;
  std::promise<void> release_;
  std::thread holder_;
};

class EntityBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = graphdb::ParseConnectionString(
        MariaDbEnvironment::server()->ConnectionString(DatabaseForThisTest()));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    Status s = graphdb::EnsureSchema(*config);
    ASSERT_TRUE(s.ok()) << s.ToString();
    pool_ = std::make_shared<graphdb::Pool>(*config);
  }

  // The test's name made into a database name. Names longer than MariaDB's 64 characters keep
  // their end, where parameterized tests differ.
  static std::string DatabaseForThisTest() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name) {
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!plain) c = '_';
    }
    constexpr size_t kKeep = 61;  // 64 with the prefix
    if (name.size() > kKeep) name = name.substr(name.size() - kKeep);
    return "eb_" + name;
  }

  void RaiseFenceTo(uint64_t term) {
    Status s = graphdb::RunFencedTransaction(*pool_, term, [](Connection&) { return Status(); });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  uint64_t Fence() {
    StatusOr<uint64_t> term = graphdb::ReadFenceTerm(*pool_);
    EXPECT_TRUE(term.ok()) << term.status().ToString();
    return term.ok() ? *term : UINT64_MAX;
  }

  std::map<int64_t, StoredEntity> Entities() {
    std::map<int64_t, StoredEntity> out;
    Status s = pool_->Read([&](Connection& conn) -> Status {
      auto stmt = conn.Prepare("SELECT id, type, attributes FROM entities");
      if (!stmt.ok()) return stmt.status();
      auto rows = (*stmt)->Query({});
      if (!rows.ok()) return rows.status();
      for (const graphdb::Row& row : *rows) {
        out[std::get<int64_t>(row[0])] = {std::get<std::string>(row[1]),
                                          json::parse(std::get<std::string>(row[2]))};
      }
      return Status();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  // Every successful create's id is distinct and its row holds exactly what that caller asked
  // for; the table holds nothing else. A swap of ids between two callers fails here.
  void ExpectRowsMatch(const std::vector<Request>& requests, const std::vector<int64_t>& ids) {
    ASSERT_EQ(requests.size(), ids.size());
    std::map<int64_t, StoredEntity> stored = Entities();
    EXPECT_EQ(stored.size(), ids.size());
    std::set<int64_t> distinct(ids.begin(), ids.end());
    EXPECT_EQ(distinct.size(), ids.size()) << "two creates were given the same id";
    for (size_t k = 0; k < ids.size(); ++k) {
      auto it = stored.find(ids[k]);
      ASSERT_NE(it, stored.end()) << "create " << k << " got id " << ids[k] << ", which has no row";
      EXPECT_EQ(it->second.type, requests[k].type) << "create " << k << ", id " << ids[k];
      EXPECT_EQ(it->second.attributes, requests[k].attributes)
          << "create " << k << ", id " << ids[k];
    }
  }

  // True once a batch's INSERT is in this test's database, waiting (behind a FenceLock).
  bool WaitForAnInsertWaitingOnTheFence() {
    const std::string sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '" +
                            DatabaseForThisTest() + "' AND INFO LIKE 'INSERT INTO entities%'";
    const auto deadline = std::chrono::steady_clock::now() + kAnswerDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string count;
      if (MariaDbEnvironment::server()->Execute(sql, &count) && count.rfind("0", 0) != 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::shared_ptr<graphdb::Pool> pool_;
};

Request RequestFor(int caller, int i) {
  // Attributes of varying length, so rows of one statement differ in more than a counter.
  return {"w" + std::to_string(caller),
          json{{"caller", caller}, {"i", i}, {"pad", std::string((caller * 7 + i) % 23, 'x')}}};
}

TEST_F(EntityBatcherTest, ServerHandsOutConsecutiveIds) {
  std::string mode;
  ASSERT_TRUE(MariaDbEnvironment::server()->Execute(
      "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment", &mode));
  // Modes 0 and 1 with an increment of 1: the batcher uses multi-row statements.
  EXPECT_TRUE(mode.rfind("1\t1", 0) == 0 || mode.rfind("0\t1", 0) == 0) << mode;
}

struct Concurrency {
  int max_in_flight;
  std::chrono::microseconds linger;
};

void PrintTo(const Concurrency& c, std::ostream* os) {
  *os << "max_in_flight " << c.max_in_flight << ", linger " << c.linger.count() << "us";
}

class ConcurrentCreatesTest : public EntityBatcherTest,
                              public ::testing::WithParamInterface<Concurrency> {};

TEST_P(ConcurrentCreatesTest, AllSucceedWithDistinctIdsHoldingTheirOwnRows) {
  constexpr int kCallers = 8;
  constexpr int kPerCaller = 50;
  EntityBatcherOptions options;
  options.max_in_flight = GetParam().max_in_flight;
  options.linger = GetParam().linger;
  EntityBatcher batcher(pool_, options);

  std::vector<Request> requests(kCallers * kPerCaller);
  std::vector<int64_t> ids(requests.size(), -1);
  std::vector<std::string> errors(requests.size());
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < kPerCaller; ++i) {
        const size_t k = static_cast<size_t>(c * kPerCaller + i);
        requests[k] = RequestFor(c, i);
        StatusOr<int64_t> r = batcher.Create(requests[k].type, requests[k].attributes, 3);
        if (r.ok()) {
          ids[k] = *r;
        } else {
          errors[k] = r.status().ToString();
        }
      }
    });
  }
  for (std::thread& t : callers) t.join();
  // The counters are updated after the callbacks run; Stop() joins the flushers first.
  batcher.Stop();

  for (size_t k = 0; k < errors.size(); ++k) ASSERT_EQ(errors[k], "") << "create " << k;
  ExpectRowsMatch(requests, ids);
  EXPECT_EQ(batcher.creates(), requests.size());
  EXPECT_GE(batcher.transactions(), 1u);
  EXPECT_LE(batcher.transactions(), batcher.creates());
  RecordProperty("transactions", static_cast<int>(batcher.transactions()));
  EXPECT_EQ(Fence(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Flushers, ConcurrentCreatesTest,
                         ::testing::Values(Concurrency{1, std::chrono::microseconds(0)},
                                           Concurrency{3, std::chrono::microseconds(0)},
                                           Concurrency{3, std::chrono::microseconds(2000)}),
                         [](const ::testing::TestParamInfo<Concurrency>& info) {
                           return "InFlight" + std::to_string(info.param.max_in_flight) + "Linger" +
                                  std::to_string(info.param.linger.count()) + "us";
                         });

// Creates queued behind the fence's lock all go out in the next batch (at most two batches with
// one flusher and a max_batch above the count), which spans several 32-row statements: ids must
// still map to the right rows across statement boundaries.
TEST_F(EntityBatcherTest, QueuedCreatesShareOneBatchAcrossSeveralStatements) {
  RaiseFenceTo(2);
  constexpr size_t kCreates = 100;
  Answers answers(kCreates);
  std::vector<Request> requests;
  auto batcher = std::make_unique<EntityBatcher>(pool_);
  {
    FenceLock lock(*pool_);
    for (size_t k = 0; k < kCreates; ++k) {
      requests.push_back(RequestFor(static_cast<int>(k % 10), static_cast<int>(k)));
      batcher->CreateAsync(requests[k].type, requests[k].attributes, 2, answers.For(k));
    }
  }
  ASSERT_TRUE(answers.WaitForAll());
  batcher->Stop();

  std::vector<int64_t> ids;
  for (size_t k = 0; k < kCreates; ++k) {
    StatusOr<int64_t> r = answers.result(k);
    ASSERT_TRUE(r.ok()) << "create " << k << ": " << r.status().ToString();
    ids.push_back(*r);
  }
  ExpectRowsMatch(requests, ids);
  EXPECT_EQ(batcher->creates(), kCreates);
  EXPECT_LE(batcher->transactions(), 2u);
}

TEST_F(EntityBatcherTest, CreateAsyncCallsBackExactlyOncePerCreateWithItsId) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 60;
  Answers answers(kThreads * kPerThread);
  std::vector<Request> requests(answers.size());
  EntityBatcherOptions options;
  options.max_in_flight = 2;
  auto batcher = std::make_unique<EntityBatcher>(pool_, options);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const size_t k = static_cast<size_t>(t * kPerThread + i);
        requests[k] = RequestFor(t, i);
        batcher->CreateAsync(requests[k].type, requests[k].attributes, 1, answers.For(k));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(answers.WaitForAll());
  batcher->Stop();  // no callback may run after this: a second call would show below

  std::vector<int64_t> ids;
  for (size_t k = 0; k < answers.size(); ++k) {
    EXPECT_EQ(answers.calls(k), 1) << "create " << k;
    StatusOr<int64_t> r = answers.result(k);
    ASSERT_TRUE(r.ok()) << "create " << k << ": " << r.status().ToString();
    ids.push_back(*r);
  }
  ExpectRowsMatch(requests, ids);
  EXPECT_EQ(batcher->creates(), answers.size());
}

TEST_F(EntityBatcherTest, InvalidInputIsRefusedAtOnceAndWritesNothing) {
  const std::vector<std::pair<std::string, json>> invalid = {
      {"much_too_long_type", json::object()}, {"", json::object()}, {"bad type", json::object()},
      {"user", json::array({1, 2})},          {"user", json(42)},   {"user", json("text")},
  };
  Answers answers(invalid.size());
  EntityBatcher batcher(pool_);
  for (size_t k = 0; k < invalid.size(); ++k) {
    batcher.CreateAsync(invalid[k].first, invalid[k].second, 1, answers.For(k));
    // Refused on the caller's thread, before CreateAsync returns.
    EXPECT_EQ(answers.calls(k), 1) << "case " << k;
    EXPECT_EQ(answers.result(k).status().code(), StatusCode::kInvalidArgument)
        << "case " << k << ": " << answers.result(k).status().ToString();
  }
  StatusOr<int64_t> blocking = batcher.Create("much_too_long_type", json::object(), 1);
  EXPECT_EQ(blocking.status().code(), StatusCode::kInvalidArgument);
  batcher.Stop();

  for (size_t k = 0; k < invalid.size(); ++k) EXPECT_EQ(answers.calls(k), 1) << "case " << k;
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(batcher.creates(), 0u);
  EXPECT_EQ(Fence(), 0u);  // nothing reached the database, not even a raise
}

TEST_F(EntityBatcherTest, NullAttributesAreStoredAsAnEmptyObject) {
  EntityBatcher batcher(pool_);
  StatusOr<int64_t> r = batcher.Create("user", json(nullptr), 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectRowsMatch({{"user", json::object()}}, {*r});
}

TEST_F(EntityBatcherTest, OlderTermThanTheFenceIsFenceLostAndNewerRaisesIt) {
  RaiseFenceTo(9);
  EntityBatcher batcher(pool_);

  StatusOr<int64_t> stale = batcher.Create("user", json{{"from", "old leader"}}, 5);
  EXPECT_EQ(stale.status().code(), StatusCode::kFenceLost) << stale.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 9u);

  StatusOr<int64_t> fresh = batcher.Create("user", json{{"from", "new leader"}}, 12);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(Fence(), 12u);
  ExpectRowsMatch({{"user", json{{"from", "new leader"}}}}, {*fresh});

  // The leader of term 9 is now fenced out too.
  StatusOr<int64_t> nine = batcher.Create("user", json{{"from", "term 9"}}, 9);
  EXPECT_EQ(nine.status().code(), StatusCode::kFenceLost) << nine.status().ToString();
  EXPECT_EQ(Entities().size(), 1u);
}

TEST_F(EntityBatcherTest, FenceRaisedByAnUpdateRefusesTheOldTerm) {
  EntityBatcher batcher(pool_);
  ASSERT_TRUE(batcher.Create("user", json::object(), 5).ok());
  ASSERT_EQ(Fence(), 5u);
  ASSERT_TRUE(MariaDbEnvironment::server()->Execute("UPDATE " + DatabaseForThisTest() +
                                                    ".fence SET term = 6 WHERE id = 1"));
  StatusOr<int64_t> r = batcher.Create("user", json{{"late", true}}, 5);
  EXPECT_EQ(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_EQ(Entities().size(), 1u);
  EXPECT_EQ(Fence(), 6u);
}

// Creates of two terms queued together: each term's batch gets its own outcome, so the stale
// term's creates fail and the new term's are written, none of them mixed up.
TEST_F(EntityBatcherTest, CreatesOfDifferentTermsQueuedTogetherGetTheirOwnOutcome) {
  RaiseFenceTo(9);
  constexpr size_t kCreates = 80;
  Answers answers(kCreates);
  std::vector<Request> requests;
  std::vector<uint64_t> terms;
  auto batcher = std::make_unique<EntityBatcher>(pool_);
  {
    FenceLock lock(*pool_);
    for (size_t k = 0; k < kCreates; ++k) {
      requests.push_back(RequestFor(static_cast<int>(k % 2), static_cast<int>(k)));
      terms.push_back(k % 2 == 0 ? 5 : 12);
      batcher->CreateAsync(requests[k].type, requests[k].attributes, terms[k], answers.For(k));
    }
  }
  ASSERT_TRUE(answers.WaitForAll());
  batcher->Stop();

  std::vector<Request> written;
  std::vector<int64_t> ids;
  for (size_t k = 0; k < kCreates; ++k) {
    StatusOr<int64_t> r = answers.result(k);
    if (terms[k] == 5) {
      EXPECT_EQ(r.status().code(), StatusCode::kFenceLost) << "create " << k;
    } else {
      ASSERT_TRUE(r.ok()) << "create " << k << ": " << r.status().ToString();
      written.push_back(requests[k]);
      ids.push_back(*r);
    }
  }
  ExpectRowsMatch(written, ids);
  EXPECT_EQ(Fence(), 12u);
}

TEST_F(EntityBatcherTest, CreatesAfterStopAreUnavailableAtOnce) {
  EntityBatcher batcher(pool_);
  batcher.Stop();
  batcher.Stop();  // idempotent

  StatusOr<int64_t> r = batcher.Create("user", json::object(), 1);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  Answers answers(1);
  batcher.CreateAsync("user", json::object(), 1, answers.For(0));
  EXPECT_EQ(answers.calls(0), 1);  // answered on the caller's thread
  EXPECT_EQ(answers.result(0).status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(batcher.creates(), 0u);
}

// Stop() while a batch is in flight (held behind the fence's lock) and more creates are queued:
// the batch in flight is finished and committed, every queued create gets Unavailable.
TEST_F(EntityBatcherTest, StopFinishesTheBatchInFlightAndRefusesTheQueue) {
  RaiseFenceTo(4);
  constexpr size_t kCreates = 120;
  constexpr size_t kMaxBatch = 4;
  Answers answers(kCreates);
  std::vector<Request> requests;
  EntityBatcherOptions options;
  options.max_batch = kMaxBatch;
  EntityBatcher batcher(pool_, options);
  std::thread stopper;
  bool in_flight = false;
  bool stop_began = false;
  {
    FenceLock lock(*pool_);
    for (size_t k = 0; k < kCreates; ++k) {
      requests.push_back(RequestFor(static_cast<int>(k % 5), static_cast<int>(k)));
      batcher.CreateAsync(requests[k].type, requests[k].attributes, 4, answers.For(k));
    }
    in_flight = WaitForAnInsertWaitingOnTheFence();
    stopper = std::thread([&] { batcher.Stop(); });
    // Once a probe is refused on this thread, Stop() has begun; the flusher is still held by
    // the lock. (Probes queued before that are answered by Stop() on its own thread.)
    const std::thread::id here = std::this_thread::get_id();
    const auto deadline = std::chrono::steady_clock::now() + kAnswerDeadline;
    while (!stop_began && std::chrono::steady_clock::now() < deadline) {
      auto refused_here = std::make_shared<std::atomic<bool>>(false);
      batcher.CreateAsync("probe", json::object(), 4, [refused_here, here](StatusOr<int64_t> r) {
        if (std::this_thread::get_id() == here && r.status().code() == StatusCode::kUnavailable) {
          refused_here->store(true);
        }
      });
      stop_began = refused_here->load();
      std::this_thread::yield();
    }
  }
  stopper.join();
  ASSERT_TRUE(in_flight) << "the flusher's first batch never reached the database";
  ASSERT_TRUE(stop_began) << "Stop() never began";
  ASSERT_TRUE(answers.WaitForAll(std::chrono::seconds(0)));

  std::vector<Request> written;
  std::vector<int64_t> ids;
  size_t unavailable = SplitWrittenFromRefused(answers, requests, &written, &ids);
  // The flusher took one batch (1 to max_batch creates) before the lock was released.
  EXPECT_GE(written.size(), 1u);
  EXPECT_LE(written.size(), kMaxBatch);
  EXPECT_EQ(unavailable, kCreates - written.size());
  ExpectRowsMatch(written, ids);
}

// The destructor with creates still queued: every callback runs exactly once, and the ones
// that report an id are exactly the rows in the table. (How many were written is up to timing.)
TEST_F(EntityBatcherTest, DestroyedWithCreatesQueuedAnswersEachOnce) {
  constexpr size_t kCreates = 300;
  Answers answers(kCreates);
  std::vector<Request> requests;
  {
    EntityBatcherOptions options;
    options.max_batch = 4;
    options.max_in_flight = 2;
    EntityBatcher batcher(pool_, options);
    for (size_t k = 0; k < kCreates; ++k) {
      requests.push_back(RequestFor(static_cast<int>(k % 8), static_cast<int>(k)));
      batcher.CreateAsync(requests[k].type, requests[k].attributes, 1, answers.For(k));
    }
  }
  ASSERT_TRUE(answers.WaitForAll(std::chrono::seconds(0))) << "a create was never answered";

  std::vector<Request> written;
  std::vector<int64_t> ids;
  SplitWrittenFromRefused(answers, requests, &written, &ids);
  RecordProperty("written", static_cast<int>(written.size()));
  ExpectRowsMatch(written, ids);
}

// After a burst the flusher expects big batches; one caller creating one at a time must still
// get every create through (the linger ends at its deadline, and the expected size follows
// the load down), not deadlock or drop any.
TEST_F(EntityBatcherTest, LingerWithOneSequentialCallerCompletesEveryCreate) {
  EntityBatcherOptions options;
  options.linger = std::chrono::microseconds(2000);
  options.max_batch = 32;
  EntityBatcher batcher(pool_, options);

  std::vector<Request> requests;
  std::vector<int64_t> ids;
  constexpr size_t kBurst = 64;
  Answers burst(kBurst);
  {
    FenceLock lock(*pool_);  // lets the burst pile up, so the next batch is a big one
    for (size_t k = 0; k < kBurst; ++k) {
      requests.push_back(RequestFor(0, static_cast<int>(k)));
      batcher.CreateAsync(requests[k].type, requests[k].attributes, 1, burst.For(k));
    }
  }
  ASSERT_TRUE(burst.WaitForAll());
  for (size_t k = 0; k < kBurst; ++k) {
    StatusOr<int64_t> r = burst.result(k);
    ASSERT_TRUE(r.ok()) << "burst create " << k << ": " << r.status().ToString();
    ids.push_back(*r);
  }

  constexpr int kSequential = 40;
  for (int i = 0; i < kSequential; ++i) {
    Request request = RequestFor(1, i);
    // Asynchronous with a deadline, so a lost create fails the test instead of hanging it.
    auto answer = std::make_shared<Answers>(1);
    batcher.CreateAsync(request.type, request.attributes, 1,
                        [answer](StatusOr<int64_t> r) { answer->For(0)(std::move(r)); });
    ASSERT_TRUE(answer->WaitForAll()) << "sequential create " << i << " was never answered";
    StatusOr<int64_t> r = answer->result(0);
    ASSERT_TRUE(r.ok()) << "sequential create " << i << ": " << r.status().ToString();
    requests.push_back(request);
    ids.push_back(*r);
  }
  batcher.Stop();
  ExpectRowsMatch(requests, ids);
  EXPECT_EQ(batcher.creates(), requests.size());
}

}  // namespace
}  // namespace instaface::graph

// graphdb::RunFencedInsert against a real, private MariaDB (one per test binary): the
// one-round-trip fenced write the leader's creates go through. Each test has a database of its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace instaface::graphdb {
namespace {

using common::Status;
using common::StatusCode;
using common::StatusOr;
using ::instaface::testing::MariaDbEnvironment;

::testing::Environment* const kMariaDb =
    ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

// The shape of the graph's entity insert (graph::EntityInsert), spelled out here so this suite
// needs only the database layer.
const FencedInsert kEntityInsert{"entities (type, created, attributes)", "(?, UTC_TIMESTAMP(6), ?)",
                                 2};

struct EntityRow {
  int64_t id = 0;
  std::string type;
  nlohmann::json attributes;
};

class FencedInsertTest : public ::testing::Test {
 protected:
  // One database per test, named after it ('/' of a parameterized name made an underscore).
  static std::string DatabaseName() {
    std::string name =
        std::string("fi_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    return name;
  }

  static ConnectionConfig Config() {
    auto config =
        ParseConnectionString(MariaDbEnvironment::server()->ConnectionString(DatabaseName()));
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    return config.ok() ? *config : ConnectionConfig{};
  }

  void SetUp() override {
    Status s = EnsureSchema(Config());
    ASSERT_TRUE(s.ok()) << s.ToString();
    pool_ = std::make_unique<Pool>(Config());
  }

  // Puts the server's global settings back (the server is shared by every test of the binary).
  void TearDown() override {
    for (auto it = saved_globals_.rbegin(); it != saved_globals_.rend(); ++it) {
      Status s = SetGlobal(it->first, it->second);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  // Sets a server global until the test ends, and returns a pool whose connections (opened from
  // now on) start from it. `name` is fixed text from the test; the value is bound.
  std::unique_ptr<Pool> PoolAfterSettingGlobal(const std::string& name, const std::string& value) {
    std::string old;
    Status s = pool_->Read([&](Connection& conn) -> Status {
      auto stmt = conn.Prepare("SELECT @@GLOBAL." + name);
      if (!stmt.ok()) return stmt.status();
      auto rows = (*stmt)->Query({});
      if (!rows.ok()) return rows.status();
      old = std::get<std::string>((*rows)[0][0]);
      return Status();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (s.ok()) saved_globals_.emplace_back(name, old);
    s = SetGlobal(name, value);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::make_unique<Pool>(Config());
  }

  // Raises the fence the way a leader's first write does, with an empty body.
  void RaiseFenceTo(uint64_t term) {
    Status s = RunFencedTransaction(*pool_, term, [](Connection&) { return Status(); });
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(Fence(), term);
  }

  uint64_t Fence() {
    StatusOr<uint64_t> term = ReadFenceTerm(*pool_);
    EXPECT_TRUE(term.ok()) << term.status().ToString();
    return term.ok() ? *term : UINT64_MAX;
  }

  std::vector<EntityRow> Entities() {
    std::vector<EntityRow> out;
    Status s = pool_->Read([&](Connection& conn) -> Status {
      auto stmt = conn.Prepare("SELECT id, type, attributes FROM entities ORDER BY id");
      if (!stmt.ok()) return stmt.status();
      auto rows = (*stmt)->Query({});
      if (!rows.ok()) return rows.status();
      for (const Row& row : *rows) {
        EntityRow e;
        e.id = std::get<int64_t>(row[0]);
        e.type = std::get<std::string>(row[1]);
        e.attributes = nlohmann::json::parse(std::get<std::string>(row[2]));
        out.push_back(std::move(e));
      }
      return Status();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::unique_ptr<Pool> pool_;

 private:
  Status SetGlobal(const std::string& name, const std::string& value) {
    return pool_->Write([&](Connection& conn) -> Status {
      auto stmt = conn.Prepare("SET GLOBAL " + name + " = ?");
      if (!stmt.ok()) return stmt.status();
      auto r = (*stmt)->Execute({value});
      return r.ok() ? Status() : r.status();
    });
  }

  std::vector<std::pair<std::string, std::string>> saved_globals_;  // name, value before
};

std::vector<Value> RowsOfParams(int rows, const std::string& tag) {
  std::vector<Value> params;
  for (int k = 0; k < rows; ++k) {
    params.emplace_back("type" + std::to_string(k));
    params.emplace_back(nlohmann::json{{"tag", tag}, {"k", k}}.dump());
  }
  return params;
}

// Row k of the statement must have id insert_id + k and hold the k-th parameters.
void ExpectRowsInParameterOrder(const std::vector<EntityRow>& rows, const ExecResult& result,
                                int count, const std::string& tag) {
  ASSERT_EQ(rows.size(), static_cast<size_t>(count));
  for (int k = 0; k < count; ++k) {
    SCOPED_TRACE("row " + std::to_string(k));
    EXPECT_EQ(rows[k].id, static_cast<int64_t>(result.insert_id) + k);
    EXPECT_EQ(rows[k].type, "type" + std::to_string(k));
    EXPECT_EQ(rows[k].attributes, (nlohmann::json{{"tag", tag}, {"k", k}}));
  }
}

TEST_F(FencedInsertTest, OneRowAtTheCurrentTerm) {
  RaiseFenceTo(4);
  auto r = RunFencedInsert(*pool_, 4, kEntityInsert, RowsOfParams(1, "one"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->affected_rows, 1u);
  EXPECT_GT(r->insert_id, 0u);
  ExpectRowsInParameterOrder(Entities(), *r, 1, "one");
  EXPECT_EQ(Fence(), 4u);
}

TEST_F(FencedInsertTest, SeveralRowsGetConsecutiveIdsInParameterOrder) {
  RaiseFenceTo(4);
  // A row first, so the statement's ids do not start at 1 by accident.
  ASSERT_TRUE(RunFencedInsert(*pool_, 4, kEntityInsert, RowsOfParams(1, "before")).ok());
  std::vector<EntityRow> before = Entities();
  ASSERT_EQ(before.size(), 1u);

  constexpr int kRows = 7;
  auto r = RunFencedInsert(*pool_, 4, kEntityInsert, RowsOfParams(kRows, "many"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->affected_rows, static_cast<uint64_t>(kRows));
  EXPECT_GT(static_cast<int64_t>(r->insert_id), before[0].id);
  std::vector<EntityRow> rows = Entities();
  rows.erase(rows.begin());
  ExpectRowsInParameterOrder(rows, *r, kRows, "many");
}

TEST_F(FencedInsertTest, OlderTermIsFenceLostAndWritesNothing) {
  RaiseFenceTo(9);
  auto r = RunFencedInsert(*pool_, 5, kEntityInsert, RowsOfParams(3, "stale"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 9u);
}

TEST_F(FencedInsertTest, NewerTermRaisesTheFenceAndWritesTheRows) {
  RaiseFenceTo(3);
  constexpr int kRows = 4;
  auto r = RunFencedInsert(*pool_, 8, kEntityInsert, RowsOfParams(kRows, "raise"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->affected_rows, static_cast<uint64_t>(kRows));
  EXPECT_EQ(Fence(), 8u);
  // The redone statement (under the raised fence) keeps the same id guarantee.
  ExpectRowsInParameterOrder(Entities(), *r, kRows, "raise");

  // And the old term is now refused.
  auto stale = RunFencedInsert(*pool_, 3, kEntityInsert, RowsOfParams(1, "stale"));
  EXPECT_EQ(stale.status().code(), StatusCode::kFenceLost) << stale.status().ToString();
  EXPECT_EQ(Entities().size(), static_cast<size_t>(kRows));
}

TEST_F(FencedInsertTest, FirstWriteOnAFreshDatabaseRaisesTheFenceFromZero) {
  ASSERT_EQ(Fence(), 0u);
  auto r = RunFencedInsert(*pool_, 1, kEntityInsert, RowsOfParams(2, "fresh"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Fence(), 1u);
  ExpectRowsInParameterOrder(Entities(), *r, 2, "fresh");
}

TEST_F(FencedInsertTest, ParamsThatAreNotWholeRowsAreInvalid) {
  RaiseFenceTo(2);
  std::vector<Value> params = RowsOfParams(2, "odd");
  params.pop_back();
  auto r = RunFencedInsert(*pool_, 2, kEntityInsert, params);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();

  auto none = RunFencedInsert(*pool_, 2, kEntityInsert, {});
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument) << none.status().ToString();

  FencedInsert no_columns = kEntityInsert;
  no_columns.params_per_row = 0;
  auto zero = RunFencedInsert(*pool_, 2, no_columns, RowsOfParams(1, "zero"));
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument) << zero.status().ToString();

  FencedInsert nothing_to_fence = kEntityInsert;
  nothing_to_fence.row = "('fixed', UTC_TIMESTAMP(6), '{}')";
  auto unfenced = RunFencedInsert(*pool_, 2, nothing_to_fence, RowsOfParams(1, "unfenced"));
  EXPECT_EQ(unfenced.status().code(), StatusCode::kInvalidArgument) << unfenced.status().ToString();

  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 2u);
}

TEST_F(FencedInsertTest, TermBeyondTheColumnRangeIsInvalid) {
  auto r = RunFencedInsert(*pool_, UINT64_MAX, kEntityInsert, RowsOfParams(1, "huge"));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_EQ(Fence(), 0u);
}

std::vector<Value> ParamsWithBadJsonInTheMiddle() {
  std::vector<Value> params = RowsOfParams(3, "bad");
  params[3] = std::string("{not json");  // row 1's attributes
  return params;
}

// The attributes column has a json_valid check. At the current term the one statement fails as
// a whole.
TEST_F(FencedInsertTest, FailingInsertAtTheCurrentTermWritesNothing) {
  RaiseFenceTo(6);
  auto r = RunFencedInsert(*pool_, 6, kEntityInsert, ParamsWithBadJsonInTheMiddle());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 6u);
}

// Under a newer term the fast statement stops at its fence gate, before the bad row; the fence
// is raised on its own (its exclusive lock never waits on a round trip) and the insert is redone
// inside RunFencedTransaction, where its failure writes nothing. The raise stays: the term's
// leader asked for it, and its LeaderFence raises it there anyway.
TEST_F(FencedInsertTest, FailingInsertUnderANewerTermWritesNothingAndKeepsTheRaise) {
  RaiseFenceTo(6);
  auto r = RunFencedInsert(*pool_, 7, kEntityInsert, ParamsWithBadJsonInTheMiddle());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 7u);
  // The older term is refused from now on.
  auto stale = RunFencedInsert(*pool_, 6, kEntityInsert, RowsOfParams(1, "stale"));
  EXPECT_EQ(stale.status().code(), StatusCode::kFenceLost) << stale.status().ToString();

  // The same term still works afterwards with good rows.
  auto good = RunFencedInsert(*pool_, 7, kEntityInsert, RowsOfParams(2, "good"));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(Fence(), 7u);
  ExpectRowsInParameterOrder(Entities(), *good, 2, "good");
}

// The statement's read of the fence row takes a shared lock that it holds to its commit. So a
// raise that has updated the row but not committed makes the insert wait, and the insert then
// sees the new term and writes nothing: an old term's write can never commit after the first
// write of a newer term, under either isolation level.
// A leader cut off after its fence raise and before COMMIT leaves MariaDB a session that holds
// the fence row's exclusive lock and says nothing more. Its idle_transaction_timeout ends it,
// so the next leader's write goes through, and nothing of the cut-off transaction commits.
// (Without it the next write waits out innodb_lock_wait_timeout, 50 s, and fails.)
TEST_F(FencedInsertTest, ALeaderCutOffMidRaiseDoesNotBlockTheNext) {
  RaiseFenceTo(6);
  auto orphan = Connection::Open(Config());
  ASSERT_TRUE(orphan.ok()) << orphan.status().ToString();
  Connection& cut = **orphan;
  ASSERT_TRUE(cut.Begin().ok());
  ASSERT_TRUE(cut.ExecuteFixed("UPDATE fence SET term = 7 WHERE id = 1").ok());
  ASSERT_TRUE(cut.ExecuteFixed("INSERT INTO entities (type, created, attributes) VALUES "
                               "('cut', UTC_TIMESTAMP(6), '{}')")
                  .ok());
  // From here the orphan sends nothing, as a connection whose client is gone.

  StatusOr<ExecResult> next = RunFencedInsert(*pool_, 8, kEntityInsert, RowsOfParams(1, "next"));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(Fence(), 8u);
  const std::vector<EntityRow> rows = Entities();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].attributes["tag"], "next");
  EXPECT_FALSE(cut.Ping()) << "the cut-off session should have been ended by the server";
}

// A new term's first write raises the fence in a statement of its own and only then runs its
// body, under the shared lock. So a first write whose client stalls mid-transaction (cut off
// after its raise, say) holds no exclusive lock: the same term's other writes go through
// meanwhile, and so would the next leader's raise.
TEST_F(FencedInsertTest, ANewTermsFirstWriteHoldsNoExclusiveLockAcrossItsBody) {
  RaiseFenceTo(6);
  std::promise<void> in_body, release;
  std::shared_future<void> released = release.get_future().share();
  std::thread first([&] {
    Status s = RunFencedTransaction(*pool_, 7, [&](Connection&) -> Status {
      in_body.set_value();
      released.wait();  // the client goes quiet with the transaction open
      return Status();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  in_body.get_future().wait();
  EXPECT_EQ(Fence(), 7u);
  std::future<StatusOr<ExecResult>> second = std::async(std::launch::async, [&] {
    return RunFencedInsert(*pool_, 7, kEntityInsert, RowsOfParams(1, "meanwhile"));
  });
  // Well under the server's idle_transaction_timeout (1 s), which would end the first write's
  // transaction and let the second through in any case.
  const bool done = second.wait_for(std::chrono::milliseconds(700)) == std::future_status::ready;
  release.set_value();
  first.join();
  ASSERT_TRUE(done) << "a write of the same term waited for the first write's transaction";
  StatusOr<ExecResult> r = second.get();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

// A NULL of the caller's own for a NOT NULL column fails as the fence's gate does. Under a new
// term the fence is raised and the statement sent again; failing again, it is the statement's
// own error, not FenceLost (which would send a client off to retry a write that cannot work).
TEST_F(FencedInsertTest, ARowsOwnNullUnderANewTermIsItsOwnErrorNotFenceLost) {
  RaiseFenceTo(6);
  std::vector<Value> params = RowsOfParams(2, "null");
  params[3] = Value{};  // the second row's attributes
  auto r = RunFencedInsert(*pool_, 7, kEntityInsert, params);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 7u);
}

// A new leader's raise (LeaderFence) is one autocommitted UPDATE and nothing around it: it
// opens no transaction whose COMMIT a leader cut off at that moment could fail to send, holding
// the row for the next leader to wait on. The server's own counters say what was run.
TEST_F(FencedInsertTest, ALeadersRaiseIsOneStatementInNoTransaction) {
  RaiseFenceTo(6);
  auto counters = [] {
    std::string out, err;
    EXPECT_TRUE(MariaDbEnvironment::server()->Execute(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN "
        "('COM_BEGIN', 'COM_COMMIT', 'COM_ROLLBACK') ORDER BY VARIABLE_NAME",
        &out, &err))
        << err;
    return out;
  };
  const std::string before = counters();
  Status raised = RaiseFence(*pool_, 7);
  ASSERT_TRUE(raised.ok()) << raised.ToString();
  EXPECT_EQ(counters(), before) << "the raise began, committed or rolled back a transaction";
  EXPECT_EQ(Fence(), 7u);
  EXPECT_TRUE(RaiseFence(*pool_, 7).ok()) << "the same term again is fine";
  EXPECT_EQ(RaiseFence(*pool_, 6).code(), StatusCode::kFenceLost);
  EXPECT_EQ(Fence(), 7u);
}

class FencedInsertIsolationTest : public FencedInsertTest,
                                  public ::testing::WithParamInterface<const char*> {};

TEST_P(FencedInsertIsolationTest, WaitsForAnUncommittedRaiseAndIsThenRefused) {
  RaiseFenceTo(5);
  std::unique_ptr<Pool> writer_pool = PoolAfterSettingGlobal("tx_isolation", GetParam());
  std::unique_ptr<Pool> raiser_pool = std::make_unique<Pool>(Config());
  std::promise<void> raised, release;
  std::shared_future<void> released = release.get_future().share();
  std::thread raiser([&] {
    Status s = raiser_pool->Transact([&](Connection& conn) -> Status {
      Status up = conn.ExecuteFixed("UPDATE fence SET term = 6 WHERE id = 1");
      raised.set_value();
      released.wait();
      return up;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  raised.get_future().wait();

  std::atomic<bool> done{false};
  StatusOr<ExecResult> r = Status::Internal("not run");
  std::thread writer([&] {
    r = RunFencedInsert(*writer_pool, 5, kEntityInsert, RowsOfParams(2, "old term"));
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done.load()) << "the old term's insert did not wait for the raise's lock";
  release.set_value();
  writer.join();
  raiser.join();

  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 6u);
}

INSTANTIATE_TEST_SUITE_P(Isolation, FencedInsertIsolationTest,
                         ::testing::Values("REPEATABLE-READ", "READ-COMMITTED"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param).substr(0, 4) == "REPE"
                                      ? std::string("RepeatableRead")
                                      : std::string("ReadCommitted");
                         });

// A stale term's rows stop at the fence gate because its NULL fails a NOT NULL column. In a
// server whose sql_mode is not strict, a multi-row INSERT would turn that NULL into a warning and
// an empty value; every connection sets strict mode for itself, so it cannot.
TEST_F(FencedInsertTest, AServerWithoutStrictModeStillRefusesAnOlderTerm) {
  RaiseFenceTo(9);
  // Its connections start from the server's empty sql_mode.
  std::unique_ptr<Pool> lenient = PoolAfterSettingGlobal("sql_mode", "");
  StatusOr<ExecResult> r = RunFencedInsert(*lenient, 5, kEntityInsert, RowsOfParams(3, "stale"));

  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFenceLost) << r.status().ToString();
  EXPECT_TRUE(Entities().empty());
  EXPECT_EQ(Fence(), 9u);
}

}  // namespace
}  // namespace instaface::graphdb

// The graph database layer against a real, private MariaDB (one per test binary).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "instaface/graphdb/connection.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/mysql_error.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace instaface::graphdb {
namespace {

using common::Status;
using common::StatusCode;
using ::instaface::testing::MariaDbEnvironment;
using ::instaface::testing::MariaDbServer;
using ::instaface::testing::MariaDbServerOptions;

::testing::Environment* const kMariaDb =
    ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

MariaDbServer& Server() { return *MariaDbEnvironment::server(); }

ConnectionConfig ConfigFor(const std::string& database, const std::string& user = "root",
                           const std::string& password = "") {
  auto config = ParseConnectionString(Server().ConnectionString(database, user, password));
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return *config;
}

// A database name of its own for each test, so tests never see each other's rows.
std::string DatabaseForThisTest() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("t_") + info->name();
}

std::string QueryOne(const std::string& sql) {
  std::string out, err;
  EXPECT_TRUE(Server().Execute(sql, &out, &err)) << sql << ": " << err;
  return out;
}

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = DatabaseForThisTest();
    config_ = ConfigFor(database_);
    Status s = EnsureSchema(config_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    pool_ = std::make_unique<Pool>(config_);
  }

  int64_t CountRows(const std::string& table) {
    return std::stoll(QueryOne("SELECT COUNT(*) FROM " + database_ + "." + table));
  }

  std::string database_;
  ConnectionConfig config_;
  std::unique_ptr<Pool> pool_;
};

TEST(SchemaTest, CreatesAnAbsentDatabaseWithItsTablesAndFenceRow) {
  const std::string db = "t_schema_absent";
  ASSERT_EQ(
      QueryOne("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='" + db + "'"),
      "0");
  Status s = EnsureSchema(ConfigFor(db));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(QueryOne("SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM "
                     "information_schema.TABLES WHERE TABLE_SCHEMA='" +
                     db + "'"),
            "associations,entities,fence");
  EXPECT_EQ(QueryOne("SELECT id, term FROM " + db + ".fence"), "1\t0");
  // Association uniqueness is the database's job: the primary key is (type, from_id, to_id).
  EXPECT_EQ(QueryOne("SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM "
                     "information_schema.STATISTICS WHERE TABLE_SCHEMA='" +
                     db + "' AND TABLE_NAME='associations' AND INDEX_NAME='PRIMARY'"),
            "type,from_id,to_id");

  // A second start changes nothing, and keeps a fence a leader has raised.
  QueryOne("UPDATE " + db + ".fence SET term = 9");
  s = EnsureSchema(ConfigFor(db));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(QueryOne("SELECT term FROM " + db + ".fence"), "9");
}

// A primary that logs statements could let a replica diverge (the fenced insert is unsafe for
// statement logging); the graphserver refuses it at start and says what to set. Its own server:
// a binary log needs a server id.
TEST(SchemaTest, RefusesAServerThatLogsStatements) {
  MariaDbServerOptions options;
  options.server_id = 7;
  MariaDbServer logging(options);
  std::string error;
  ASSERT_TRUE(logging.Start(&error)) << error;
  auto config = ParseConnectionString(logging.ConnectionString("t_binlog"));
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(logging.Execute("SET GLOBAL binlog_format = 'STATEMENT'", nullptr, &error)) << error;
  Status s = EnsureSchema(*config);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("binlog_format"), std::string::npos) << s.message();
  ASSERT_TRUE(logging.Execute("SET GLOBAL binlog_format = 'MIXED'", nullptr, &error)) << error;
  s = EnsureSchema(*config);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(SchemaTest, RejectsADatabaseNameThatCannotBeAnIdentifier) {
  Status s = EnsureSchema(ConfigFor("bad`name"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

TEST(SchemaTest, LeastPrivilegeUserRunsOnAnExistingSchema) {
  const std::string db = "t_least_privilege";
  ASSERT_TRUE(EnsureSchema(ConfigFor(db)).ok());
  // The seed's GRANT, for a loopback client.
  QueryOne(
      "CREATE USER IF NOT EXISTS 'bob'@'127.0.0.1' IDENTIFIED BY 'password123';"
      "GRANT SELECT, INSERT, UPDATE, DELETE ON " +
      db + ".* TO 'bob'@'127.0.0.1'; FLUSH PRIVILEGES;");
  const ConnectionConfig bob = ConfigFor(db, "bob", "password123");
  Status s = EnsureSchema(bob);
  ASSERT_TRUE(s.ok()) << s.ToString();

  Pool pool(bob);
  s = RunFencedTransaction(pool, 3, [](Connection& conn) -> Status {
    auto stmt = conn.Prepare(
        "INSERT INTO entities (type, created, attributes) VALUES (?, UTC_TIMESTAMP(6), ?)");
    if (!stmt.ok()) return stmt.status();
    return (*stmt)->Execute({std::string("user"), std::string("{}")}).status();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(QueryOne("SELECT COUNT(*) FROM " + db + ".entities"), "1");
  EXPECT_EQ(QueryOne("SELECT term FROM " + db + ".fence"), "3");
}

TEST(SchemaTest, LeastPrivilegeUserOnAMissingSchemaGetsAPlainError) {
  const std::string db = "t_never_created";
  QueryOne(
      "CREATE USER IF NOT EXISTS 'carol'@'127.0.0.1' IDENTIFIED BY 'pw';"
      "GRANT SELECT, INSERT, UPDATE, DELETE ON " +
      db + ".* TO 'carol'@'127.0.0.1'; FLUSH PRIVILEGES;");
  Status s = EnsureSchema(ConfigFor(db, "carol", "pw"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("database 't_never_created' does not exist and user 'carol' may "
                             "not create it"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(
      QueryOne("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='" + db + "'"),
      "0");
}

TEST(ConnectionTest, WrongPasswordIsAnErrorWithTheServerErrno) {
  auto conn = Connection::Open(ConfigFor("mysql", "root", "wrong"));
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(graphdb::MysqlErrno(conn.status()), 1045u) << conn.status().ToString();
}

TEST(ConnectionTest, NothingListeningIsUnavailable) {
  ConnectionConfig config = ConfigFor("mysql");
  config.port = 1;  // privileged and unused on loopback
  auto conn = Connection::Open(config);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), StatusCode::kUnavailable) << conn.status().ToString();
}

TEST_F(DbTest, PreparedStatementsStoreSqlMetacharactersVerbatim) {
  const std::string evil = "'; DROP TABLE entities; -- \" \\ `x` %_ \xF0\x9F\x98\x80";
  const std::string attributes = nlohmann::json{{"bio", evil}}.dump();
  auto lease = pool_->Acquire();
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  auto insert = (*lease)->Prepare(
      "INSERT INTO entities (type, created, attributes) VALUES (?, UTC_TIMESTAMP(6), ?)");
  ASSERT_TRUE(insert.ok()) << insert.status().ToString();
  auto inserted = (*insert)->Execute({std::string("user"), attributes});
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();
  EXPECT_GT(inserted->insert_id, 0u);

  auto select = (*lease)->Prepare("SELECT attributes FROM entities WHERE id = ?");
  ASSERT_TRUE(select.ok());
  auto rows = (*select)->Query({static_cast<int64_t>(inserted->insert_id)});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(std::get<std::string>((*rows)[0][0]), attributes);
  EXPECT_EQ(CountRows("entities"), 1);  // the table is still there
}

TEST_F(DbTest, ValuesOfEveryKindRoundTrip) {
  auto lease = pool_->Acquire();
  ASSERT_TRUE(lease.ok());
  auto stmt = (*lease)->Prepare("SELECT ?, ?, ?, ?, CAST(? AS SIGNED)");
  ASSERT_TRUE(stmt.ok()) << stmt.status().ToString();
  const std::string long_text(200000, 'z');  // longer than any first guess of a buffer
  auto rows = (*stmt)->Query(
      {std::numeric_limits<int64_t>::max(), 2.5, std::monostate{}, long_text, int64_t{-7}});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  const Row& row = (*rows)[0];
  EXPECT_EQ(std::get<int64_t>(row[0]), std::numeric_limits<int64_t>::max());
  EXPECT_DOUBLE_EQ(std::get<double>(row[1]), 2.5);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(row[2]));
  EXPECT_EQ(std::get<std::string>(row[3]), long_text);
  EXPECT_EQ(std::get<int64_t>(row[4]), -7);
}

TEST_F(DbTest, WrongParameterCountIsAnErrorNotACrash) {
  auto lease = pool_->Acquire();
  ASSERT_TRUE(lease.ok());
  auto stmt = (*lease)->Prepare("SELECT ? + ?");
  ASSERT_TRUE(stmt.ok());
  auto rows = (*stmt)->Query({int64_t{1}});
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), StatusCode::kInternal);
}

TEST_F(DbTest, DuplicateKeyIsConflict) {
  QueryOne("INSERT INTO " + database_ +
           ".entities (id, type, created, attributes) VALUES (1,'u',UTC_TIMESTAMP(6),'{}'),"
           "(2,'u',UTC_TIMESTAMP(6),'{}')");
  auto insert = [&]() {
    return RunFencedTransaction(*pool_, 1, [](Connection& conn) -> Status {
      auto stmt = conn.Prepare(
          "INSERT INTO associations (type, from_id, to_id, created, attributes) "
          "VALUES ('friend', 1, 2, UTC_TIMESTAMP(6), '{}')");
      if (!stmt.ok()) return stmt.status();
      return (*stmt)->Execute({}).status();
    });
  };
  ASSERT_TRUE(insert().ok());
  Status second = insert();
  EXPECT_EQ(second.code(), StatusCode::kConflict) << second.ToString();
  EXPECT_EQ(graphdb::MysqlErrno(second), 1062u);
}

// A write body that inserts one entity and remembers that it ran.
std::function<Status(Connection&)> InsertEntity(std::atomic<int>* ran) {
  return [ran](Connection& conn) -> Status {
    ++*ran;
    auto stmt = conn.Prepare(
        "INSERT INTO entities (type, created, attributes) VALUES ('post', UTC_TIMESTAMP(6), '{}')");
    if (!stmt.ok()) return stmt.status();
    return (*stmt)->Execute({}).status();
  };
}

TEST_F(DbTest, FenceRefusesAnOlderTermAndWritesNothing) {
  std::atomic<int> ran{0};
  ASSERT_TRUE(RunFencedTransaction(*pool_, 5, InsertEntity(&ran)).ok());
  EXPECT_EQ(*ReadFenceTerm(*pool_), 5u);
  EXPECT_EQ(CountRows("entities"), 1);

  Status stale = RunFencedTransaction(*pool_, 4, InsertEntity(&ran));
  EXPECT_EQ(stale.code(), StatusCode::kFenceLost) << stale.ToString();
  EXPECT_EQ(ran.load(), 1) << "the body must not run once the fence is lost";
  EXPECT_EQ(CountRows("entities"), 1);
  EXPECT_EQ(*ReadFenceTerm(*pool_), 5u);

  // The same term again matches the row even though nothing changes (CLIENT_FOUND_ROWS).
  ASSERT_TRUE(RunFencedTransaction(*pool_, 5, InsertEntity(&ran)).ok());
  ASSERT_TRUE(RunFencedTransaction(*pool_, 6, InsertEntity(&ran)).ok());
  EXPECT_EQ(*ReadFenceTerm(*pool_), 6u);
  EXPECT_EQ(CountRows("entities"), 3);
}

TEST_F(DbTest, ATransactionFailingMidwayLeavesNothing) {
  std::atomic<int> ran{0};
  ASSERT_TRUE(RunFencedTransaction(*pool_, 5, InsertEntity(&ran)).ok());
  Status failed = RunFencedTransaction(*pool_, 7, [&](Connection& conn) -> Status {
    if (Status s = InsertEntity(&ran)(conn); !s.ok()) return s;
    // Then a statement the server refuses: the attributes column only takes valid JSON.
    auto bad = conn.Prepare(
        "INSERT INTO entities (type, created, attributes) VALUES ('post', UTC_TIMESTAMP(6), ?)");
    if (!bad.ok()) return bad.status();
    return (*bad)->Execute({std::string("{not json")}).status();
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(CountRows("entities"), 1) << "the first insert of the failed transaction remained";
  // The raise commits on its own, before the body: the fence is at the term that asked.
  EXPECT_EQ(*ReadFenceTerm(*pool_), 7u);
}

// Writes of the term that holds the fence do not wait for each other: both transactions are
// open at once (with an exclusive fence lock the second would wait for the first, which waits
// for the second, and both would time out).
TEST_F(DbTest, WritesOfTheSameTermRunConcurrently) {
  std::atomic<int> ran{0};
  ASSERT_TRUE(RunFencedTransaction(*pool_, 3, InsertEntity(&ran)).ok());
  std::atomic<int> inside{0};
  auto meet = [&](Connection& conn) -> Status {
    ++inside;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (inside.load() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (inside.load() < 2) return Status::Internal("the other transaction never started");
    return InsertEntity(&ran)(conn);
  };
  Status a, b;
  std::thread other([&] { a = RunFencedTransaction(*pool_, 3, meet); });
  b = RunFencedTransaction(*pool_, 3, meet);
  other.join();
  EXPECT_TRUE(a.ok()) << a.ToString();
  EXPECT_TRUE(b.ok()) << b.ToString();
  EXPECT_EQ(CountRows("entities"), 3);
}

// A new term's first write waits for the old term's transaction in flight, then refuses the old
// term from then on: no old-term write commits after the new term's.
TEST_F(DbTest, ANewTermWaitsForTheOldTermsTransactionThenFencesItOut) {
  std::atomic<int> ran{0};
  ASSERT_TRUE(RunFencedTransaction(*pool_, 4, InsertEntity(&ran)).ok());
  std::atomic<bool> old_inside{false}, old_done{false};
  Status old_write;
  std::thread old_leader([&] {
    old_write = RunFencedTransaction(*pool_, 4, [&](Connection& conn) -> Status {
      old_inside = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      Status s = InsertEntity(&ran)(conn);
      old_done = true;
      return s;
    });
  });
  while (!old_inside.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  bool saw_old_done = false;
  int64_t rows_seen = -1;
  Status new_write = RunFencedTransaction(*pool_, 5, [&](Connection& conn) -> Status {
    saw_old_done = old_done.load();
    auto count = conn.Prepare("SELECT COUNT(*) FROM entities");
    if (!count.ok()) return count.status();
    auto rows = (*count)->Query({});
    if (!rows.ok()) return rows.status();
    rows_seen = std::get<int64_t>((*rows)[0][0]);
    return InsertEntity(&ran)(conn);
  });
  old_leader.join();
  ASSERT_TRUE(old_write.ok()) << old_write.ToString();
  ASSERT_TRUE(new_write.ok()) << new_write.ToString();
  EXPECT_TRUE(saw_old_done) << "the new term's write ran while the old term's was in flight";
  EXPECT_EQ(rows_seen, 2) << "the new term's transaction did not see the old term's commit";
  Status stale = RunFencedTransaction(*pool_, 4, InsertEntity(&ran));
  EXPECT_EQ(stale.code(), StatusCode::kFenceLost) << stale.ToString();
  EXPECT_EQ(CountRows("entities"), 3);
  EXPECT_EQ(*ReadFenceTerm(*pool_), 5u);
}

TEST_F(DbTest, PoolWaitsForAFreeConnectionAndThenGivesUp) {
  PoolOptions options;
  options.max_connections = 1;
  options.acquire_timeout = std::chrono::milliseconds(200);
  Pool pool(config_, options);
  auto held = pool.Acquire();
  ASSERT_TRUE(held.ok());
  auto second = pool.Acquire();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  { auto released = std::move(*held); }
  EXPECT_TRUE(pool.Acquire().ok());
  EXPECT_EQ(pool.stats().opened_total, 1u);
}

TEST_F(DbTest, PoolIsSafeUnderConcurrentUse) {
  PoolOptions options;
  options.max_connections = 3;
  Pool pool(config_, options);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::atomic<int> ran{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 20; ++k) {
        if (!RunFencedTransaction(pool, 1, InsertEntity(&ran)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(CountRows("entities"), 120);
  EXPECT_LE(pool.stats().opened_total, 3u);
}

// A write whose connection dies after it was sent may have been applied: the pool says so
// (OutcomeUnknown), so that callers can tell it from a refusal and retry only what is keyed.
TEST_F(DbTest, AWriteCutOffAfterItWasSentHasAnUnknownOutcome) {
  Pool pool(config_);
  Status status = pool.Write([&](Connection& conn) -> Status {
    auto id = conn.Prepare("SELECT CONNECTION_ID()");
    if (!id.ok()) return id.status();
    auto rows = (*id)->Query({});
    if (!rows.ok()) return rows.status();
    const int64_t connection = std::get<int64_t>((*rows)[0][0]);
    std::thread killer([connection] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      Server().Execute("KILL CONNECTION " + std::to_string(connection));
    });
    auto slow = conn.Prepare("SELECT SLEEP(30)");
    Status result = slow.ok() ? (*slow)->Query({}).status() : slow.status();
    killer.join();
    return result;
  });
  EXPECT_EQ(status.code(), StatusCode::kOutcomeUnknown) << status.ToString();
  // A read cut off the same way is retried on a new connection instead.
  bool killed = false;
  Status read = pool.Read([&](Connection& conn) -> Status {
    auto id = conn.Prepare("SELECT CONNECTION_ID()");
    if (!id.ok()) return id.status();
    auto rows = (*id)->Query({});
    if (!rows.ok()) return rows.status();
    if (killed) return Status();
    killed = true;
    Server().Execute("KILL CONNECTION " + std::to_string(std::get<int64_t>((*rows)[0][0])));
    return (*id)->Query({}).status();
  });
  EXPECT_TRUE(read.ok()) << read.ToString();
}

// Runs last in this file's order: it restarts the shared server.
TEST_F(DbTest, PoolReconnectsAfterADatabaseRestart) {
  std::atomic<int> ran{0};
  PoolOptions options;
  options.max_connections = 2;
  Pool pool(config_, options);
  ASSERT_TRUE(RunFencedTransaction(pool, 1, InsertEntity(&ran)).ok());
  ASSERT_TRUE(ReadFenceTerm(pool).ok());

  Server().Stop();
  std::string error;
  ASSERT_TRUE(Server().Start(&error)) << error;

  // The pooled connections died with the old server; the first use finds out, drops them and
  // retries once on a new connection, so neither a read nor a write fails.
  auto term = ReadFenceTerm(pool);
  ASSERT_TRUE(term.ok()) << term.status().ToString();
  EXPECT_EQ(*term, 1u);
  Status write = RunFencedTransaction(pool, 1, InsertEntity(&ran));
  ASSERT_TRUE(write.ok()) << write.ToString();
  EXPECT_EQ(CountRows("entities"), 2);
  EXPECT_GE(pool.stats().dropped_total, 1u);
  EXPECT_GE(pool.stats().opened_total, 2u);
}

TEST_F(DbTest, PoolReportsUnavailableWhileTheDatabaseIsDownAndRecoversAfter) {
  Pool pool(config_);
  ASSERT_TRUE(ReadFenceTerm(pool).ok());
  Server().Stop();
  auto down = ReadFenceTerm(pool);
  EXPECT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
  std::string error;
  ASSERT_TRUE(Server().Start(&error)) << error;
  auto up = ReadFenceTerm(pool);
  EXPECT_TRUE(up.ok()) << up.status().ToString();
}

}  // namespace
}  // namespace instaface::graphdb

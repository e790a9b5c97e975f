// Creates under an Idempotency-Key (graph/entity_writes.h) against a real, private MariaDB (one
// per test binary): a key writes one row however often, through whichever path and term it
// comes; another request under a used key writes nothing; a keyed create rides out a database
// restart. Each test runs with and without group commit, which write through different SQL.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/graph/graph_service.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace instaface::graph {
namespace {

using common::Status;
using common::StatusCode;
using common::StatusOr;
using json = nlohmann::json;
using ::instaface::testing::MariaDbEnvironment;

::testing::Environment* const kMariaDb =
    ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

::instaface::testing::MariaDbServer& Server() { return *MariaDbEnvironment::server(); }

std::string QueryOne(const std::string& sql) {
  std::string out, err;
  EXPECT_TRUE(Server().Execute(sql, &out, &err)) << sql << ": " << err;
  return out;
}

// The parameter: whether entity creates go through group commit.
class IdempotentCreateTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    database_ = "k_" + name.substr(0, 60);
    auto config = graphdb::ParseConnectionString(Server().ConnectionString(database_));
    ASSERT_TRUE(config.ok());
    config_ = *config;
    ASSERT_TRUE(graphdb::EnsureSchema(config_).ok());
    service_ = MakeService();
  }
  void TearDown() override {
    if (service_) service_->StopGroupCommit();
  }

  std::unique_ptr<GraphService> MakeService() {
    GraphOptions options;
    // Long enough for a restart on a loaded machine: the restart test checks that the create
    // is retried, not how fast.
    options.write_retry_window = std::chrono::seconds(30);
    auto service =
        std::make_unique<GraphService>(std::make_shared<graphdb::Pool>(config_), nullptr, options);
    if (GetParam()) {
      EntityBatcherOptions batching;
      batching.max_in_flight = 2;
      service->EnableGroupCommit(batching);
    }
    return service;
  }

  int64_t Count(const std::string& table, const std::string& where = "1") {
    return std::stoll(
        QueryOne("SELECT COUNT(*) FROM " + database_ + "." + table + " WHERE " + where));
  }

  graphdb::ConnectionConfig config_;
  std::string database_;
  std::unique_ptr<GraphService> service_;
};

TEST_P(IdempotentCreateTest, AKeyWritesOneEntityHoweverOftenItIsSent) {
  const json attributes = {{"name", "Ada"}};
  StatusOr<int64_t> first = service_->CreateEntity("user", attributes, 1, "key-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  for (int retry = 0; retry < 3; ++retry) {
    StatusOr<int64_t> again = service_->CreateEntity("user", attributes, 1, "key-1");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(*again, *first);
  }
  // Another key, or none, is another create.
  StatusOr<int64_t> other = service_->CreateEntity("user", attributes, 1, "key-2");
  StatusOr<int64_t> unkeyed = service_->CreateEntity("user", attributes, 1);
  ASSERT_TRUE(other.ok() && unkeyed.ok());
  EXPECT_NE(*other, *first);
  EXPECT_NE(*unkeyed, *first);
  EXPECT_EQ(Count("entities"), 3);
  EXPECT_EQ(QueryOne("SELECT idempotency_key FROM " + database_ +
                     ".entities WHERE id = " + std::to_string(*first)),
            "key-1");
}

TEST_P(IdempotentCreateTest, AUsedKeyWithAnotherRequestIsRefusedAndWritesNothing) {
  ASSERT_TRUE(service_->CreateEntity("user", {{"name", "Ada"}}, 1, "k").ok());
  StatusOr<int64_t> other_attributes = service_->CreateEntity("user", {{"name", "Bob"}}, 1, "k");
  EXPECT_EQ(other_attributes.status().code(), StatusCode::kKeyReused)
      << other_attributes.status().ToString();
  StatusOr<int64_t> other_type = service_->CreateEntity("post", {{"name", "Ada"}}, 1, "k");
  EXPECT_EQ(other_type.status().code(), StatusCode::kKeyReused);
  EXPECT_EQ(Count("entities"), 1);
}

TEST_P(IdempotentCreateTest, ABadKeyIsInvalidArgument) {
  for (const std::string& key :
       {std::string(129, 'k'), std::string("tab\there"), std::string("caf\xc3\xa9")}) {
    StatusOr<int64_t> id = service_->CreateEntity("user", {}, 1, key);
    EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument) << key;
  }
  EXPECT_TRUE(service_->CreateEntity("user", {}, 1, std::string(128, 'k')).ok());
  EXPECT_EQ(Count("entities"), 1);
}

// Sent many times at once (a client's retries and a follower's, racing), from many threads, in
// the same batches as other creates: one row for the key, and every other create still written.
TEST_P(IdempotentCreateTest, RacingRetriesOfOneKeyMakeOneRowAndSpareTheirBatch) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  std::vector<std::vector<int64_t>> keyed(kThreads);
  std::vector<int> unkeyed_failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        StatusOr<int64_t> id =
            service_->CreateEntity("user", {{"round", round}}, 1, "race-" + std::to_string(round));
        keyed[t].push_back(id.ok() ? *id : -1);
        if (!service_->CreateEntity("user", {{"thread", t}}, 1).ok()) ++unkeyed_failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int round = 0; round < kRounds; ++round) {
    std::set<int64_t> ids;
    for (int t = 0; t < kThreads; ++t) ids.insert(keyed[t][round]);
    EXPECT_EQ(ids.size(), 1u) << "round " << round;
    EXPECT_GT(*ids.begin(), 0) << "round " << round;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(unkeyed_failures[t], 0);
  EXPECT_EQ(Count("entities", "idempotency_key IS NOT NULL"), kRounds);
  EXPECT_EQ(Count("entities", "idempotency_key IS NULL"), kThreads * kRounds);
}

// The row is the record: a new leader, in a new term, on a fresh server with empty caches,
// answers a retry with the old leader's id; the deposed leader answers nothing.
TEST_P(IdempotentCreateTest, AKeyHoldsAcrossLeadersAndTheFenceStillHolds) {
  StatusOr<int64_t> by_old = service_->CreateEntity("user", {{"n", 1}}, 5, "across");
  ASSERT_TRUE(by_old.ok()) << by_old.status().ToString();
  std::unique_ptr<GraphService> next = MakeService();
  StatusOr<int64_t> by_new = next->CreateEntity("user", {{"n", 1}}, 6, "across");
  ASSERT_TRUE(by_new.ok()) << by_new.status().ToString();
  EXPECT_EQ(*by_new, *by_old);
  // The new term has written (a raise by its first write; here its own create).
  ASSERT_TRUE(next->CreateEntity("user", {}, 6).ok());
  StatusOr<int64_t> deposed = service_->CreateEntity("user", {{"n", 1}}, 5, "across");
  EXPECT_EQ(deposed.status().code(), StatusCode::kFenceLost) << deposed.status().ToString();
  next->StopGroupCommit();
  EXPECT_EQ(Count("entities"), 2);
}

TEST_P(IdempotentCreateTest, AKeyedAssociationIsWrittenOnceAndAnsweredAsWritten) {
  const int64_t a = *service_->CreateEntity("user", {}, 1);
  const int64_t b = *service_->CreateEntity("user", {}, 1);
  const int64_t c = *service_->CreateEntity("user", {}, 1);
  ASSERT_TRUE(service_->CreateAssociation("friend", a, b, {{"since", 1}}, 1, "link").ok());
  // The retry is success, not the 409 of a duplicate.
  Status again = service_->CreateAssociation("friend", a, b, {{"since", 1}}, 1, "link");
  EXPECT_TRUE(again.ok()) << again.ToString();
  // The same association under another key (or none) was made by another create.
  EXPECT_EQ(service_->CreateAssociation("friend", a, b, {{"since", 1}}, 1, "other").code(),
            StatusCode::kConflict);
  EXPECT_EQ(service_->CreateAssociation("friend", a, b, {{"since", 1}}, 1).code(),
            StatusCode::kConflict);
  // The key for another association, or other attributes.
  EXPECT_EQ(service_->CreateAssociation("friend", a, c, {{"since", 1}}, 1, "link").code(),
            StatusCode::kKeyReused);
  EXPECT_EQ(service_->CreateAssociation("friend", a, b, {{"since", 2}}, 1, "link").code(),
            StatusCode::kKeyReused);
  EXPECT_EQ(Count("associations"), 1);
}

// Every row records the term of the leader that wrote it, whichever path wrote it: what lets
// an audit check each commit against the fence (the chaos suite's below-the-fence check).
TEST_P(IdempotentCreateTest, EveryRowRecordsTheTermOfItsWriter) {
  const int64_t a = *service_->CreateEntity("user", {}, 3);
  const int64_t b = *service_->CreateEntity("user", {}, 3, "keyed");
  ASSERT_TRUE(service_->CreateAssociation("friend", a, b, {}, 3).ok());
  std::unique_ptr<GraphService> next = MakeService();
  const int64_t c = *next->CreateEntity("user", {}, 4);
  ASSERT_TRUE(next->CreateAssociation("friend", b, c, {}, 4, "link").ok());
  next->StopGroupCommit();
  auto term_of = [&](const std::string& table, const std::string& where) {
    return QueryOne("SELECT leader_term FROM " + database_ + "." + table + " WHERE " + where);
  };
  EXPECT_EQ(term_of("entities", "id = " + std::to_string(a)), "3");
  EXPECT_EQ(term_of("entities", "id = " + std::to_string(b)), "3");
  EXPECT_EQ(term_of("entities", "id = " + std::to_string(c)), "4");
  EXPECT_EQ(term_of("associations", "from_id = " + std::to_string(a)), "3");
  EXPECT_EQ(term_of("associations", "from_id = " + std::to_string(b)), "4");
}

// A table made before idempotency keys and terms existed gets the columns, and both work on it.
TEST_P(IdempotentCreateTest, ATableFromBeforeKeysGetsTheColumns) {
  service_->StopGroupCommit();
  QueryOne("ALTER TABLE " + database_ + ".entities DROP INDEX entities_by_idempotency_key, " +
           "DROP COLUMN idempotency_key, DROP COLUMN leader_term");
  ASSERT_EQ(Count("entities"), 0);
  Status schema = graphdb::EnsureSchema(config_);
  ASSERT_TRUE(schema.ok()) << schema.ToString();
  service_ = MakeService();
  StatusOr<int64_t> first = service_->CreateEntity("user", {}, 1, "after-upgrade");
  StatusOr<int64_t> again = service_->CreateEntity("user", {}, 1, "after-upgrade");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(*first, *again);
  EXPECT_EQ(Count("entities"), 1);
  EXPECT_EQ(Count("entities", "leader_term = 1"), 1);
}

// Runs last in this file's order: it restarts the shared server. A create in flight while the
// database restarts is retried (it is keyed, so a retry cannot write it twice) and succeeds
// once the server is back within the retry window.
TEST_P(IdempotentCreateTest, AKeyedCreateRidesOutADatabaseRestart) {
  ASSERT_TRUE(service_->CreateEntity("user", {}, 1).ok());  // connections are open
  Server().Stop();
  // The server is started from this thread: a child dies with the thread that started it.
  StatusOr<int64_t> id = Status::Internal("no answer");
  std::thread create([&] {
    id = service_->CreateEntity("user", {{"during", "restart"}}, 1, "restart");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::string error;
  EXPECT_TRUE(Server().Start(&error)) << error;
  create.join();
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  StatusOr<int64_t> again = service_->CreateEntity("user", {{"during", "restart"}}, 1, "restart");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *id);
  EXPECT_EQ(Count("entities"), 2);
}

INSTANTIATE_TEST_SUITE_P(Paths, IdempotentCreateTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("GroupCommit") : std::string("Direct");
                         });

}  // namespace
}  // namespace instaface::graph

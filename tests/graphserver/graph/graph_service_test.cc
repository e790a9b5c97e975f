// GraphService against a real, private MariaDB (one per test binary).
#include "instaface/graph/graph_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "instaface/graph/validation.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace instaface::graph {
namespace {

using common::Status;
using common::StatusCode;
using json = nlohmann::json;
using ::instaface::testing::MariaDbEnvironment;

::testing::Environment* const kMariaDb =
    ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

std::string QueryOne(const std::string& sql) {
  std::string out, err;
  EXPECT_TRUE(MariaDbEnvironment::server()->Execute(sql, &out, &err)) << sql << ": " << err;
  return out;
}

class GraphServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = std::string("g_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto config =
        graphdb::ParseConnectionString(MariaDbEnvironment::server()->ConnectionString(database_));
    ASSERT_TRUE(config.ok());
    ASSERT_TRUE(graphdb::EnsureSchema(*config).ok());
    pool_ = std::make_shared<graphdb::Pool>(*config);
    service_ = std::make_unique<GraphService>(pool_, nullptr, Options());
  }
  virtual GraphOptions Options() { return GraphOptions{}; }

  int64_t Create(const std::string& type, const json& attributes, uint64_t term = 1) {
    auto id = service_->CreateEntity(type, attributes, term);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : 0;
  }
  void Link(const std::string& type, int64_t from, int64_t to, const json& attributes = {},
            uint64_t term = 1) {
    Status s = service_->CreateAssociation(type, from, to, attributes, term);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  int64_t Count(const std::string& table) {
    return std::stoll(QueryOne("SELECT COUNT(*) FROM " + database_ + "." + table));
  }
  json Entity(int64_t id) {
    auto got = service_->GetEntities(json::array({id}));
    EXPECT_TRUE(got.ok() && got->size() == 1);
    return got.ok() && got->size() == 1 ? (*got)[0] : json();
  }
  json Association(const std::string& type, int64_t from, int64_t to) {
    auto got = service_->GetAssociations(type, json::array({from}));
    EXPECT_TRUE(got.ok());
    for (const json& a : *got) {
      if (a["to"] == to) return a;
    }
    ADD_FAILURE() << "no association " << type << " " << from << "->" << to;
    return json();
  }

  std::string database_;
  std::shared_ptr<graphdb::Pool> pool_;
  std::unique_ptr<GraphService> service_;
};

TEST_F(GraphServiceTest, CreatedEntitiesReadBackInTheOriginalShape) {
  const json attributes = {{"name", "Ada"}, {"age", 36}, {"tags", {"a", "b"}}};
  const int64_t ada = Create("user", attributes);
  const int64_t post = Create("post", {{"text", "hello"}});
  ASSERT_GT(ada, 0);
  EXPECT_NE(ada, post);

  auto got = service_->GetEntities(json::array({post, 999999, ada}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u) << got->dump();  // the missing id is left out
  const json& e = (*got)[1];
  EXPECT_EQ(e["id"], ada);
  EXPECT_EQ(e["type"], "user");
  EXPECT_EQ(e["attributes"], attributes);
  EXPECT_EQ((*got)[0]["id"], post);

  // created is UTC, ISO 8601 with microseconds, and close to now.
  const std::string created = e["created"];
  ASSERT_TRUE(
      std::regex_match(created, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)")))
      << created;
  std::tm tm{};
  ASSERT_NE(strptime(created.c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr);
  const auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  EXPECT_LT(std::chrono::abs(std::chrono::system_clock::now() - when), std::chrono::minutes(5))
      << created << " is not the current UTC time";
}

TEST_F(GraphServiceTest, SqlMetacharactersInAttributesAreStoredVerbatim) {
  const json attributes = {{"bio", "'; DROP TABLE entities; --"},
                           {"q", "\" OR 1=1 -- \\ `x` %_"},
                           {"'; DROP TABLE associations; --", "key too"}};
  const int64_t id = Create("user", attributes);
  service_->ClearCaches();  // read it back from the database, not the cache
  EXPECT_EQ(Entity(id)["attributes"], attributes);
  EXPECT_EQ(Count("entities"), 1);
  EXPECT_EQ(Count("associations"), 0);  // both tables still exist
}

TEST_F(GraphServiceTest, InvalidUtf8InAttributesIsReplacedNotThrown) {
  const int64_t id = Create("user", {{"name", std::string("ok\xff")}});
  service_->ClearCaches();
  EXPECT_EQ(Entity(id)["attributes"]["name"], "ok\xEF\xBF\xBD");  // U+FFFD
}

TEST_F(GraphServiceTest, BadInputIsInvalidArgumentWithAReason) {
  auto expect_invalid = [](const Status& s, const std::string& words) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(words), std::string::npos) << s.message();
  };
  expect_invalid(service_->CreateEntity("", {}, 1).status(), "1 to 10 characters");
  expect_invalid(service_->CreateEntity("elevenchars", {}, 1).status(), "1 to 10 characters");
  expect_invalid(service_->CreateEntity("us'er", {}, 1).status(), "may contain only");
  expect_invalid(service_->CreateEntity("user", json::array({1}), 1).status(),
                 "must be a JSON object");
  expect_invalid(service_->CreateEntity("user", "text", 1).status(), "must be a JSON object");
  expect_invalid(service_->CreateAssociation("friend", -1, 2, {}, 1), "from and to");
  expect_invalid(service_->CreateAssociation("friend", 1, 0, {}, 1), "from and to");
  for (const json& ids :
       {json::parse("[-1]"), json::parse("[0]"), json::parse("[1.5]"), json::parse("[\"1\"]"),
        json::parse("[null]"), json::parse("[9223372036854775808]"), json::parse("[1e30]"),
        json::parse("{\"id\": 1}"), json::parse("7")}) {
    expect_invalid(service_->GetEntities(ids).status(), "");
    expect_invalid(service_->GetAssociations("friend", ids).status(), "");
  }
  expect_invalid(service_->GetEntities(json(std::vector<int64_t>(1001, 1))).status(),
                 "at most 1000");
  expect_invalid(service_->GetAssociations("no spaces", json::array({1})).status(),
                 "may contain only");
  expect_invalid(service_->Random("user", -1).status(), "negative");
  expect_invalid(service_->Query(json::array()).status(), "JSON object");
  expect_invalid(service_->Query({{"entities", {1}}, {"template", {{"friend", 3}}}}).status(),
                 "JSON objects");
  expect_invalid(
      service_->Query({{"entities", {1}}, {"template", {{"bad key!", json::object()}}}}).status(),
      "template key");
  json deep = json::object();
  for (int k = 0; k < 12; ++k) deep = json{{"friend", deep}};
  expect_invalid(service_->Query({{"entities", {1}}, {"template", deep}}).status(), "deeper");
  EXPECT_EQ(Count("entities"), 0);
}

TEST(ValidationTest, PathSegmentsParseStrictly) {
  EXPECT_EQ(*ParseId("42"), 42);
  EXPECT_EQ(*ParseId("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1 ", "1x", "9223372036854775808",
                          "99999999999999999999", "0x10"}) {
    EXPECT_FALSE(ParseId(bad).ok()) << bad;
  }
  EXPECT_EQ(*ParseCount("0"), 0);
  EXPECT_EQ(*ParseCount("1000"), 1000);
  EXPECT_FALSE(ParseCount("-3").ok());
  EXPECT_FALSE(ParseCount("12345678901").ok());
}

TEST_F(GraphServiceTest, AssociationsAreStoredUniqueAndReadBack) {
  const int64_t a = Create("user", {{"name", "a"}});
  const int64_t b = Create("user", {{"name", "b"}});
  const int64_t c = Create("user", {{"name", "c"}});
  Link("friend", a, c, {{"since", 2019}});
  Link("friend", a, b);
  Link("friend", b, a);
  Link("blocks", a, c);

  auto got = service_->GetAssociations("friend", json::array({b, a}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u) << got->dump();
  // Ordered by the requested from ids, then by to.
  EXPECT_EQ((*got)[0]["from"], b);
  EXPECT_EQ((*got)[1]["from"], a);
  EXPECT_EQ((*got)[1]["to"], b);
  EXPECT_EQ((*got)[2]["to"], c);
  EXPECT_EQ((*got)[2]["type"], "friend");
  EXPECT_EQ((*got)[2]["attributes"], json({{"since", 2019}}));
  EXPECT_TRUE((*got)[2]["created"].is_string());

  Status duplicate = service_->CreateAssociation("friend", a, b, {{"x", 1}}, 1);
  EXPECT_EQ(duplicate.code(), StatusCode::kConflict) << duplicate.ToString();
  EXPECT_NE(duplicate.message().find("already exists"), std::string::npos);
  Status dangling = service_->CreateAssociation("friend", a, 424242, {}, 1);
  EXPECT_EQ(dangling.code(), StatusCode::kNotFound) << dangling.ToString();
  EXPECT_EQ(Count("associations"), 4);
}

TEST_F(GraphServiceTest, ConcurrentDuplicateAssociationsOneWinsOneConflicts) {
  const int kRounds = 15;
  std::vector<int64_t> users;
  for (int k = 0; k <= kRounds; ++k) users.push_back(Create("user", {}));
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> ready{0};
    Status results[2];
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        ++ready;
        while (ready.load() < 2) std::this_thread::yield();
        results[t] =
            service_->CreateAssociation("friend", users[0], users[round + 1], {{"by", t}}, 1);
      });
    }
    for (auto& t : threads) t.join();
    const int ok = results[0].ok() + results[1].ok();
    const int conflicts =
        (results[0].code() == StatusCode::kConflict) + (results[1].code() == StatusCode::kConflict);
    EXPECT_EQ(ok, 1) << results[0].ToString() << " / " << results[1].ToString();
    EXPECT_EQ(conflicts, 1) << results[0].ToString() << " / " << results[1].ToString();
  }
  EXPECT_EQ(Count("associations"), kRounds);
}

TEST_F(GraphServiceTest, QueryTemplateTwoLevelsDeepHasTheOriginalShape) {
  const int64_t ann = Create("user", {{"name", "Ann"}});
  const int64_t bob = Create("user", {{"name", "Bob"}, {"type", "ignored: reserved key"}});
  const int64_t cat = Create("user", {{"name", "Cat"}});
  const int64_t post = Create("status", {{"text", "hi"}});
  Link("friend", ann, bob, {{"close", true}});
  Link("friend", ann, cat);
  Link("posted", bob, post);
  Link("likes", cat, post, {{"emoji", "+1"}});
  Link("posted", ann, post);  // a second level only for friends, not for the root

  auto answer = service_->Query(
      {{"entities", {ann, 777777}}, {"template", {{"friend", {{"posted", json::object()}}}}}});
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();

  // The expected tree, assembled from what the service reports for each piece.
  const json e_ann = Entity(ann), e_bob = Entity(bob), e_cat = Entity(cat), e_post = Entity(post);
  const json f_bob = Association("friend", ann, bob), f_cat = Association("friend", ann, cat);
  const json p_bob = Association("posted", bob, post);
  json post_item = {{"id", post},
                    {"linked", p_bob["created"]},
                    {"type", "status"},
                    {"created", e_post["created"]},
                    {"text", "hi"}};
  json bob_item = {{"id", bob},
                   {"linked", f_bob["created"]},
                   {"close", true},
                   {"type", "user"},
                   {"created", e_bob["created"]},
                   {"name", "Bob"},
                   {"posted", json::array({post_item})}};
  // Cat posted nothing: as in the original service, no "posted" key at all.
  json cat_item = {{"id", cat},
                   {"linked", f_cat["created"]},
                   {"type", "user"},
                   {"created", e_cat["created"]},
                   {"name", "Cat"}};
  json expected = json::array({json{{"id", ann},
                                    {"type", "user"},
                                    {"created", e_ann["created"]},
                                    {"name", "Ann"},
                                    {"friend", json::array({bob_item, cat_item})}}});
  EXPECT_EQ((*answer)["entities"], expected)
      << "got:      " << answer->dump(1) << "\nexpected: " << expected.dump(1);
  const json& stats = (*answer)["stats"];
  ASSERT_TRUE(stats.is_object()) << answer->dump();
  EXPECT_TRUE(stats["timeRunning"].is_number());
  EXPECT_TRUE(stats["timeFetching"].is_number());
  EXPECT_LE(stats["timeFetching"].get<double>(), stats["timeRunning"].get<double>());
  // Everything but the roots was cached by the creates; at least the friend and posted
  // association lists, and the entities they reach, were fetched.
  EXPECT_GE(stats["calls"].get<int64_t>(), 1);
}

// The original service's .NET clients send "Entities" and "Template"; a key it cannot use is a
// 400 naming it, never an empty answer.
TEST_F(GraphServiceTest, QueryKeysAreCaseInsensitiveAndUnknownOnesAreRefused) {
  const int64_t a = Create("user", {{"name", "a"}});
  const int64_t b = Create("user", {{"name", "b"}});
  Link("friend", a, b);
  auto pascal = service_->Query({{"Entities", {a}}, {"Template", {{"friend", nullptr}}}});
  ASSERT_TRUE(pascal.ok()) << pascal.status().ToString();
  ASSERT_EQ((*pascal)["entities"].size(), 1u);
  EXPECT_EQ((*pascal)["entities"][0]["friend"][0]["id"], b);

  auto expect_invalid = [](const common::Status& st, const std::string& needle) {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  expect_invalid(service_->Query({{"ids", {a}}}).status(), "unknown key 'ids'");
  expect_invalid(service_->Query(json::object()).status(), "needs \"entities\"");
  expect_invalid(service_->Query({{"entities", {a}}, {"ENTITIES", {b}}}).status(), "twice");
}

TEST_F(GraphServiceTest, QueryBatchesEachLevelInsteadOfQueryingPerEntity) {
  const int64_t root = Create("user", {});
  for (int f = 0; f < 12; ++f) {
    const int64_t friend_id = Create("user", {{"n", f}});
    Link("friend", root, friend_id);
    for (int p = 0; p < 3; ++p) Link("posted", friend_id, Create("status", {{"p", p}}));
  }
  service_->ClearCaches();
  const uint64_t before = service_->stats().database_queries;
  auto answer = service_->Query(
      {{"entities", {root}}, {"template", {{"friend", {{"posted", json::object()}}}}}});
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  ASSERT_EQ((*answer)["entities"][0]["friend"].size(), 12u);
  for (const json& f : (*answer)["entities"][0]["friend"]) EXPECT_EQ(f["posted"].size(), 3u);
  EXPECT_EQ((*answer)["stats"]["calls"], 5);
  // roots; friend associations; friends; posted associations; posts.
  EXPECT_EQ(service_->stats().database_queries - before, 5u);

  // Everything is cached now: the same query sends nothing to the database.
  const uint64_t cached = service_->stats().database_queries;
  ASSERT_TRUE(
      service_->Query({{"entities", {root}}, {"template", {{"friend", {{"posted", {}}}}}}}).ok());
  EXPECT_EQ(service_->stats().database_queries, cached);
}

TEST_F(GraphServiceTest, QueryWithoutTemplateReturnsTheEntities) {
  const int64_t a = Create("user", {{"name", "a"}});
  auto answer = service_->Query({{"entities", {a}}});
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  ASSERT_EQ((*answer)["entities"].size(), 1u);
  EXPECT_EQ((*answer)["entities"][0]["name"], "a");
  EXPECT_EQ((*answer)["entities"][0]["id"], a);
}

TEST_F(GraphServiceTest, WritesOfAnOlderTermAreFencedOffAndWriteNothing) {
  const int64_t a = Create("user", {}, 5);
  const int64_t b = Create("user", {}, 5);
  ASSERT_EQ(*graphdb::ReadFenceTerm(*pool_), 5u);

  auto stale = service_->CreateEntity("user", {{"x", 1}}, 4);
  EXPECT_EQ(stale.status().code(), StatusCode::kFenceLost) << stale.status().ToString();
  Status stale_link = service_->CreateAssociation("friend", a, b, {}, 4);
  EXPECT_EQ(stale_link.code(), StatusCode::kFenceLost) << stale_link.ToString();
  EXPECT_EQ(Count("entities"), 2);
  EXPECT_EQ(Count("associations"), 0);
  EXPECT_EQ(*graphdb::ReadFenceTerm(*pool_), 5u);

  Link("friend", a, b, {}, 6);  // a newer leader writes
  EXPECT_EQ(Count("associations"), 1);
  EXPECT_EQ(service_->CreateEntity("user", {}, 5).status().code(), StatusCode::kFenceLost);
}

TEST_F(GraphServiceTest, CachesCountHitsAndWritesInvalidateAssociations) {
  const int64_t a = Create("user", {});
  const int64_t b = Create("user", {});
  const int64_t c = Create("user", {});
  Link("friend", a, b);
  ASSERT_TRUE(service_->GetEntities(json::array({a, b})).ok());
  GraphStats s0 = service_->stats();
  ASSERT_TRUE(service_->GetEntities(json::array({a, b})).ok());
  GraphStats s1 = service_->stats();
  EXPECT_EQ(s1.entity_cache_hits - s0.entity_cache_hits, 2u);
  EXPECT_EQ(s1.database_queries, s0.database_queries);

  auto before = service_->GetAssociations("friend", json::array({a}));
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  Link("friend", a, c);
  auto after = service_->GetAssociations("friend", json::array({a}));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 2u) << "the write did not invalidate the cached list";
}

// A MissFiller that answers from canned JSON, or fails, and counts its calls.
class FakeLeader : public MissFiller {
 public:
  bool ShouldUse() const override { return use; }
  common::StatusOr<json> FetchEntities(const std::vector<int64_t>& ids) override {
    ++entity_calls;
    last_ids = ids;
    if (fail) return Status::Unavailable("leader unreachable");
    return entities;
  }
  common::StatusOr<json> FetchAssociations(const std::string&,
                                           const std::vector<int64_t>&) override {
    ++association_calls;
    if (fail) return Status::Unavailable("leader unreachable");
    return associations;
  }
  std::atomic<bool> use{true};
  std::atomic<bool> fail{false};
  std::atomic<int> entity_calls{0};
  std::atomic<int> association_calls{0};
  std::vector<int64_t> last_ids;
  json entities = json::array();
  json associations = json::array();
};

TEST_F(GraphServiceTest, FollowerFillsMissesFromTheLeaderAndFallsBackToTheDatabase) {
  const int64_t real = Create("user", {{"name", "in the database"}});
  auto leader = std::make_shared<FakeLeader>();
  // What the leader knows (not in this test's database): proves where the answer came from.
  leader->entities = json::array({json{{"id", 5000},
                                       {"type", "user"},
                                       {"created", "2026-01-01T00:00:00.000000Z"},
                                       {"attributes", {{"name", "from the leader"}}}},
                                  json{{"id", "garbage"}}});
  leader->associations = json::array({json{{"type", "friend"},
                                           {"from", 5000},
                                           {"to", 5001},
                                           {"created", "2026-01-01T00:00:00.000000Z"},
                                           {"attributes", json::object()}}});
  service_->set_miss_filler(leader);

  auto got = service_->GetEntities(json::array({5000}));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0]["attributes"]["name"], "from the leader");
  EXPECT_EQ(leader->last_ids, std::vector<int64_t>({5000}));
  auto assoc = service_->GetAssociations("friend", json::array({5000}));
  ASSERT_TRUE(assoc.ok());
  ASSERT_EQ(assoc->size(), 1u);
  EXPECT_EQ((*assoc)[0]["to"], 5001);

  // Cached now: the leader is not asked again.
  ASSERT_TRUE(service_->GetEntities(json::array({5000})).ok());
  EXPECT_EQ(leader->entity_calls.load(), 1);

  // The leader fails: the follower reads its own database instead.
  leader->fail = true;
  got = service_->GetEntities(json::array({real}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0]["attributes"]["name"], "in the database");
  EXPECT_EQ(service_->stats().filler_failures, 1u);

  // This node leads: the filler is not consulted.
  leader->fail = false;
  leader->use = false;
  const int calls = leader->entity_calls.load();
  service_->ClearCaches();
  ASSERT_TRUE(service_->GetEntities(json::array({real})).ok());
  EXPECT_EQ(leader->entity_calls.load(), calls);
}

TEST_F(GraphServiceTest, RandomReturnsDistinctIdsOfTheTypeUpToTheCap) {
  std::set<int64_t> users;
  for (int k = 0; k < 8; ++k) users.insert(Create("user", {}));
  Create("status", {});
  auto some = service_->Random("user", 5);
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  ASSERT_EQ(some->size(), 5u);
  std::set<int64_t> seen;
  for (const json& id : *some) {
    EXPECT_TRUE(users.count(id.get<int64_t>())) << id;
    seen.insert(id.get<int64_t>());
  }
  EXPECT_EQ(seen.size(), 5u);
  auto all = service_->Random("user", 1000000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 8u);
  EXPECT_EQ(service_->Random("user", 0)->size(), 0u);
  EXPECT_EQ(service_->Random("nobody", 3)->size(), 0u);
}

// Random must not read every id of the type (ORDER BY RAND() does, per call). MariaDB counts
// the index entries a statement steps through in Handler_read_next: sampling 10 of 3000 users
// must step through far fewer than 3000. The server is this binary's own, quiet but for us.
TEST_F(GraphServiceTest, RandomDoesNotReadEveryIdOfTheType) {
  QueryOne("INSERT INTO " + database_ +
           ".entities (type, created, attributes) "
           "SELECT 'user', UTC_TIMESTAMP(6), '{}' FROM " +
           database_ + ".seq_1_to_3000");
  Create("status", {});
  auto read_next = [&] {
    return std::stoll(
        QueryOne("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                 "WHERE VARIABLE_NAME = 'HANDLER_READ_NEXT'"));
  };
  ASSERT_TRUE(service_->Random("user", 10).ok());  // prepares its statements
  const int64_t before = read_next();
  std::set<int64_t> seen;
  for (int call = 0; call < 5; ++call) {
    auto some = service_->Random("user", 10);
    ASSERT_TRUE(some.ok()) << some.status().ToString();
    ASSERT_EQ(some->size(), 10u);
    for (const json& id : *some) seen.insert(id.get<int64_t>());
  }
  const int64_t stepped = read_next() - before;
  EXPECT_LT(stepped, 1000) << "5 samples of 10 stepped through " << stepped << " index entries";
  EXPECT_GT(seen.size(), 10u) << "five samples all alike: not random";
}

class SmallCapGraphServiceTest : public GraphServiceTest {
 protected:
  GraphOptions Options() override {
    GraphOptions o;
    o.max_random_count = 3;
    o.max_query_nodes = 10;
    return o;
  }
};

TEST_F(SmallCapGraphServiceTest, RandomAndQueryRespectTheirCaps) {
  const int64_t root = Create("user", {});
  for (int k = 0; k < 12; ++k) Link("friend", root, Create("user", {}));
  EXPECT_EQ(service_->Random("user", 100)->size(), 3u);
  auto big = service_->Query({{"entities", {root}}, {"template", {{"friend", json::object()}}}});
  EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument) << big.status().ToString();
}

TEST_F(GraphServiceTest, CheckDatabaseAnswers) { EXPECT_TRUE(service_->CheckDatabase().ok()); }

}  // namespace
}  // namespace instaface::graph

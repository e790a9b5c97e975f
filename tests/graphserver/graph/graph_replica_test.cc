// Reads go to the read replica when one is configured (ConnectionStrings__ReadReplica); writes
// go to the primary and reach the replica through GTID replication.
#include <gtest/gtest.h>

#include <string>

#include "instaface/graph/graph_service.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"

namespace instaface::graph {
namespace {

using common::Status;
using json = nlohmann::json;
using ::instaface::testing::MariaDbServer;
using ::instaface::testing::MariaDbServerOptions;

TEST(GraphReplicaTest, TheReplicaServesReadsAndReceivesThePrimarysWrites) {
  MariaDbServerOptions primary_options, replica_options;
  primary_options.server_id = 1;
  replica_options.server_id = 2;
  MariaDbServer primary(primary_options), replica(replica_options);
  std::string error;
  ASSERT_TRUE(primary.Start(&error)) << error;
  ASSERT_TRUE(replica.Start(&error)) << error;
  ASSERT_TRUE(replica.ReplicateFrom(primary, &error)) << error;

  auto primary_config = graphdb::ParseConnectionString(primary.ConnectionString("graph"));
  auto replica_config = graphdb::ParseConnectionString(replica.ConnectionString("graph"));
  ASSERT_TRUE(primary_config.ok() && replica_config.ok());
  Status schema = graphdb::EnsureSchema(*primary_config);
  ASSERT_TRUE(schema.ok()) << schema.ToString();
  ASSERT_TRUE(replica.WaitForReplication(primary, std::chrono::seconds(30))) << replica.log();

  GraphService service(std::make_shared<graphdb::Pool>(*primary_config),
                       std::make_shared<graphdb::Pool>(*replica_config));
  auto id = service.CreateEntity("user", {{"name", "replicated"}}, 1);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(replica.WaitForReplication(primary, std::chrono::seconds(30))) << replica.log();

  auto got = service.GetEntities(json::array({*id}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0]["attributes"]["name"], "replicated");

  // A row that exists only on the replica (written there with replication bypassed) is
  // visible to reads, and one that exists only on the primary is not: reads use the replica.
  ASSERT_TRUE(
      replica.Execute("SET sql_log_bin = 0; INSERT INTO graph.entities (id, type, "
                      "created, attributes) VALUES (900001, 'user', UTC_TIMESTAMP(6), "
                      "'{\"name\": \"replica only\"}')",
                      nullptr, &error))
      << error;
  ASSERT_TRUE(replica.Execute("STOP SLAVE", nullptr, &error)) << error;
  ASSERT_TRUE(
      primary.Execute("INSERT INTO graph.entities (id, type, created, attributes) VALUES "
                      "(900002, 'user', UTC_TIMESTAMP(6), '{}')",
                      nullptr, &error))
      << error;
  got = service.GetEntities(json::array({900001, 900002}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u) << got->dump();
  EXPECT_EQ((*got)[0]["attributes"]["name"], "replica only");
  auto random = service.Random("user", 10);
  ASSERT_TRUE(random.ok());
  EXPECT_EQ(random->size(), 2u) << random->dump();  // the replicated one and the replica-only one

  // The replica goes away: reads fall back to the primary instead of failing.
  replica.Stop();
  service.ClearCaches();
  got = service.GetEntities(json::array({*id, 900001, 900002}));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u) << got->dump();
  EXPECT_EQ((*got)[1]["id"], 900002);
  EXPECT_GE(service.stats().replica_failures, 1u);
}

}  // namespace
}  // namespace instaface::graph

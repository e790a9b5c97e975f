// The chaos suite's fence audit against a real MariaDB and its real binary log: writes through
// the graph's fenced path pass; a row committed under an old term after a newer one raised the
// fence (what a deposed leader without the fence would do), a row whose term was never raised,
// and a row without a term are each found.
#include "fence_audit.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "instaface/graph/entity_writes.h"
#include "instaface/graphdb/connection_string.h"
#include "instaface/graphdb/fence.h"
#include "instaface/graphdb/pool.h"
#include "instaface/graphdb/schema.h"
#include "support/mariadb_server.h"
#include "support/temp_dir.h"

namespace instaface::testing {
namespace {

class FenceAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MariaDbServerOptions options;
    options.server_id = 1;  // a binary log
    server_ = std::make_unique<MariaDbServer>(options);
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    auto config = graphdb::ParseConnectionString(server_->ConnectionString("audit"));
    ASSERT_TRUE(config.ok());
    ASSERT_TRUE(graphdb::EnsureSchema(*config).ok());
    pool_ = std::make_unique<graphdb::Pool>(*config);
  }

  // Writes an entity at `term` through the fence, as the leader does.
  void Write(uint64_t term) {
    graph::EntityCreate create;
    create.type = "audit";
    create.attributes = "{}";
    auto id = graph::WriteEntity(*pool_, term, create);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
  }
  // Commits a row past the fence, as no leader may.
  void WriteUnfenced(const std::string& term) {
    std::string error;
    ASSERT_TRUE(
        server_->Execute("INSERT INTO audit.entities (type, created, attributes, "
                         "leader_term) VALUES ('audit', UTC_TIMESTAMP(6), '{}', " +
                             term + ")",
                         nullptr, &error))
        << error;
  }

  FenceAuditResult Audit() {
    FenceAuditor auditor("audit", {{"entities", 6}, {"associations", 7}});
    std::string error;
    EXPECT_TRUE(AuditBinlog(server_->BinlogFiles(), scratch_.path(), auditor, &error)) << error;
    return auditor.result();
  }

  std::unique_ptr<MariaDbServer> server_;
  std::unique_ptr<graphdb::Pool> pool_;
  TempDir scratch_{"ifx-audit"};
};

TEST_F(FenceAuditTest, LeadersThatKeepTheFencePass) {
  Write(1);
  Write(1);
  Write(2);  // raises the fence
  Write(5);
  const FenceAuditResult result = Audit();
  EXPECT_EQ(result.rows, 4u);
  EXPECT_EQ(result.below_fence + result.above_fence + result.without_term, 0u)
      << result.first_violation;
  EXPECT_EQ(result.highest_fence, 5u);
  EXPECT_GE(result.fence_changes, 3u);  // the first insert of the row, and raises to 1, 2, 5
}

TEST_F(FenceAuditTest, ACommitBelowOrAboveTheFenceIsFound) {
  Write(3);
  WriteUnfenced("2");  // an old term, after term 3 raised the fence
  WriteUnfenced("4");  // a term that never raised it
  WriteUnfenced("NULL");
  Write(4);  // the fence moves to 4: rows at 4 from now on are fine
  WriteUnfenced("4");
  const FenceAuditResult result = Audit();
  EXPECT_EQ(result.rows, 6u);
  EXPECT_EQ(result.below_fence, 1u);
  EXPECT_EQ(result.above_fence, 1u);
  EXPECT_EQ(result.without_term, 1u);
  EXPECT_EQ(result.first_violation,
            "a row of entities at term 2 committed while the fence stood at 3");
}

}  // namespace
}  // namespace instaface::testing

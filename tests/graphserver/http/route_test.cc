// Route matching: the strict parsing of paths that come from the network.
#include "instaface/graphserver/route.h"

#include <gtest/gtest.h>

namespace instaface::graphserver {
namespace {

TEST(ParseId, AcceptsPositiveIntegersThatFitBigint) {
  EXPECT_EQ(ParseId("1"), 1);
  EXPECT_EQ(ParseId("9223372036854775807"), INT64_MAX);
}

TEST(ParseId, RefusesZeroNegativeHugeAndNonDigits) {
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "abc",
                          "9223372036854775808", "99999999999999999999", "18446744073709551617"}) {
    EXPECT_FALSE(ParseId(bad).has_value()) << bad;
  }
}

TEST(IsValidType, AllowsShortIdentifiersOnly) {
  EXPECT_TRUE(IsValidType("user"));
  EXPECT_TRUE(IsValidType("status_1-a"));
  EXPECT_FALSE(IsValidType(""));
  EXPECT_FALSE(IsValidType("elevenchars"));
  EXPECT_FALSE(IsValidType("us'er"));
  EXPECT_FALSE(IsValidType("us%20er"));
}

TEST(MatchRoute, MapsEveryApiRouteToItsTemplate) {
  struct Case {
    const char* method;
    const char* target;
    RouteKind kind;
    const char* tmpl;
  } cases[] = {
      {"POST", "/api/graph/entities", RouteKind::kGetEntities, "/api/graph/entities"},
      {"POST", "/api/graph/entities/friend", RouteKind::kGetAssociations,
       "/api/graph/entities/{type}"},
      {"POST", "/api/graph/query", RouteKind::kQuery, "/api/graph/query"},
      {"POST", "/api/graph/random/user/5", RouteKind::kRandom, "/api/graph/random/{type}/{count}"},
      {"POST", "/api/graph/entities/user/create", RouteKind::kCreateEntity,
       "/api/graph/entities/{type}/create"},
      {"POST", "/api/graph/associations/friend/from/1/to/2", RouteKind::kCreateAssociation,
       "/api/graph/associations/{type}/from/{from}/to/{to}"},
      {"GET", "/api/graph/unreachable", RouteKind::kUnreachable, "/api/graph/unreachable"},
      {"GET", "/api/graph/unplugged", RouteKind::kGetUnplugged, "/api/graph/unplugged"},
      {"PUT", "/api/graph/unplugged", RouteKind::kPutUnplugged, "/api/graph/unplugged"},
      {"GET", "/metrics", RouteKind::kMetrics, "/metrics"},
      {"GET", "/healthz?x=1", RouteKind::kHealth, "/healthz"},
      {"GET", "/readyz", RouteKind::kReady, "/readyz"},
      {"GET", "/api/graph/events", RouteKind::kEvents, "/api/graph/events"},
      {"GET", "/api/timeline/cluster", RouteKind::kTimelineCluster, "/api/timeline/cluster"},
      {"GET", "/api/timeline/42", RouteKind::kTimeline, "/api/timeline/{id}"},
      {"GET", "/", RouteKind::kConsole, "/console/{file}"},
      {"GET", "/console/app.js", RouteKind::kConsole, "/console/{file}"},
  };
  for (const Case& c : cases) {
    RouteMatch m = MatchRoute(c.method, c.target);
    ASSERT_TRUE(m.route.has_value()) << c.target << ": " << m.error->message;
    EXPECT_EQ(m.route->kind, c.kind) << c.target;
    EXPECT_STREQ(m.route->path_template, c.tmpl);
  }
}

TEST(MatchRoute, ExtractsParameters) {
  RouteMatch m = MatchRoute("POST", "/api/graph/associations/likes/from/12/to/34");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->type, "likes");
  EXPECT_EQ(m.route->from, 12);
  EXPECT_EQ(m.route->to, 34);
  EXPECT_TRUE(m.route->is_write());
  m = MatchRoute("POST", "/api/graph/random/user/7");
  ASSERT_TRUE(m.route);
  EXPECT_EQ(m.route->from, 7);
  EXPECT_FALSE(m.route->is_write());
}

TEST(MatchRoute, ConsoleFilesAndTimelineUsersAreParsedStrictly) {
  RouteMatch m = MatchRoute("GET", "/");
  ASSERT_TRUE(m.route.has_value());
  EXPECT_EQ(m.route->type, "index.html");
  m = MatchRoute("GET", "/console/app.css?v=2");
  ASSERT_TRUE(m.route.has_value());
  EXPECT_EQ(m.route->type, "app.css");
  for (const char* bad : {"/console/../etc/passwd", "/console/.hidden", "/console/", "/console/a/b",
                          "/console/%2e%2e"}) {
    m = MatchRoute("GET", bad);
    ASSERT_TRUE(m.error.has_value()) << bad;
    EXPECT_EQ(m.error->status, 404) << bad;
  }
  m = MatchRoute("GET", "/api/timeline/77");
  ASSERT_TRUE(m.route.has_value());
  EXPECT_EQ(m.route->from, 77);
  m = MatchRoute("GET", "/api/timeline/0");
  ASSERT_TRUE(m.error.has_value());
  EXPECT_EQ(m.error->status, 400);
  m = MatchRoute("POST", "/api/timeline/7");
  ASSERT_TRUE(m.error.has_value());
  EXPECT_EQ(m.error->status, 405);
  m = MatchRoute("POST", "/");
  ASSERT_TRUE(m.error.has_value());
  EXPECT_EQ(m.error->status, 405);
}

TEST(MatchRoute, UnknownPathsAre404) {
  for (const char* t : {"/api", "/api/graphs", "/api/graph", "/api/graph/nope",
                        "/api/graph/entities/a/b", "/api/graph/associations/a/from/1/to"}) {
    RouteMatch m = MatchRoute("POST", t);
    ASSERT_TRUE(m.error) << t;
    EXPECT_EQ(m.error->status, 404) << t;
    EXPECT_STREQ(m.error->path_template, "unmatched");
  }
}

TEST(MatchRoute, WrongMethodIs405WithAllow) {
  RouteMatch m = MatchRoute("GET", "/api/graph/entities");
  ASSERT_TRUE(m.error);
  EXPECT_EQ(m.error->status, 405);
  EXPECT_EQ(m.error->allow, "POST");
  m = MatchRoute("DELETE", "/api/graph/unplugged");
  ASSERT_TRUE(m.error);
  EXPECT_EQ(m.error->status, 405);
  EXPECT_EQ(m.error->allow, "GET, PUT");
}

TEST(MatchRoute, BadIdsTypesAndCountsAre400) {
  for (const char* t :
       {"/api/graph/associations/f/from/-1/to/2",
        "/api/graph/associations/f/from/1/to/99999999999999999999",
        "/api/graph/associations/f/from/0/to/2", "/api/graph/associations/f'--/from/1/to/2",
        "/api/graph/entities/waytoolongtype/create", "/api/graph/random/user/0",
        "/api/graph/random/user/100000", "/api/graph/random/user/-3"}) {
    RouteMatch m = MatchRoute("POST", t);
    ASSERT_TRUE(m.error) << t;
    EXPECT_EQ(m.error->status, 400) << t;
    EXPECT_STRNE(m.error->path_template, "unmatched") << t;
  }
}

}  // namespace
}  // namespace instaface::graphserver

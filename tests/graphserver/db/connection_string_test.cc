#include "instaface/graphdb/connection_string.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace instaface::graphdb {
namespace {

using common::StatusCode;

TEST(ConnectionStringTest, ParsesTheSeedForm) {
  auto config = ParseConnectionString(
      "server=192.168.1.170;port=3307;database=instaface1;user=root;password=notverysecret123");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "192.168.1.170");
  EXPECT_EQ(config->port, 3307);
  EXPECT_EQ(config->database, "instaface1");
  EXPECT_EQ(config->user, "root");
  EXPECT_EQ(config->password, "notverysecret123");
}

TEST(ConnectionStringTest, KeysAreCaseInsensitiveAndWhitespaceIsIgnored) {
  auto config = ParseConnectionString(
      "  Server = db.local ;\tPORT=3306; DataBase= g1 ;User  Id=bob; PWD = p w ;");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "db.local");
  EXPECT_EQ(config->database, "g1");
  EXPECT_EQ(config->user, "bob");
  EXPECT_EQ(config->password, "p w");  // inner spaces are part of the value
}

TEST(ConnectionStringTest, AliasesMapToTheSameKeys) {
  auto config = ParseConnectionString("host=h;database=d;uid=u;pwd=x");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "h");
  EXPECT_EQ(config->user, "u");
  EXPECT_EQ(config->password, "x");
  EXPECT_EQ(config->port, 3306);  // the default
}

TEST(ConnectionStringTest, QuotedValuesMayHoldSemicolonsAndQuotes) {
  auto config = ParseConnectionString(
      "server=h;database=d;user=u;password=\"a;b\"\"c\" ; connect timeout='7'");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->password, "a;b\"c");
  EXPECT_EQ(config->connect_timeout.count(), 7);
}

TEST(ConnectionStringTest, UnknownKeyIsAnErrorNamingTheValidKeys) {
  auto config = ParseConnectionString("server=h;database=d;user=u;sslmode=required");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = config.status().message();
  EXPECT_NE(m.find("unknown key 'sslmode'"), std::string::npos) << m;
  for (const char* key : {"server", "port", "database", "user", "password"}) {
    EXPECT_NE(m.find(key), std::string::npos) << key << " missing from: " << m;
  }
}

TEST(ConnectionStringTest, MissingKeysAreNamed) {
  auto config = ParseConnectionString("server=h;port=3306;password=x");
  ASSERT_FALSE(config.ok());
  const std::string& m = config.status().message();
  EXPECT_NE(m.find("missing or empty database, user"), std::string::npos) << m;
  EXPECT_NE(m.find("valid keys are"), std::string::npos) << m;
}

TEST(ConnectionStringTest, EmptyStringIsMissingEverything) {
  auto config = ParseConnectionString("");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("server, database, user"), std::string::npos);
}

TEST(ConnectionStringTest, MalformedInputIsRejectedWithAReason) {
  const std::map<std::string, std::string> cases = {
      {"server=h;database=d;user=u;port=0", "port '0'"},
      {"server=h;database=d;user=u;port=65536", "port '65536'"},
      {"server=h;database=d;user=u;port=-1", "port '-1'"},
      {"server=h;database=d;user=u;port=33o6", "port '33o6'"},
      {"server=h;server=i;database=d;user=u", "appears twice"},
      {"server=h;host=i;database=d;user=u", "appears twice"},
      {"server=h;database=d;user=u;password='abc", "no closing quote"},
      {"server=h;database=d;user=u;password='a'b", "after the closing quote"},
      {"server=h;database;user=u", "has no '=value'"},
      {"=x;server=h;database=d;user=u", "no key"},
      {"server=;database=d;user=u", "missing or empty server"},
  };
  for (const auto& [text, expected] : cases) {
    auto config = ParseConnectionString(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(config.status().message().find(expected), std::string::npos)
        << text << " -> " << config.status().message();
  }
}

TEST(ConnectionStringTest, PasswordIsNeverEchoedInErrors) {
  auto config = ParseConnectionString("server=h;password=hunter2;bogus=1");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message().find("hunter2"), std::string::npos);
}

TEST(ConnectionStringTest, EnvironmentPrefersDoubleUnderscoreThenColon) {
  std::map<std::string, std::string> env = {
      {"ConnectionStrings:DefaultConnection", "server=colon;database=d;user=u"},
  };
  auto getenv_fn = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto config = ConnectionConfigFromEnvironment("DefaultConnection", getenv_fn);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "colon");

  env["ConnectionStrings__DefaultConnection"] = "server=underscore;database=d;user=u";
  config = ConnectionConfigFromEnvironment("DefaultConnection", getenv_fn);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->server, "underscore");

  auto replica = ConnectionConfigFromEnvironment("ReadReplica", getenv_fn);
  ASSERT_FALSE(replica.ok());
  EXPECT_EQ(replica.status().code(), StatusCode::kNotFound);
  EXPECT_NE(replica.status().message().find("ConnectionStrings__ReadReplica"), std::string::npos);

  env["ConnectionStrings__ReadReplica"] = "server=r;database=d;user=u;colour=blue";
  replica = ConnectionConfigFromEnvironment("ReadReplica", getenv_fn);
  ASSERT_FALSE(replica.ok());
  EXPECT_EQ(replica.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(replica.status().message().find("ConnectionStrings__ReadReplica"), std::string::npos);
}

}  // namespace
}  // namespace instaface::graphdb

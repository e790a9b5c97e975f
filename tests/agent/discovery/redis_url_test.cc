#include "instaface/discovery/redis_url.h"

#include <gtest/gtest.h>

#include <string>

namespace instaface::discovery {
namespace {

TEST(RedisUrlTest, HostAndPort) {
  auto url = ParseRedisUrl("redis://10.1.2.3:6380");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->host, "10.1.2.3");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 0);
  EXPECT_TRUE(url->username.empty());
  EXPECT_TRUE(url->password.empty());
}

TEST(RedisUrlTest, PortDefaultsTo6379) {
  auto url = ParseRedisUrl("redis://redis.default.svc");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->host, "redis.default.svc");
  EXPECT_EQ(url->port, 6379);
}

TEST(RedisUrlTest, PasswordOnlyAndDatabase) {
  auto url = ParseRedisUrl("redis://:s3cret@127.0.0.1:7000/3");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->password, "s3cret");
  EXPECT_TRUE(url->username.empty());
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->db, 3);
}

TEST(RedisUrlTest, UserAndPassword) {
  auto url = ParseRedisUrl("redis://agent:pw@localhost:6379/");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->username, "agent");
  EXPECT_EQ(url->password, "pw");
  EXPECT_EQ(url->db, 0);
}

TEST(RedisUrlTest, PercentEncodedPasswordAndRawAtSign) {
  auto encoded = ParseRedisUrl("redis://:p%40ss%3Aw%2Fd@h:1");
  ASSERT_TRUE(encoded.ok()) << encoded.status().message();
  EXPECT_EQ(encoded->password, "p@ss:w/d");
  // Userinfo ends at the last '@', so an unencoded '@' in a password still works.
  auto raw = ParseRedisUrl("redis://:a@b@h:2");
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  EXPECT_EQ(raw->password, "a@b");
  EXPECT_EQ(raw->host, "h");
}

TEST(RedisUrlTest, Ipv6InBrackets) {
  auto url = ParseRedisUrl("redis://[::1]:6390/1");
  ASSERT_TRUE(url.ok()) << url.status().message();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 6390);
  EXPECT_EQ(url->db, 1);
}

TEST(RedisUrlTest, RedactedHidesPassword) {
  auto url = ParseRedisUrl("redis://u:topsecret@h:10/2");
  ASSERT_TRUE(url.ok());
  std::string shown = url->Redacted();
  EXPECT_EQ(shown.find("topsecret"), std::string::npos);
  EXPECT_EQ(shown, "redis://u:***@h:10/2");
}

struct BadUrl {
  const char* url;
  const char* error_mentions;
};

class RedisUrlRejectTest : public ::testing::TestWithParam<BadUrl> {};

TEST_P(RedisUrlRejectTest, GivesClearError) {
  auto url = ParseRedisUrl(GetParam().url);
  ASSERT_FALSE(url.ok()) << "accepted " << GetParam().url;
  EXPECT_NE(url.status().message().find(GetParam().error_mentions), std::string::npos)
      << "error for " << GetParam().url << " was: " << url.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, RedisUrlRejectTest,
    ::testing::Values(BadUrl{"", "redis://"}, BadUrl{"http://h:1", "redis://"},
                      BadUrl{"rediss://h:1", "TLS"}, BadUrl{"redis://", "no host"},
                      BadUrl{"redis://:6379", "no host"}, BadUrl{"redis://h:0", "port"},
                      BadUrl{"redis://h:65536", "port"}, BadUrl{"redis://h:", "port"},
                      BadUrl{"redis://h:12ab", "port"}, BadUrl{"redis://h:1/x", "database"},
                      BadUrl{"redis://h:1/1/2", "database"}, BadUrl{"redis://h:1/-1", "database"},
                      BadUrl{"redis://user@h:1", "':'"}, BadUrl{"redis://:@h:1", "empty password"},
                      BadUrl{"redis://:p%4@h:1", "escape"}, BadUrl{"redis://:p%zz@h:1", "escape"},
                      BadUrl{"redis://:p%@h", "escape"}, BadUrl{"redis://h:1?db=2", "query"},
                      BadUrl{"redis://[::1:6379", "'['"}, BadUrl{"redis://[::1]x", "']'"},
                      BadUrl{"redis://[zz]:1", "IPv6"}, BadUrl{"redis://h o:1", "space"},
                      BadUrl{"redis://h$:1", "invalid character"}));

TEST(RedisUrlTest, OverlongUrlIsRejectedNotParsed) {
  std::string url = "redis://" + std::string(5000, 'a') + ":1";
  auto parsed = ParseRedisUrl(url);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("longer"), std::string::npos);
}

TEST(RedisUrlTest, EveryPrefixOfAValidUrlIsHandled) {
  // Truncated input must give a value or an error, never read past the end.
  std::string url = "redis://user:p%41ss@[::1]:6379/12";
  for (size_t n = 0; n <= url.size(); ++n) {
    auto parsed = ParseRedisUrl(std::string_view(url.data(), n));
    if (parsed.ok()) {
      EXPECT_FALSE(parsed->host.empty());
    }
  }
  auto full = ParseRedisUrl(url);
  ASSERT_TRUE(full.ok()) << full.status().message();
  EXPECT_EQ(full->password, "pAss");
}

}  // namespace
}  // namespace instaface::discovery

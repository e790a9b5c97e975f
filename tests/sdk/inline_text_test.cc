// InlineText reads like the std::string it replaced in Snapshot: callers that compared,
// streamed, concatenated or converted a Snapshot's texts compile and behave as before.
#include "instaface/inline_text.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

namespace instaface {
namespace {

using Text = InlineText<16>;

static_assert(std::is_convertible_v<const Text&, std::string_view>);
static_assert(std::is_convertible_v<const Text&, std::string>);
static_assert(std::is_convertible_v<const char*, Text>);
static_assert(!std::is_convertible_v<std::string_view, Text>, "explicit, as for std::string");
static_assert(sizeof(InlineText<64>) <= 72 && sizeof(InlineText<192>) <= 200,
              "the capacity, a NUL and a byte of size, rounded to a word");

TEST(InlineTextTest, StartsEmptyAndNulTerminated) {
  const Text t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_STREQ(t.c_str(), "");
  EXPECT_EQ(t, "");
}

TEST(InlineTextTest, ComparesWithEveryKindOfString) {
  const Text t("node-a");
  const std::string s = "node-a";
  const std::string_view v = "node-a";
  EXPECT_TRUE(t == "node-a" && "node-a" == t && t == s && s == t && t == v && v == t);
  EXPECT_TRUE(t != "node-b" && "node-b" != t && t != std::string("node") && std::string() != t);
  EXPECT_EQ(t, Text("node-a"));
  EXPECT_NE(t, Text("node-b"));
  EXPECT_EQ(t, InlineText<64>("node-a")) << "texts of other capacities compare too";
}

TEST(InlineTextTest, ConvertsAndStreamsLikeAString) {
  const Text t("tcp://a:7001");
  const std::string s = t;
  const std::string_view v = t;
  EXPECT_EQ(s, "tcp://a:7001");
  EXPECT_EQ(v.data(), t.data()) << "a view of the text itself, not of a copy";
  std::string assigned;
  assigned = t;
  std::optional<std::string> maybe;
  maybe = t;
  EXPECT_EQ(assigned, s);
  EXPECT_EQ(*maybe, s);
  std::map<std::string, int> by_name{{s, 1}};
  EXPECT_EQ(by_name.count(std::string(t)), 1u);

  std::ostringstream out;
  out << t << "|" << (Text().empty() ? "-" : t);
  EXPECT_EQ(out.str(), "tcp://a:7001|-");
  EXPECT_EQ("<" + t + ">", "<tcp://a:7001>");
  EXPECT_EQ(std::string("<") + t + std::string(">"), "<tcp://a:7001>");
  EXPECT_EQ(t + Text("/x"), "tcp://a:7001/x");
  EXPECT_EQ(std::string(t.begin(), t.end()), s);
  EXPECT_EQ(t[0], 't');
}

TEST(InlineTextTest, AssignsAndClears) {
  Text t;
  t = "http://b:1";
  EXPECT_EQ(t, "http://b:1");
  t = std::string("x");
  EXPECT_EQ(t, "x");
  t = std::string_view("yz");
  EXPECT_EQ(t, "yz");
  EXPECT_STREQ(t.c_str(), "yz");
  Text copy = t;
  t.clear();
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(copy, "yz") << "a copy is its own";
}

TEST(InlineTextTest, ALongerTextIsCutAtACharacterBoundary) {
  Text t(std::string(40, 'a'));
  EXPECT_EQ(t, std::string(16, 'a'));
  // 15 ASCII bytes, then a two-byte character that would straddle the capacity.
  t = std::string(15, 'b') + "\xC3\xA9";
  EXPECT_EQ(t, std::string(15, 'b'));
  EXPECT_STREQ(t.c_str(), std::string(15, 'b').c_str());
  t = std::string(14, 'c') + "\xC3\xA9";
  EXPECT_EQ(t.size(), 16u) << "a character that fits is kept";
}

}  // namespace
}  // namespace instaface

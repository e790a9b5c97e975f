// The bot reads a query answer in the graphserver's first form (a bare array of trees) and in
// the original Instaface's envelope ({"stats": {...}, "entities": [...]}), and refuses others.
#include "query_answer.h"

#include <gtest/gtest.h>

namespace instaface::bot {
namespace {

using nlohmann::json;

TEST(QueryAnswerTest, ABareArrayIsTheTrees) {
  json answer = json::parse(R"([{"id": 7, "posted": []}])");
  const json* trees = QueryAnswerEntities(answer);
  ASSERT_NE(trees, nullptr);
  EXPECT_EQ(trees, &answer);
}

TEST(QueryAnswerTest, TheEnvelopesEntitiesAreTheTrees) {
  json answer = json::parse(R"({"stats": {"queries": 2}, "entities": [{"id": 7}]})");
  const json* trees = QueryAnswerEntities(answer);
  ASSERT_NE(trees, nullptr);
  EXPECT_EQ(*trees, answer["entities"]);
}

TEST(QueryAnswerTest, AnEmptyAnswerOfEitherFormHasNoTrees) {
  json bare = json::array();
  json envelope = json::parse(R"({"stats": {}, "entities": []})");
  ASSERT_NE(QueryAnswerEntities(bare), nullptr);
  ASSERT_NE(QueryAnswerEntities(envelope), nullptr);
  EXPECT_TRUE(QueryAnswerEntities(envelope)->empty());
}

TEST(QueryAnswerTest, AnythingElseIsRefused) {
  for (const char* text : {R"({"stats": {}})", R"({"entities": {"id": 7}})", R"({"error": "no"})",
                           "7", R"("x")", "null"}) {
    json answer = json::parse(text);
    EXPECT_EQ(QueryAnswerEntities(answer), nullptr) << text;
  }
}

}  // namespace
}  // namespace instaface::bot

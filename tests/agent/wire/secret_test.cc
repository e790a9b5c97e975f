#include "instaface/wire/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace instaface::wire {
namespace {

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/instaface-secret-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::remove(path().c_str());
    rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/secret"; }
  void Write(const std::string& content) {
    std::ofstream out(path(), std::ios::binary | std::ios::trunc);
    out << content;
  }
  std::string dir_;
};

TEST_F(SecretFileTest, TrimsTrailingNewlinesOnly) {
  Write(" a b\nc\r\n\n");
  auto secret = LoadSecretFile(path());
  ASSERT_TRUE(secret.ok()) << secret.status().message();
  EXPECT_EQ(*secret, " a b\nc");
}

TEST_F(SecretFileTest, KeepsBinaryBytes) {
  Write(std::string("k\0y", 3));
  auto secret = LoadSecretFile(path());
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(*secret, std::string("k\0y", 3));
}

TEST_F(SecretFileTest, EmptyFileIsAnError) {
  Write("\n");
  auto secret = LoadSecretFile(path());
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.status().message().find("empty"), std::string::npos);
}

TEST_F(SecretFileTest, MissingFileIsAnErrorNamingIt) {
  auto secret = LoadSecretFile(dir_ + "/absent");
  ASSERT_FALSE(secret.ok());
  EXPECT_NE(secret.status().message().find("absent"), std::string::npos);
}

}  // namespace
}  // namespace instaface::wire

#include "instaface/state/state_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace instaface::state {
namespace {

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/instaface-state-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  std::string dir_;
};

TEST_F(StateStoreTest, FirstStartLoadsZeroState) {
  auto store = StateStore::Open(dir_ + "/node");
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(*state, election::HardState{});
}

TEST_F(StateStoreTest, SaveThenLoadAcrossReopen) {
  election::HardState saved{42, "node-b"};
  {
    auto store = StateStore::Open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Save({7, "node-a"}).ok());
    ASSERT_TRUE((*store)->Save(saved).ok());
  }
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(*state, saved);
  // The temporary file does not outlive a successful save.
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/hard_state.tmp"));
  struct stat st {};
  ASSERT_EQ(::stat((*store)->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A crash between writing the temporary file and the rename leaves the old state in force.
TEST_F(StateStoreTest, LeftoverTemporaryFileDoesNotReplaceState) {
  {
    auto store = StateStore::Open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Save({5, "a"}).ok());
  }
  WriteFile(dir_ + "/hard_state.tmp", StateStore::Encode({9, "b"}).substr(0, 7));
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, (election::HardState{5, "a"}));
  ASSERT_TRUE((*store)->Save({6, ""}).ok());
  EXPECT_EQ(*(*store)->Load(), (election::HardState{6, ""}));
}

TEST_F(StateStoreTest, CorruptFileIsAnErrorNotZero) {
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Save({42, "node-b"}).ok());
  const std::string good = ReadFile((*store)->path());

  // Every single-bit flip and every truncation is detected.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    WriteFile((*store)->path(), bad);
    auto state = (*store)->Load();
    ASSERT_FALSE(state.ok()) << "flip at " << i;
    EXPECT_NE(state.status().message().find("corrupt state file"), std::string::npos);
  }
  for (size_t n = 0; n < good.size(); ++n) {
    WriteFile((*store)->path(), good.substr(0, n));
    EXPECT_FALSE((*store)->Load().ok()) << "truncated to " << n;
  }
  WriteFile((*store)->path(), good + "x");
  EXPECT_FALSE((*store)->Load().ok());
}

TEST_F(StateStoreTest, SecondOpenOfTheSameDirectoryIsRefused) {
  auto first = StateStore::Open(dir_);
  ASSERT_TRUE(first.ok());
  auto second = StateStore::Open(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

TEST_F(StateStoreTest, UnusableDirectoryIsAnError) {
  EXPECT_FALSE(StateStore::Open("").ok());
  EXPECT_FALSE(StateStore::Open(dir_ + "/missing/parent").ok());
}

}  // namespace
}  // namespace instaface::state

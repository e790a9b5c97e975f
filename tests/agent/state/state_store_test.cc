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

// Damage to one copy loses nothing: the other holds the same state. Damage to both, and every
// truncation, is an error, never a zero state.
TEST_F(StateStoreTest, OneDamagedCopyLoadsTheOtherAndTwoAreAnError) {
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Save({41, "node-a"}).ok());
  ASSERT_TRUE((*store)->Save({42, "node-b"}).ok());
  const std::string good = ReadFile((*store)->path());
  ASSERT_EQ(good.size(), 256u);
  const size_t half = good.size() / 2;
  for (size_t i = 0; i < half; ++i) {
    std::string one = good;
    one[i] = static_cast<char>(one[i] ^ 0x10);
    WriteFile((*store)->path(), one);
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok()) << "flip at " << i << ": " << state.status().message();
    EXPECT_EQ(*state, (election::HardState{42, "node-b"})) << "flip at " << i;
    std::string both = one;
    both[half + i] = static_cast<char>(both[half + i] ^ 0x10);
    WriteFile((*store)->path(), both);
    auto none = (*store)->Load();
    ASSERT_FALSE(none.ok()) << "flips at " << i << " and " << half + i;
    EXPECT_NE(none.status().message().find("corrupt state file"), std::string::npos);
  }
  for (size_t n = 0; n < good.size(); ++n) {
    WriteFile((*store)->path(), good.substr(0, n));
    EXPECT_FALSE((*store)->Load().ok()) << "truncated to " << n;
  }
  WriteFile((*store)->path(), good + "x");
  EXPECT_FALSE((*store)->Load().ok());
}

// A crash inside a save tears at most the copy being written. Torn in the first copy: the
// second still holds the state before the save. Torn in the second: the first holds the new
// state. Either way the node comes back with a state it had saved, never a mix.
TEST_F(StateStoreTest, ACrashInsideASaveLeavesTheStateBeforeOrAfterIt) {
  std::string before, after;
  {
    auto store = StateStore::Open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Load().ok());
    ASSERT_TRUE((*store)->Save({5, "a"}).ok());
    ASSERT_TRUE((*store)->Save({6, "b"}).ok());  // in place
    before = ReadFile((*store)->path());
    ASSERT_TRUE((*store)->Save({7, "c"}).ok());
    after = ReadFile((*store)->path());
  }
  const std::string torn(128, '\x5a');
  const std::string path = dir_ + "/hard_state";
  for (const auto& [file, expected] :
       {std::pair{torn + before.substr(128), election::HardState{6, "b"}},
        std::pair{after.substr(0, 128) + torn, election::HardState{7, "c"}},
        std::pair{after.substr(0, 128) + before.substr(128), election::HardState{7, "c"}}}) {
    WriteFile(path, file);
    auto store = StateStore::Open(dir_);
    ASSERT_TRUE(store.ok());
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok()) << state.status().message();
    EXPECT_EQ(*state, expected);
    // Saves go on from there, and a later reopen sees the newest.
    ASSERT_TRUE((*store)->Save({expected.term + 1, "d"}).ok());
    ASSERT_TRUE((*store)->Save({expected.term + 2, "e"}).ok());
    EXPECT_EQ(*(*store)->Load(), (election::HardState{expected.term + 2, "e"}));
  }
}

// A file written by an agent before the two copies is read, and replaced at start, so that no
// save on an election's path has to write a whole file.
TEST_F(StateStoreTest, AVersionOneFileIsReadAndReplacedAtLoad) {
  WriteFile(dir_ + "/hard_state", StateStore::EncodeVersion1({9, "old"}));
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_EQ(*state, (election::HardState{9, "old"}));
  EXPECT_EQ(ReadFile((*store)->path()), StateStore::Encode({9, "old"}));
  ASSERT_TRUE((*store)->Save({10, ""}).ok());
  EXPECT_EQ(*(*store)->Load(), (election::HardState{10, ""}));
}

// Every save leaves both copies holding its state (the second one unsynced), and a file whose
// newer copy is its second, as a crash between a save's sync and its second copy leaves it,
// loads that newer copy and saves on from it.
TEST_F(StateStoreTest, ASaveLeavesBothCopiesTheSameAndANewerSecondCopyWins) {
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());  // a first start: the zero state, written whole
  EXPECT_EQ(ReadFile((*store)->path()), StateStore::Encode({}));
  ASSERT_TRUE((*store)->Save({5, "a"}).ok());
  const std::string five = ReadFile((*store)->path());
  EXPECT_EQ(five.substr(0, 128), five.substr(128));
  ASSERT_TRUE((*store)->Save({6, "b"}).ok());
  const std::string six = ReadFile((*store)->path());
  EXPECT_EQ(six.substr(0, 128), six.substr(128));
  WriteFile((*store)->path(), five.substr(0, 128) + six.substr(128));
  EXPECT_EQ(*(*store)->Load(), (election::HardState{6, "b"}));
  ASSERT_TRUE((*store)->Save({7, "c"}).ok());
  EXPECT_EQ(*(*store)->Load(), (election::HardState{7, "c"}));
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

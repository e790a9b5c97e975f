// The promise record outlives its process and nothing else: a kill -9 keeps it, another boot
// (or a foreign file, or none) is not trusted.
#include "instaface/state/promise_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace instaface::state {
namespace {

class PromiseFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/promise-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<PromiseFile> Open(const std::string& boot) {
    auto opened = PromiseFile::OpenForBoot(dir_, boot);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    return opened.ok() ? std::move(*opened) : nullptr;
  }

  std::string dir_;
};

TEST_F(PromiseFileTest, AFirstStartFindsNothing) {
  auto file = Open("boot-a");
  ASSERT_TRUE(file);
  EXPECT_FALSE(file->earlier_until_ns().has_value());
}

TEST_F(PromiseFileTest, TheRecordSurvivesKillMinusNineOfItsWriter) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto opened = PromiseFile::OpenForBoot(dir_, "boot-a");
    if (!opened.ok()) ::_exit(2);
    (*opened)->Record(123456789);
    (*opened)->Record(223456789);
    ::raise(SIGKILL);  // no unmap, no close, no flush: what a crash leaves
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child could not open the file";
  auto file = Open("boot-a");
  ASSERT_TRUE(file);
  ASSERT_TRUE(file->earlier_until_ns().has_value());
  EXPECT_EQ(*file->earlier_until_ns(), 223456789);
}

TEST_F(PromiseFileTest, AnotherBootsRecordIsNotTrusted) {
  Open("boot-a")->Record(5000);
  auto after_reboot = Open("boot-b");
  ASSERT_TRUE(after_reboot);
  EXPECT_FALSE(after_reboot->earlier_until_ns().has_value());
  // Until this boot writes its own.
  after_reboot->Record(7000);
  after_reboot.reset();
  auto again = Open("boot-b");
  ASSERT_TRUE(again && again->earlier_until_ns().has_value());
  EXPECT_EQ(*again->earlier_until_ns(), 7000);
  EXPECT_FALSE(Open("boot-a")->earlier_until_ns().has_value());
}

TEST_F(PromiseFileTest, AForeignFileIsNotTrustedAndIsTakenOver) {
  {
    std::ofstream out(dir_ + "/promises", std::ios::binary);
    out << std::string(4096, '\x5a');
  }
  auto file = Open("boot-a");
  ASSERT_TRUE(file);
  EXPECT_FALSE(file->earlier_until_ns().has_value());
  file->Record(42);
  file.reset();
  EXPECT_EQ(Open("boot-a")->earlier_until_ns().value_or(-1), 42);
}

TEST_F(PromiseFileTest, AnUnknownBootIsNeverTrusted) {
  Open("")->Record(42);
  EXPECT_FALSE(Open("")->earlier_until_ns().has_value());
}

TEST_F(PromiseFileTest, ThisBootHasAnIdentity) {
  const std::string boot = PromiseFile::CurrentBoot();
  EXPECT_GE(boot.size(), 36u) << "no /proc/sys/kernel/random/boot_id?";
  EXPECT_EQ(boot, PromiseFile::CurrentBoot());
}

TEST_F(PromiseFileTest, AnUnwritableDirectoryIsAClearError) {
  auto opened = PromiseFile::Open(dir_ + "/missing/deeper");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("promises"), std::string::npos);
}

}  // namespace
}  // namespace instaface::state

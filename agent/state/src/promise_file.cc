#include "instaface/state/promise_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace instaface::state {
namespace {

constexpr char kFileName[] = "promises";
constexpr char kMagic[8] = {'I', 'F', 'P', 'R', 'O', 'M', '1', '\n'};
constexpr size_t kBootBytes = 64;
constexpr size_t kFileBytes = 4096;  // one page: the mapping's unit

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return in ? text.str() : std::string();
}

}  // namespace

// The file's first bytes. `until_ns` is naturally aligned, so a store to it is never torn.
struct PromiseFile::Layout {
  char magic[8];
  char boot[kBootBytes];  // CurrentBoot(), NUL-padded
  std::atomic<int64_t> until_ns;
};
static_assert(std::atomic<int64_t>::is_always_lock_free);

std::string PromiseFile::CurrentBoot() {
  std::string boot = ReadSmallFile("/proc/sys/kernel/random/boot_id");
  while (!boot.empty() && (boot.back() == '\n' || boot.back() == ' ')) boot.pop_back();
  if (boot.empty()) return boot;  // unknown: nothing recorded is ever trusted
  // A time namespace (a container's own CLOCK_BOOTTIME offset) moves every reading: fold its
  // offsets in, so that a record is trusted only on the clock it was written on.
  const std::string offsets = ReadSmallFile("/proc/self/timens_offsets");
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : offsets) hash = (hash ^ c) * 0x100000001b3ULL;
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "|%016llx", static_cast<unsigned long long>(hash));
  boot += suffix;
  if (boot.size() >= kBootBytes) boot.resize(kBootBytes - 1);
  return boot;
}

common::StatusOr<std::unique_ptr<PromiseFile>> PromiseFile::Open(const std::string& dir) {
  return OpenForBoot(dir, CurrentBoot());
}

common::StatusOr<std::unique_ptr<PromiseFile>> PromiseFile::OpenForBoot(const std::string& dir,
                                                                        const std::string& boot) {
  const std::string path = dir + "/" + kFileName;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return common::Status::Error(Errno("open", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 ||
      (static_cast<size_t>(st.st_size) < kFileBytes && ::ftruncate(fd, kFileBytes) != 0)) {
    common::Status error = common::Status::Error(Errno("size", path));
    ::close(fd);
    return error;
  }
  void* mapped = ::mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) {
    common::Status error = common::Status::Error(Errno("map", path));
    ::close(fd);
    return error;
  }
  static_assert(sizeof(Layout) <= kFileBytes);
  auto* layout = static_cast<Layout*>(mapped);
  char expected[kBootBytes] = {};
  std::memcpy(expected, boot.data(), std::min(boot.size(), kBootBytes - 1));
  std::optional<int64_t> earlier;
  const bool trusted = !boot.empty() && std::memcmp(layout->magic, kMagic, sizeof kMagic) == 0 &&
                       std::memcmp(layout->boot, expected, kBootBytes) == 0;
  if (trusted) earlier = layout->until_ns.load(std::memory_order_acquire);
  auto file = std::unique_ptr<PromiseFile>(new PromiseFile(path, fd, layout, earlier));
  std::memcpy(file->boot_, expected, kBootBytes);
  file->claimed_ = trusted;
  return file;
}

PromiseFile::PromiseFile(std::string path, int fd, Layout* layout, std::optional<int64_t> earlier)
    : path_(std::move(path)), fd_(fd), layout_(layout), earlier_(earlier) {}

PromiseFile::~PromiseFile() {
  ::munmap(layout_, kFileBytes);
  ::close(fd_);
}

void PromiseFile::Record(int64_t until_ns) {
  if (claimed_) {
    layout_->until_ns.store(until_ns, std::memory_order_release);
    return;
  }
  // The first record of a file another boot wrote (or nobody): the time first, then whose it
  // is. A death between the two leaves a record of the other boot, which is not trusted: the
  // next start waits the whole window, as this one did.
  layout_->until_ns.store(until_ns, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::memcpy(layout_->boot, boot_, kBootBytes);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::memcpy(layout_->magic, kMagic, sizeof kMagic);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  claimed_ = true;
}

}  // namespace instaface::state

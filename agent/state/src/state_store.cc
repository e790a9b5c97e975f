#include "instaface/state/state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace instaface::state {
namespace {

using common::Status;

// Layout (little-endian): u32 magic "IFST" | u32 version | u64 term | u8 voted_len |
// voted_for | u32 CRC-32 of every byte before it.
constexpr uint32_t kMagic = 0x54534649;
constexpr uint32_t kVersion = 1;
constexpr char kFileName[] = "hard_state";
constexpr char kTempName[] = "hard_state.tmp";
constexpr char kLockName[] = "lock";

uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(const std::string& in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Closes a descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace

std::string StateStore::Encode(const election::HardState& state) {
  std::string out;
  PutLe(out, kMagic, 4);
  PutLe(out, kVersion, 4);
  PutLe(out, state.term, 8);
  const size_t n = std::min(state.voted_for.size(), election::kMaxNodeIdLength);
  PutLe(out, n, 1);
  out.append(state.voted_for, 0, n);
  PutLe(out, Crc32(out), 4);
  return out;
}

common::StatusOr<election::HardState> StateStore::Decode(const std::string& bytes) {
  constexpr size_t kFixed = 4 + 4 + 8 + 1 + 4;
  if (bytes.size() < kFixed)
    return Status::Error("truncated (" + std::to_string(bytes.size()) + " bytes)");
  if (GetLe(bytes, 0, 4) != kMagic) return Status::Error("not a state file (bad magic)");
  if (GetLe(bytes, 4, 4) != kVersion) {
    return Status::Error("unsupported version " + std::to_string(GetLe(bytes, 4, 4)));
  }
  const size_t n = static_cast<size_t>(GetLe(bytes, 16, 1));
  if (n > election::kMaxNodeIdLength) return Status::Error("voted_for too long");
  if (bytes.size() != kFixed + n) return Status::Error("wrong length");
  const std::string body = bytes.substr(0, bytes.size() - 4);
  if (GetLe(bytes, bytes.size() - 4, 4) != Crc32(body)) return Status::Error("checksum mismatch");
  election::HardState state;
  state.term = GetLe(bytes, 8, 8);
  state.voted_for = bytes.substr(17, n);
  return state;
}

common::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir) {
  if (dir.empty()) return Status::Error("no state directory given (--state-dir)");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Error(Errno("cannot create state directory", dir));
  }
  const std::string lock_path = dir + "/" + kLockName;
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock.get() < 0) return Status::Error(Errno("cannot open", lock_path));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return Status::Error("state directory " + dir + " is in use by another agent");
  }
  return std::unique_ptr<StateStore>(new StateStore(dir, lock.release()));
}

StateStore::StateStore(std::string dir, int lock_fd)
    : dir_(std::move(dir)),
      path_(dir_ + "/" + kFileName),
      temp_path_(dir_ + "/" + kTempName),
      lock_fd_(lock_fd) {}

StateStore::~StateStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

common::StatusOr<election::HardState> StateStore::Load() const {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return election::HardState{};
    return Status::Error(Errno("cannot open state file", path_));
  }
  std::string bytes;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Error(Errno("cannot read state file", path_));
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > 4096) break;  // far larger than any valid file; Decode rejects it
  }
  auto state = Decode(bytes);
  if (!state.ok()) {
    return Status::Error("corrupt state file " + path_ + ": " + state.status().message() +
                         " (refusing to start with a forgotten vote; move the file away only "
                         "if this node's old votes cannot matter)");
  }
  return state;
}

common::Status StateStore::Save(const election::HardState& state) {
  const std::string bytes = Encode(state);
  {
    Fd fd(::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) return Status::Error(Errno("cannot create", temp_path_));
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::Error(Errno("cannot write", temp_path_));
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return Status::Error(Errno("cannot fsync", temp_path_));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return Status::Error(Errno("cannot rename onto", path_));
  }
  // The rename is only durable once the directory entry is.
  Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return Status::Error(Errno("cannot open directory", dir_));
  if (::fsync(dir.get()) != 0) return Status::Error(Errno("cannot fsync directory", dir_));
  return Status::Ok();
}

}  // namespace instaface::state

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

// Version 1 (read, never written): u32 magic "IFST" | u32 version | u64 term | u8 voted_len |
// voted_for | u32 CRC-32 of every byte before it.
constexpr uint32_t kMagic = 0x54534649;
constexpr uint32_t kVersion = 1;
// Version 2: two copies of one fixed record, kRecordBytes each, little-endian:
// u32 magic "IFS2" | u32 version | u64 sequence | u64 term | u8 voted_len | voted_for | zeros |
// u32 CRC-32 of the record's first kRecordBytes - 4 bytes.
constexpr uint32_t kMagic2 = 0x32534649;
constexpr uint32_t kVersion2 = 2;
constexpr size_t kRecordBytes = 128;
constexpr size_t kFileBytes = 2 * kRecordBytes;
static_assert(4 + 4 + 8 + 8 + 1 + election::kMaxNodeIdLength + 4 <= kRecordBytes);
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

std::string Record(uint64_t sequence, const election::HardState& state) {
  std::string out;
  PutLe(out, kMagic2, 4);
  PutLe(out, kVersion2, 4);
  PutLe(out, sequence, 8);
  PutLe(out, state.term, 8);
  const size_t n = std::min(state.voted_for.size(), election::kMaxNodeIdLength);
  PutLe(out, n, 1);
  out.append(state.voted_for, 0, n);
  out.resize(kRecordBytes - 4, '\0');
  PutLe(out, Crc32(out), 4);
  return out;
}

struct Copy {
  uint64_t sequence = 0;
  election::HardState state;
};

// One record, or why it is not one.
common::StatusOr<Copy> ParseRecord(const std::string& record) {
  if (GetLe(record, kRecordBytes - 4, 4) != Crc32(record.substr(0, kRecordBytes - 4))) {
    return Status::Error("checksum mismatch");
  }
  if (GetLe(record, 0, 4) != kMagic2) return Status::Error("bad magic");
  if (GetLe(record, 4, 4) != kVersion2) {
    return Status::Error("unsupported version " + std::to_string(GetLe(record, 4, 4)));
  }
  const size_t n = static_cast<size_t>(GetLe(record, 24, 1));
  if (n > election::kMaxNodeIdLength) return Status::Error("voted_for too long");
  if (record.find_first_not_of('\0', 25 + n) < kRecordBytes - 4) {
    return Status::Error("bytes after voted_for");
  }
  Copy copy;
  copy.sequence = GetLe(record, 8, 8);
  copy.state.term = GetLe(record, 16, 8);
  copy.state.voted_for = record.substr(25, n);
  return copy;
}

// The newer of a file's two copies, and which slot holds it (0 when both hold the same). A save
// writes the slot that does not hold the newest state and syncs it: a crash tears at most that
// one, and the other holds the state before the save. It then copies the new record into the
// other slot too, unsynced: once the page cache writes it back, both copies hold the same state
// and damage to one later loses nothing.
struct Newest {
  Copy copy;
  int slot = 0;
};
common::StatusOr<Newest> ParseFile(const std::string& bytes) {
  common::StatusOr<Copy> first = ParseRecord(bytes.substr(0, kRecordBytes));
  common::StatusOr<Copy> second = ParseRecord(bytes.substr(kRecordBytes, kRecordBytes));
  if (!first.ok() && !second.ok()) {
    return Status::Error("both copies are damaged (" + first.status().message() + "; " +
                         second.status().message() + ")");
  }
  if (!second.ok() || (first.ok() && first->sequence >= second->sequence)) {
    return Newest{*first, 0};
  }
  return Newest{*second, 1};
}

}  // namespace

std::string StateStore::Encode(const election::HardState& state) {
  const std::string record = Record(1, state);
  return record + record;
}

std::string StateStore::EncodeVersion1(const election::HardState& state) {
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
  if (bytes.size() == kFileBytes) {
    common::StatusOr<Newest> newest = ParseFile(bytes);
    if (!newest.ok()) return newest.status();
    return newest->copy.state;
  }
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
  if (file_fd_ >= 0) ::close(file_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

common::StatusOr<election::HardState> StateStore::Load() {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno != ENOENT) return Status::Error(Errno("cannot open state file", path_));
    // A first start: the zero state, written whole now (see below).
    if (common::Status st = WriteWhole(election::HardState{}); !st.ok()) return st;
    return election::HardState{};
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
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = -1;
  if (bytes.size() == kFileBytes) {
    const Newest newest = *ParseFile(bytes);
    sequence_ = newest.copy.sequence;
    newest_slot_ = newest.slot;
    file_fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (file_fd_ < 0) return Status::Error(Errno("cannot open", path_));
    // What was read may be the page cache's: an earlier process's unsynced second copy, equal
    // to its synced newest one. Made durable now, at start, so that the next save, which writes
    // the slot Load takes for the older, never overwrites the only durable copy of a save.
    if (::fdatasync(file_fd_) != 0) return Status::Error(Errno("cannot fdatasync", path_));
    return state;
  }
  // A first start, or a version-1 file: the whole file is written now, at start, so that every
  // save on an election's path is one record written in place and one data sync.
  if (common::Status st = WriteWhole(*state); !st.ok()) return st;
  return state;
}

common::Status StateStore::WriteWhole(const election::HardState& state) {
  ++sequence_;
  const std::string record = Record(sequence_, state);
  const std::string bytes = record + record;
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
  // Put in place by rename, atomic whatever was there before; durable once the directory is.
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return Status::Error(Errno("cannot rename onto", path_));
  }
  Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return Status::Error(Errno("cannot open directory", dir_));
  if (::fsync(dir.get()) != 0) return Status::Error(Errno("cannot fsync directory", dir_));
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (file_fd_ < 0) return Status::Error(Errno("cannot open", path_));
  newest_slot_ = 0;  // both copies the same
  return Status::Ok();
}

common::Status StateStore::Save(const election::HardState& state) {
  if (file_fd_ < 0) return WriteWhole(state);  // saved before any Load (tests, tools)
  ++sequence_;
  const std::string record = Record(sequence_, state);
  // In place, into the slot that does not hold the newest state, then one data sync: the
  // file's size never changes, so fdatasync flushes the data alone, with no journal commit.
  const int slot = 1 - newest_slot_;
  if (::pwrite(file_fd_, record.data(), record.size(), slot * static_cast<off_t>(kRecordBytes)) !=
      static_cast<ssize_t>(record.size())) {
    return Status::Error(Errno("cannot write", path_));
  }
  if (::fdatasync(file_fd_) != 0) return Status::Error(Errno("cannot fdatasync", path_));
  newest_slot_ = slot;
  // The second copy, left to the page cache: the save is durable without it, and the next save
  // overwrites this slot first. A failure here loses nothing (ParseFile), so it is not one.
  (void)::pwrite(file_fd_, record.data(), record.size(),
                 (1 - slot) * static_cast<off_t>(kRecordBytes));
  return Status::Ok();
}

}  // namespace instaface::state

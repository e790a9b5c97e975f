// When this node's lease promises end (runtime::PromiseRecord), kept in a small file of the
// state directory that the agent maps into memory. A store into a shared file mapping is in the
// kernel's page cache the moment it is made, so it survives the process's death (kill -9, a
// crash, an abort) with no system call and no sync on the path of any message; only the
// machine's end loses it. The record therefore names the boot it was written in
// (/proc/sys/kernel/random/boot_id, and the time namespace's clock offsets, since its times are
// CLOCK_BOOTTIME readings): a record of another boot, a torn or foreign file, or none at all is
// not trusted, and the restarted node then waits out a whole election_min, as before.
//
// Why it matters: a restarted node cannot name the leader whose heartbeat it may have acked just
// before it died, so it refuses votes until that promise could have ended. Without the record
// that is election_min from the restart; with it, exactly as long as the promises made, which is
// nothing at all for a node that was leading (its own app's lease ended with the process: the
// life lock). A leader killed and restarted can then vote in the next failover at once.
//
// Thread safety: none; one thread (the driver) records. Open it after StateStore::Open, whose
// lock on the directory keeps a second agent away from the file too.
#ifndef INSTAFACE_STATE_PROMISE_FILE_H_
#define INSTAFACE_STATE_PROMISE_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "instaface/common/status.h"

namespace instaface::state {

class PromiseFile {
 public:
  // Creates `dir`/promises if needed and maps it; reads what an earlier process left.
  static common::StatusOr<std::unique_ptr<PromiseFile>> Open(const std::string& dir);
  // As Open, with the boot's identity given (tests: a reboot is a different identity).
  static common::StatusOr<std::unique_ptr<PromiseFile>> OpenForBoot(const std::string& dir,
                                                                    const std::string& boot);
  ~PromiseFile();
  PromiseFile(const PromiseFile&) = delete;
  PromiseFile& operator=(const PromiseFile&) = delete;

  // What an earlier process recorded in this boot (lease clock ns), as found at Open.
  std::optional<int64_t> earlier_until_ns() const { return earlier_; }
  // Records that no promise lasts past `until_ns`: one store into the mapping.
  void Record(int64_t until_ns);

  const std::string& path() const { return path_; }
  // This boot's identity as Open reads it: boot id and time-namespace offsets.
  static std::string CurrentBoot();

 private:
  struct Layout;
  PromiseFile(std::string path, int fd, Layout* layout, std::optional<int64_t> earlier);
  std::string path_;
  int fd_;
  Layout* layout_;
  std::optional<int64_t> earlier_;
  char boot_[64] = {};    // this boot's identity, as the file stores it
  bool claimed_ = false;  // the file names this boot (trusted at Open, or written since)
};

}  // namespace instaface::state

#endif  // INSTAFACE_STATE_PROMISE_FILE_H_

// Durable (term, voted_for) of one node, kept in a directory (--state-dir).
//
// The file holds two copies of one fixed-size, checksummed record with a sequence number. A
// Save() writes the copy that does not hold the newest state, in place, and fdatasyncs it: one
// small data sync on the path of every election, where a new file, its rename and the
// directory's fsync cost several journal commits (2.5 to 2.8 times as long, measured side by
// side here), and two syncs (one per copy) twice as long. A crash tears at most the copy being
// written; the other holds the state before that save, never a mix, and the newer valid copy
// wins. The save then copies its record into the other slot too, without a sync: once the page
// cache has written it back, both copies hold the same state, so damage to one later loses
// nothing. The whole file is written (a new file renamed into place, which also replaces a
// version-1 file, still read) by Load() at start when it is missing or old, not by a save.
//
// Load() validates what it reads (magic, version, lengths, checksums): a file with no valid
// copy is an error naming the file, never a silent zero — a node that forgot its vote could
// vote twice. A missing file means a first start and loads as the zero state.
//
// Open() takes an exclusive flock on the directory so that two agents cannot share it.
//
// Thread safety: none; one thread (the driver) owns a StateStore.
#ifndef INSTAFACE_STATE_STATE_STORE_H_
#define INSTAFACE_STATE_STATE_STORE_H_

#include <memory>
#include <string>

#include "instaface/common/status.h"
#include "instaface/election/election.h"

namespace instaface::state {

class StateStore {
 public:
  // Creates `dir` if needed (one level) and locks it.
  static common::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  common::StatusOr<election::HardState> Load();
  common::Status Save(const election::HardState& state);

  const std::string& path() const { return path_; }

  // The file format, exposed for tests and tools: Encode writes version 2 (both copies the
  // same), Decode reads either version.
  static std::string Encode(const election::HardState& state);
  static std::string EncodeVersion1(const election::HardState& state);
  static common::StatusOr<election::HardState> Decode(const std::string& bytes);

 private:
  StateStore(std::string dir, int lock_fd);
  // A whole new file holding `state` in both copies, renamed into place.
  common::Status WriteWhole(const election::HardState& state);
  std::string dir_;
  std::string path_;
  std::string temp_path_;
  int lock_fd_;
  int file_fd_ = -1;       // the state file, open for saves in place once loaded or written
  uint64_t sequence_ = 0;  // of the newest copy loaded or saved
  int newest_slot_ = 0;    // which copy holds it (0 when both do)
};

}  // namespace instaface::state

#endif  // INSTAFACE_STATE_STATE_STORE_H_

// Durable (term, voted_for) of one node, kept in a directory (--state-dir).
//
// Save() writes the whole state to a temporary file, fsyncs it, renames it over the old one and
// fsyncs the directory, so after a crash the file holds either the old or the new state, never
// a mix. Load() validates what it reads (magic, version, lengths, checksum): a corrupt file is
// an error naming the file, never a silent zero — a node that forgot its vote could vote twice.
// A missing file means a first start and loads as the zero state.
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

  common::StatusOr<election::HardState> Load() const;
  common::Status Save(const election::HardState& state);

  const std::string& path() const { return path_; }

  // The file format, exposed for tests and tools.
  static std::string Encode(const election::HardState& state);
  static common::StatusOr<election::HardState> Decode(const std::string& bytes);

 private:
  StateStore(std::string dir, int lock_fd);
  std::string dir_;
  std::string path_;
  std::string temp_path_;
  int lock_fd_;
};

}  // namespace instaface::state

#endif  // INSTAFACE_STATE_STATE_STORE_H_

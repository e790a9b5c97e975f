// AppPresence: the app tells its agent that it is alive, so that leadership follows a live app.
//
// An agent whose app has died or hung would otherwise go on leading, and every write would fail
// until the app came back. With AppPresence the app keeps a small record of its own beside the
// agent's segment ("<segment>.app", shm_layout.h AppRecord): it holds a robust lock in it for as
// long as it runs, and stamps it with the lease clock every `period`. The agent reads both words
// without a system call. A killed app's lock is marked owner-died by the kernel the moment the
// process exits; a hung app's stamp ages. An agent started with --app-liveness-ms N treats its
// app as gone when its lock is, or its stamp is older than N: it hands leadership to a peer and
// does not stand for election until the app is back. Agents without the flag ignore the record.
//
// Destroying the AppPresence (a graceful stop) releases the lock, which the agent also reads as
// gone: leadership moves before the app stops answering.
//
//   auto presence = instaface::AppPresence::Register("instaface-node-a");
//   if (!presence.ok()) { /* presence.error() says why; leadership will not follow this app */ }
//
// AppPresenceReader is the agent's side.
//
// Thread safety: AppPresence runs its own threads; create and destroy it on one thread.
// AppPresenceReader::Alive may be called from any thread.
#ifndef INSTAFACE_APP_PRESENCE_H_
#define INSTAFACE_APP_PRESENCE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "instaface/result.h"

namespace instaface {

class AppPresence {
 public:
  // Creates or takes over "<agent_segment>.app" and starts stamping it. Fails when another live
  // process holds it, or the segment cannot be made.
  static Result<std::unique_ptr<AppPresence>> Register(
      const std::string& agent_segment,
      std::chrono::milliseconds period = std::chrono::milliseconds(25));
  ~AppPresence();
  AppPresence(const AppPresence&) = delete;
  AppPresence& operator=(const AppPresence&) = delete;

  const std::string& name() const;

 private:
  struct State;
  explicit AppPresence(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class AppPresenceReader {
 public:
  // Maps "<agent_segment>.app" read-only once it exists; until then Alive() is false and each
  // call to Refresh() looks again (one shm_open).
  explicit AppPresenceReader(std::string agent_segment);
  ~AppPresenceReader();
  AppPresenceReader(const AppPresenceReader&) = delete;
  AppPresenceReader& operator=(const AppPresenceReader&) = delete;

  // Opens the record if it is not open yet; a no-op once it is.
  void Refresh();
  // The app holds its lock and stamped within `max_age` of `now_ns` (the lease clock). Loads
  // only, no system call.
  bool Alive(uint64_t now_ns, std::chrono::nanoseconds max_age) const;
  bool open() const { return record_ != nullptr; }

 private:
  std::string name_;
  const void* record_ = nullptr;
};

}  // namespace instaface

#endif  // INSTAFACE_APP_PRESENCE_H_

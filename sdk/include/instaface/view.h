// libinstaface: read the leader that the local instaface-agent (or an embedded election)
// publishes, in nanoseconds and without a system call, or sleep until it changes.
//
//   auto view = instaface::View::Open("instaface-graph-0");   // the agent's --shm name
//   if (!view.ok()) { std::cerr << view.error() << "\n"; return 1; }
//   if (view->is_leader()) { ... act, fenced by view->snapshot().term ... }
//
// Thread safety: a View may be shared by any number of threads; all methods are const and
// lock-free for readers. Moving a View while others use it is not allowed.
#ifndef INSTAFACE_VIEW_H_
#define INSTAFACE_VIEW_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace instaface {

namespace shm {
struct Record;
}

enum class Role { kFollower = 0, kCandidate = 1, kLeader = 2 };
const char* RoleName(Role role);

// A consistent copy of the published state (never torn).
struct Snapshot {
  Role role = Role::kFollower;
  uint64_t term = 0;
  std::string self_id;
  std::string leader_id;           // empty when no leader is known
  std::string leader_peer_address;
  std::string leader_app_address;  // e.g. http://10.0.0.5:8080
  bool lease_valid = false;        // this node leads and its lease has not expired
  bool stale = false;              // the agent is dead or hung: trust nothing above
  uint32_t change_counter = 0;     // pass to View::WaitForChange
};

// A value or an error message, at the library boundary.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  static Result Error(std::string message) { return Result(ErrorTag{std::move(message)}); }
  bool ok() const { return v_.index() == 0; }
  const std::string& error() const { return std::get<1>(v_).message; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  struct ErrorTag {
    std::string message;
  };
  explicit Result(ErrorTag e) : v_(std::move(e)) {}
  std::variant<T, ErrorTag> v_;
};

class View {
 public:
  // Maps the agent's segment read-only. A missing segment, a foreign or truncated one, or an
  // incompatible layout version is an error naming the segment, never garbage.
  static Result<View> Open(const std::string& shm_name);
  // Reads a record that lives in this process (embedded mode). `owner` keeps it alive.
  static View FromRecord(const shm::Record* record, std::shared_ptr<const void> owner);

  View(View&&) noexcept;
  View& operator=(View&&) noexcept;
  ~View();

  // True only when this node leads, its lease is valid and the agent is alive.
  bool is_leader() const noexcept;
  Snapshot snapshot() const;
  // Sleeps (futex) until change_counter differs from `last_seen` or `timeout` passes. Returns
  // the current change counter (equal to last_seen on timeout).
  uint32_t WaitForChange(uint32_t last_seen, std::chrono::nanoseconds timeout) const;

 private:
  struct Mapping;
  View(const shm::Record* record, std::shared_ptr<const void> owner);
  const shm::Record* record_;
  std::shared_ptr<const void> owner_;
};

}  // namespace instaface

#endif  // INSTAFACE_VIEW_H_

// The writing side of the shared-memory record (shm_layout.h): instaface-agent publishes the
// election state through it, and an app that embeds the election publishes to its own View.
//
//   auto writer = instaface::shm::Writer::Create("instaface-graph-0", 0660, 1500ms);
//   writer->Publish(state);          // after every change of role, term, leader or lease
//   writer->StampLiveness(now_ns);   // every heartbeat period or more often
//
// Every time given to it (lease ends, stamps) must be on the lease clock, instaface/clock.h, so
// the election core that computes them runs on that clock: readers compare them with it, and a
// lease end from another clock would be off by the difference between the two.
//
// Thread safety: one writer thread per record (the agent's driver thread). Publish and
// StampLiveness never block and never wait for readers. Readers (View) may be anywhere.
#ifndef INSTAFACE_SHM_WRITER_H_
#define INSTAFACE_SHM_WRITER_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "instaface/clock.h"
#include "instaface/result.h"
#include "instaface/view.h"

namespace instaface::shm {

struct Record;

// What the agent publishes. Strings longer than their field (shm_layout.h: 63 bytes for ids,
// 191 for addresses) are cut at the field size, never overflowing it.
struct PublishedState {
  Role role = Role::kFollower;
  uint64_t term = 0;
  // Lease clock ns (instaface::LeaseClockNowNs()) until which this node's lease holds; 0 when
  // it holds none. Stored as given: readers compare it with the same clock.
  uint64_t lease_until_ns = 0;
  std::string self_id;
  std::string leader_id;
  std::string leader_peer_address;
  std::string leader_app_address;
};

class Writer {
 public:
  // Creates the named segment with `mode` (0600 or 0660), writes its header, publishes a
  // follower state in term 0 and stamps liveness. The segment becomes visible under its name
  // only once complete. A leftover compatible segment of a dead agent is taken over in place,
  // so that apps which still map it see the new agent without reopening; an incompatible one is
  // replaced. A segment whose agent is still alive (fresh stamp, running pid, or holding the
  // segment's life lock) is an error. The life lock (shm_layout.h) is held by a thread of the
  // writer's own until the segment is closed, so readers see at once when this process dies.
  static Result<Writer> Create(const std::string& shm_name, mode_t mode,
                               std::chrono::nanoseconds stale_after);
  // A record on the heap for embedded mode: the election runs inside the app, whose code reads
  // it through view().
  static Writer CreateInProcess(std::chrono::nanoseconds stale_after);

  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  // Unmaps; leaves the segment in place (readers see it go stale). See Unlink.
  ~Writer();

  void Publish(const PublishedState& state);
  // Stores a lease clock reading (instaface::LeaseClockNowNs()) as the agent's liveness stamp.
  // Tests pass old stamps on purpose.
  void StampLiveness(uint64_t lease_clock_now_ns);
  // Stamps LeaseClockNowNs().
  void StampLiveness();
  // Removes the segment's name (the agent's clean shutdown). Mapped readers keep their mapping.
  Status Unlink();

  // A reader of this writer's record, in this process.
  View view() const;
  // The POSIX name ("/..."), or empty for an in-process record.
  const std::string& name() const { return name_; }

 private:
  struct Segment;
  Writer(std::shared_ptr<Segment> segment, Record* record, std::string name);
  std::shared_ptr<Segment> segment_;  // shared with the Views from view()
  Record* record_;
  std::string name_;
};

}  // namespace instaface::shm

#endif  // INSTAFACE_SHM_WRITER_H_

// The nng transport between agents: every election message travels as one authenticated
// request (see instaface/wire/codec.h), asynchronously, so that nothing blocks the driver.
//
// Sending: one REQ socket per peer (a shared REQ socket would load-balance across peers instead
// of reaching each). Each peer has a small pool of request contexts; Send() takes a free one,
// starts the request and returns at once. The request and its reply each time out after
// `request_timeout` (kept below election_min), so a dead peer costs only that timeout and at
// most `requests_per_peer` contexts; while they are all busy, further messages to that peer are
// dropped and counted as failed. REQ's automatic resend is pushed beyond the timeout so a
// request is never delivered twice by nng itself.
//
// Receiving: a REP socket bound at `listen_url` with a pool of contexts. A request is decoded,
// authenticated and checked against the replay window inside the aio callback, handed to the
// `deliver` callback, and answered with an empty acknowledgement. A non-empty reply to one of
// our requests is decoded the same way, so a peer may answer with a message directly.
// Rejected bytes are dropped and counted by reason; they never reach `deliver`.
//
// `deliver` runs on nng's callback threads: it must not block (push to a queue and return) and
// must not call back into the Transport.
//
// Death: beside a tcp:// listener runs a DeathWatch (death_watch.h), whose port every frame
// advertises; WatchPeer names the one peer (the leader) whose process it watches, and
// `peer_died` hears of its death.
//
// Thread safety: Send(), SetPeers(), WatchPeer() and the counters may be called from any thread.
// The destructor stops every aio (waiting for running callbacks) before freeing anything.
#ifndef INSTAFACE_TRANSPORT_TRANSPORT_H_
#define INSTAFACE_TRANSPORT_TRANSPORT_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/election/message.h"
#include "instaface/transport/death_watch.h"
#include "instaface/wire/codec.h"
#include "instaface/wire/replay_window.h"

namespace instaface::transport {

struct TransportOptions {
  std::string listen_url;  // nng URL for the REP socket, e.g. tcp://0.0.0.0:7400 or ipc:///x
  std::string self_id;     // this node's id, which its death watch's hello names
  std::string cluster;
  std::string secret;
  std::chrono::milliseconds request_timeout{300};
  int reply_contexts = 8;
  int requests_per_peer = 4;
  // Longest pause between nng's redials of a peer that is not there (they start at 20 ms and
  // double): a restarted peer cannot be reached from here for up to this long once it is back,
  // and a vote it asks for would be answered only then.
  std::chrono::milliseconds reconnect_max{500};
  wire::ReplayWindowOptions replay;
  // Run a death watch (death_watch.h) beside a tcp:// listener, advertise its port in every
  // frame, and watch the peer named by WatchPeer. Not for ipc:// (a Unix socket's orderly close
  // cannot be told from its owner's).
  bool death_watch = true;
  uint16_t death_watch_port = 0;  // 0: any free port
};

struct PeerCounters {
  std::string id;
  std::string url;
  uint64_t sent = 0;    // requests the peer acknowledged
  uint64_t failed = 0;  // timed out, refused, or dropped because every context was busy
  // Lease-clock ns (instaface/clock.h) of the last acknowledgement; 0 when never.
  int64_t last_ack_ns = 0;
};

class Transport {
 public:
  using Deliver = std::function<void(election::Message message)>;
  // The watched peer's process is gone (DeathWatch::Died); runs on the watch's thread, with the
  // same rules as `deliver`.
  using PeerDied = std::function<void(const std::string& peer, int64_t observed_at_ns)>;

  // Binds `listen_url` and starts answering. Bad options or a failed bind are errors.
  static common::StatusOr<std::unique_ptr<Transport>> Start(TransportOptions options,
                                                            Deliver deliver,
                                                            PeerDied peer_died = nullptr);
  // Closes everything; the death watch's connections end in resets, no evidence of death.
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Closes everything as the destructor does, but ends the death watch's connections last and
  // in order (DeathWatch::EndInOrder), so that every peer watching this node sees it gone and
  // may stand at once. Only once this node's app can no longer see a lease of it, and with
  // nothing more to send. Idempotent; the destructor then has nothing left to do.
  void StopAsIfExited();

  // Replaces the peer set (id -> nng URL). New peers are dialed (without waiting: the dial
  // retries in the background), removed ones closed, and a peer whose URL changed redialed.
  void SetPeers(const std::map<std::string, std::string>& peers);

  // Watches `peer`'s process for its death from now on (empty: nobody): at its advertised
  // death-watch port, on the host of its URL. Only one peer is watched: the leader.
  void WatchPeer(const std::string& peer);

  // Sends `message` to message.to. Returns false when that peer is unknown, blocked, or every
  // one of its request contexts is busy (counted as failed).
  bool Send(const election::Message& message);

  // Fault injection, as a firewall between this node and each of `peers` would act: nothing is
  // sent to them, and their requests are neither delivered nor answered, so they time out on
  // their side. Replaces the previous set; empty unblocks everyone.
  void SetBlocked(std::set<std::string> peers);

  std::vector<PeerCounters> peer_counters() const;
  std::array<uint64_t, wire::kRejectReasonCount> rejected() const;
  uint64_t delivered() const;
  DeathWatchCounters death_watch_counters() const;  // zero without a death watch
  uint16_t death_watch_port() const;                // 0 without one
  // The URL actually bound; for tcp:// with port 0, the chosen port is filled in.
  const std::string& bound_url() const;

 private:
  struct Impl;
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::transport

#endif  // INSTAFACE_TRANSPORT_TRANSPORT_H_

// DeathWatch: evidence that a peer's process has ended, which a live process cannot produce
// however hung, slow or cut off it is.
//
// Every agent listens on a TCP port of its own (advertised in each election frame,
// wire/codec.h) and keeps every connection it accepts open, silently, for as long as it runs.
// A follower keeps one connection to its leader. When the leader's process exits, for any
// reason, its kernel closes that connection in order: a FIN, read here as end of stream. A
// firewall that rejects sends resets (or ICMP errors, which fail the connection), one that
// drops sends nothing, and a stopped or hung process's kernel keeps the connection as it is:
// none of them ends the stream. The agent's own code closes one in order at a single point,
// EndInOrder: at the end of a clean stop, when its app can no longer see a lease of it and it
// will send nothing more, the two things that a death guarantees and a peer's early vote rests
// on; every other close of ours is an abort (SO_LINGER 0, a reset). A proxy or middlebox that ends
// idle connections could say it too, so an end of stream is checked by redialing at once: evidence
// is an end of stream and then a refused connection (nothing listens on the port any more). A
// redial that is answered by the peer is no evidence; one that meets a reset or silence asks again,
// for a bound (a dying process's kernel closes its descriptors one by one, and its listening socket
// may still take a connection for a moment after the watched one ended), and none refused within it
// is no evidence either; the watch then starts over.
//
// Ordering with the app: the dying process's kernel marks the agent's life lock (the app stops
// seeing a lease, sdk/include/instaface/shm_layout.h) as it releases the memory, before it
// closes the files, so the evidence can reach a peer only after the app has stopped claiming.
//
// The connection is authenticated both ways that matter: the watcher sends a fresh nonce and
// the peer answers with an HMAC over the cluster, its id and that nonce (WatchHello), so that a
// watch never trusts whatever else may listen on a reused port. The watcher sends nothing
// else, and the peer reads exactly the nonce: a socket with unread bytes is reset at exit
// instead of closed, which would only withhold evidence.
//
// Thread safety: every public method may be called from any thread. `died` runs on the
// watch's own thread; it must not block or call back into the DeathWatch.
#ifndef INSTAFACE_TRANSPORT_DEATH_WATCH_H_
#define INSTAFACE_TRANSPORT_DEATH_WATCH_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "instaface/common/status.h"

namespace instaface::transport {

inline constexpr size_t kWatchNonceBytes = 16;
inline constexpr size_t kWatchHelloBytes = 4 + 1 + 1 + 64 + 32;  // magic, version, id, MAC

// The peer's answer to a watcher's nonce. Pure functions, so that the decoder of these outside
// bytes can be tested and fuzzed on its own.
std::array<uint8_t, kWatchHelloBytes> EncodeWatchHello(
    const std::string& cluster, const std::string& secret, const std::string& id,
    const std::array<uint8_t, kWatchNonceBytes>& nonce);
// OK when `bytes` is the hello of `expected_id` in this cluster for this nonce.
common::Status CheckWatchHello(const uint8_t* bytes, size_t size, const std::string& cluster,
                               const std::string& secret, const std::string& expected_id,
                               const std::array<uint8_t, kWatchNonceBytes>& nonce);

struct DeathWatchOptions {
  std::string bind_host;  // an address of this host to listen on ("0.0.0.0", "127.0.0.1", "::")
  uint16_t port = 0;      // 0: any free port (peers learn it from every frame)
  std::string cluster;
  std::string secret;
  std::string self_id;
  // Bound on a dial and its hello. After a watched connection ends, redials go on for this long
  // (a dying process may still take connections for a moment); none refused by then: no evidence.
  std::chrono::milliseconds timeout{200};
  // Pause between attempts to (re)establish a watch.
  std::chrono::milliseconds retry{100};
  size_t max_accepted = 4096;  // connections kept for watchers; more are turned away
};

struct DeathWatchCounters {
  uint64_t accepted = 0;      // watchers this node answered
  uint64_t established = 0;   // watches of a peer set up
  uint64_t ended = 0;         // watched connections that ended in order
  uint64_t deaths = 0;        // ... then met a refused redial: reported through `died`
  uint64_t not_evidence = 0;  // ... then met an answer, a silence or an error: not reported
};

class DeathWatch {
 public:
  // `died(peer, observed_at_ns)`: `peer`'s process is gone; observed_at_ns is the lease clock
  // (instaface/clock.h) when its connection ended.
  using Died = std::function<void(const std::string& peer, int64_t observed_at_ns)>;

  static common::StatusOr<std::unique_ptr<DeathWatch>> Start(DeathWatchOptions options, Died died);
  // Aborts every connection (resets, not an orderly close: see above) and stops the thread,
  // unless EndInOrder ended them first.
  ~DeathWatch();
  DeathWatch(const DeathWatch&) = delete;
  DeathWatch& operator=(const DeathWatch&) = delete;

  uint16_t port() const;  // the port bound (chosen by the kernel)

  // Watches `peer`'s process at host:port from now on, instead of the previous one; an empty
  // peer or port 0 watches nobody. Cheap when nothing changed.
  void Watch(const std::string& peer, const std::string& host, uint16_t port);
  // Fault injection, as Transport::SetBlocked: the end of a blocked peer's connection is not
  // evidence (a firewall between us would have withheld it).
  void SetBlocked(std::set<std::string> peers);

  DeathWatchCounters counters() const;

  // Closes the listener, so that redials are refused, then ends every watcher's connection in
  // order, as this process's exit would: each watcher then reports this node dead. Only for a
  // node whose app can no longer see a lease of it and that will send nothing more (a clean
  // stop, runtime/node.cc). Stops watching and answering; idempotent.
  void EndInOrder();

 private:
  struct Impl;
  explicit DeathWatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::transport

#endif  // INSTAFACE_TRANSPORT_DEATH_WATCH_H_

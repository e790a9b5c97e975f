#include "instaface/transport/transport.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "instaface/clock.h"

namespace instaface::transport {
namespace {

using common::Status;

std::string NngError(const std::string& what, int rv) { return what + ": " + nng_strerror(rv); }

uint64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Bounds what a peer can make us buffer: a frame is never larger than this.
constexpr size_t kMaxReceiveBytes = 1024;
static_assert(wire::kMaxFrameBytes < kMaxReceiveBytes);

enum class Phase { kIdle, kSending, kReceiving };

// nng 1.5's nng_close can block forever in a race inside req/rep socket shutdown
// (nanomsg/nng#1813, fixed in nng 1.8; seen here about once in a hundred test runs). A stuck
// close must not hang the agent's shutdown, so it runs on a helper thread and is abandoned after
// `limit`: a leaked socket at exit, nothing worse, because every aio was stopped before.
void CloseSocketBounded(nng_socket socket, std::chrono::milliseconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> closed = done->get_future();
  std::thread([socket, done] {
    nng_close(socket);
    done->set_value();
  }).detach();
  closed.wait_for(limit);
}
constexpr std::chrono::milliseconds kCloseLimit{500};

// The host of a tcp:// (tcp4://, tcp6://) nng URL, without brackets; nothing for another scheme
// (ipc://, inproc://). An empty or "*" host (nng's "every address") is returned as is.
std::optional<std::string> TcpHost(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "tcp" && scheme != "tcp4" && scheme != "tcp6") return std::nullopt;
  const std::string rest = url.substr(scheme_end + 3);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

}  // namespace

struct Transport::Impl {
  struct Peer;

  // One outstanding request to a peer: a REQ context and the aio that drives it.
  struct RequestSlot {
    Impl* impl = nullptr;
    Peer* peer = nullptr;
    nng_ctx ctx = NNG_CTX_INITIALIZER;
    nng_aio* aio = nullptr;
    std::atomic<bool> busy{false};
    Phase phase = Phase::kIdle;  // touched only by whoever holds `busy`
  };

  struct Peer {
    std::string id;
    std::string url;
    nng_socket socket = NNG_SOCKET_INITIALIZER;
    std::vector<std::unique_ptr<RequestSlot>> slots;
    std::atomic<bool> closing{false};
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> failed{0};
    std::atomic<int64_t> last_ack_ns{0};
  };

  // One REP context answering requests.
  struct ReplySlot {
    Impl* impl = nullptr;
    nng_ctx ctx = NNG_CTX_INITIALIZER;
    nng_aio* aio = nullptr;
    Phase phase = Phase::kIdle;  // touched only by this slot's callback (and Start)
  };

  TransportOptions options;
  Deliver deliver;
  wire::Codec codec;
  wire::ReplayWindow replay;
  std::string bound_url;

  nng_socket rep = NNG_SOCKET_INITIALIZER;
  std::vector<std::unique_ptr<ReplySlot>> replies;
  std::atomic<bool> stopping{false};  // set by Stop alone, which runs once

  mutable std::mutex peers_mu;
  mutable std::mutex blocked_mu;
  std::set<std::string> blocked;                       // guarded by blocked_mu
  std::map<std::string, std::shared_ptr<Peer>> peers;  // guarded by peers_mu

  std::mutex random_mu;
  std::mt19937_64 random;  // guarded by random_mu: nonces

  std::array<std::atomic<uint64_t>, wire::kRejectReasonCount> rejected{};
  std::atomic<uint64_t> delivered{0};

  // The death watch (null without one), the peer it watches and every peer's advertised port.
  std::unique_ptr<DeathWatch> death_watch;
  uint16_t watch_port = 0;
  std::mutex watch_mu;
  std::string watched;                       // guarded by watch_mu
  std::map<std::string, uint16_t> ports;     // guarded by watch_mu
  std::map<std::string, std::string> hosts;  // guarded by watch_mu: from the peers' URLs

  Impl(TransportOptions o, Deliver d)
      : options(std::move(o)),
        deliver(std::move(d)),
        codec(options.cluster, options.secret),
        replay(options.replay),
        random(std::random_device{}()) {}

  bool Blocked(const std::string& id) const {
    std::lock_guard<std::mutex> lock(blocked_mu);
    return blocked.count(id) != 0;
  }

  // Runs on nng threads: must not block. False when the sender is blocked: then the request
  // must go unanswered, as one a firewall dropped.
  bool HandleBytes(const void* data, size_t size) {
    wire::Decoded decoded = codec.Decode(static_cast<const uint8_t*>(data), size);
    if (!decoded.ok()) {
      rejected[static_cast<size_t>(decoded.reason())]++;
      return true;
    }
    const wire::Envelope& e = decoded.envelope();
    if (Blocked(e.message.from)) return false;
    if (death_watch) LearnWatchPort(e.message.from, e.watch_port);
    if (auto reason = replay.Check(e.message.from, e.timestamp_ns, e.nonce, RealtimeNs())) {
      rejected[static_cast<size_t>(*reason)]++;
      return true;
    }
    delivered++;
    deliver(std::move(decoded.envelope().message));
    return true;
  }

  // A peer's frames say where its death watch listens; only an authenticated frame gets here.
  void LearnWatchPort(const std::string& from, uint16_t port) {
    std::lock_guard<std::mutex> lock(watch_mu);
    auto [it, inserted] = ports.emplace(from, port);
    if (!inserted && it->second == port) return;
    it->second = port;
    if (from == watched) UpdateWatch();
  }

  // Points the death watch at the watched peer's host and port, as far as both are known.
  void UpdateWatch() {
    auto host = hosts.find(watched);
    auto port = ports.find(watched);
    if (watched.empty() || host == hosts.end() || port == ports.end()) {
      death_watch->Watch(std::string(), std::string(), 0);
      return;
    }
    death_watch->Watch(watched, host->second, port->second);
  }

  static void OnReply(void* arg) {
    auto* slot = static_cast<ReplySlot*>(arg);
    Impl* impl = slot->impl;
    const int rv = nng_aio_result(slot->aio);
    if (slot->phase == Phase::kReceiving) {
      if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || impl->stopping) return;
        impl->StartReceive(slot);
        return;
      }
      nng_msg* msg = nng_aio_get_msg(slot->aio);
      if (!impl->HandleBytes(nng_msg_body(msg), nng_msg_len(msg))) {
        // A blocked sender: no answer. Receiving again abandons its request.
        nng_msg_free(msg);
        impl->StartReceive(slot);
        return;
      }
      nng_msg_clear(msg);  // the acknowledgement is empty
      nng_aio_set_msg(slot->aio, msg);
      nng_aio_set_timeout(slot->aio,
                          static_cast<nng_duration>(impl->options.request_timeout.count()));
      slot->phase = Phase::kSending;
      nng_ctx_send(slot->ctx, slot->aio);
      return;
    }
    if (rv != 0) nng_msg_free(nng_aio_get_msg(slot->aio));  // still ours after a failed send
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || impl->stopping) return;
    impl->StartReceive(slot);
  }

  void StartReceive(ReplySlot* slot) {
    slot->phase = Phase::kReceiving;
    nng_aio_set_timeout(slot->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(slot->ctx, slot->aio);
  }

  static void OnRequest(void* arg) {
    auto* slot = static_cast<RequestSlot*>(arg);
    Peer* peer = slot->peer;
    const int rv = nng_aio_result(slot->aio);
    if (slot->phase == Phase::kSending) {
      if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(slot->aio));  // still ours after a failed send
        Finish(slot, false);
        return;
      }
      if (peer->closing) {
        Finish(slot, false);
        return;
      }
      slot->phase = Phase::kReceiving;
      nng_ctx_recv(slot->ctx, slot->aio);  // the aio's timeout applies afresh
      return;
    }
    if (rv != 0) {
      Finish(slot, false);
      return;
    }
    nng_msg* reply = nng_aio_get_msg(slot->aio);
    if (nng_msg_len(reply) > 0) slot->impl->HandleBytes(nng_msg_body(reply), nng_msg_len(reply));
    nng_msg_free(reply);
    Finish(slot, true);
  }

  static void Finish(RequestSlot* slot, bool acked) {
    Peer* peer = slot->peer;
    if (acked) {
      peer->sent++;
      peer->last_ack_ns = instaface::LeaseClockNowNs();
    } else {
      peer->failed++;
    }
    slot->phase = Phase::kIdle;
    slot->busy.store(false, std::memory_order_release);
  }

  common::StatusOr<std::shared_ptr<Peer>> OpenPeer(const std::string& id, const std::string& url) {
    auto peer = std::make_shared<Peer>();
    peer->id = id;
    peer->url = url;
    int rv = nng_req0_open(&peer->socket);
    if (rv != 0) return Status::Error(NngError("cannot open REQ socket for " + id, rv));
    // Never let nng resend on its own: a resent vote request would be a replay.
    nng_socket_set_ms(peer->socket, NNG_OPT_REQ_RESENDTIME,
                      static_cast<nng_duration>(options.request_timeout.count()) * 100 + 60'000);
    nng_socket_set_size(peer->socket, NNG_OPT_RECVMAXSZ, kMaxReceiveBytes);
    // A restarted peer is redialed quickly; the election cannot wait nng's default minute.
    const int64_t reconnect_min = 20;
    nng_socket_set_ms(peer->socket, NNG_OPT_RECONNMINT, reconnect_min);
    nng_socket_set_ms(
        peer->socket, NNG_OPT_RECONNMAXT,
        static_cast<nng_duration>(std::max<int64_t>(reconnect_min, options.reconnect_max.count())));
    for (int i = 0; i < options.requests_per_peer; ++i) {
      auto slot = std::make_unique<RequestSlot>();
      slot->impl = this;
      slot->peer = peer.get();
      if ((rv = nng_ctx_open(&slot->ctx, peer->socket)) != 0 ||
          (rv = nng_aio_alloc(&slot->aio, &Impl::OnRequest, slot.get())) != 0) {
        peer->slots.push_back(std::move(slot));
        ClosePeer(*peer);
        return Status::Error(NngError("cannot set up requests to " + id, rv));
      }
      peer->slots.push_back(std::move(slot));
    }
    // Non-blocking: the peer may not be up yet; nng keeps redialing in the background.
    rv = nng_dial(peer->socket, url.c_str(), nullptr, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
      ClosePeer(*peer);
      return Status::Error(NngError("cannot dial " + id + " at " + url, rv));
    }
    return peer;
  }

  static void ClosePeer(Peer& peer) {
    peer.closing = true;
    for (auto& slot : peer.slots) {
      if (slot->aio != nullptr) nng_aio_stop(slot->aio);  // waits for a running callback
    }
    CloseSocketBounded(peer.socket, kCloseLimit);  // closes the contexts too
    for (auto& slot : peer.slots) {
      if (slot->aio != nullptr) nng_aio_free(slot->aio);
      slot->aio = nullptr;
    }
  }

  void Stop(bool as_if_exited) {
    if (stopping.exchange(true)) return;  // StopAsIfExited, then the destructor
    for (auto& slot : replies) {
      if (slot->aio != nullptr) nng_aio_stop(slot->aio);
    }
    std::map<std::string, std::shared_ptr<Peer>> closing;
    {
      std::lock_guard<std::mutex> lock(peers_mu);
      closing.swap(peers);
    }
    for (auto& [id, peer] : closing) ClosePeer(*peer);
    CloseSocketBounded(rep, kCloseLimit);
    for (auto& slot : replies) {
      if (slot->aio != nullptr) nng_aio_free(slot->aio);
      slot->aio = nullptr;
    }
    // Last, once no callback can reach it and nothing more can leave: its watchers'
    // connections end in resets, which are no evidence of death (death_watch.h), or in order.
    if (death_watch && as_if_exited) death_watch->EndInOrder();
    death_watch.reset();
  }
};

common::StatusOr<std::unique_ptr<Transport>> Transport::Start(TransportOptions options,
                                                              Deliver deliver, PeerDied peer_died) {
  if (Status st = wire::ValidateCodecArguments(options.cluster, options.secret); !st.ok()) {
    return st;
  }
  if (options.listen_url.empty()) return Status::Error("no listen URL given (--listen)");
  if (options.request_timeout.count() <= 0) return Status::Error("request timeout must be > 0");
  if (options.reply_contexts < 1 || options.requests_per_peer < 1) {
    return Status::Error("context pools must hold at least one context");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(deliver));
  Impl& i = *impl;
  int rv = nng_rep0_open(&i.rep);
  if (rv != 0) return Status::Error(NngError("cannot open REP socket", rv));
  nng_socket_set_size(i.rep, NNG_OPT_RECVMAXSZ, kMaxReceiveBytes);
  nng_listener listener;
  rv = nng_listen(i.rep, i.options.listen_url.c_str(), &listener, 0);
  if (rv != 0) {
    nng_close(i.rep);
    return Status::Error(NngError("cannot listen on " + i.options.listen_url, rv));
  }
  i.bound_url = i.options.listen_url;
  if (i.bound_url.rfind("tcp", 0) == 0 && i.bound_url.size() > 2 &&
      i.bound_url.compare(i.bound_url.size() - 2, 2, ":0") == 0) {
    int port = 0;
    if (nng_listener_get_int(listener, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
      i.bound_url = i.bound_url.substr(0, i.bound_url.size() - 1) + std::to_string(port);
    }
  }
  for (int n = 0; n < i.options.reply_contexts; ++n) {
    auto slot = std::make_unique<Impl::ReplySlot>();
    slot->impl = &i;
    if ((rv = nng_ctx_open(&slot->ctx, i.rep)) != 0 ||
        (rv = nng_aio_alloc(&slot->aio, &Impl::OnReply, slot.get())) != 0) {
      i.replies.push_back(std::move(slot));
      i.Stop(/*as_if_exited=*/false);
      return Status::Error(NngError("cannot set up reply contexts", rv));
    }
    i.replies.push_back(std::move(slot));
  }
  // Started before the first request is answered, so that every frame advertises its port.
  const std::optional<std::string> host = TcpHost(i.bound_url);
  if (i.options.death_watch && host && peer_died) {
    DeathWatchOptions w;
    w.bind_host = host->empty() || *host == "*" ? "0.0.0.0" : *host;
    w.port = i.options.death_watch_port;
    w.cluster = i.options.cluster;
    w.secret = i.options.secret;
    w.timeout = std::max(std::chrono::milliseconds(1), i.options.request_timeout);
    w.retry = std::min(std::chrono::milliseconds(100), w.timeout);
    w.self_id = i.options.self_id;
    auto watch = DeathWatch::Start(std::move(w), std::move(peer_died));
    if (!watch.ok()) {
      i.Stop(/*as_if_exited=*/false);
      return watch.status();
    }
    i.death_watch = std::move(*watch);
    i.watch_port = i.death_watch->port();
  }
  for (auto& slot : i.replies) i.StartReceive(slot.get());
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Transport::~Transport() { impl_->Stop(/*as_if_exited=*/false); }

void Transport::StopAsIfExited() { impl_->Stop(/*as_if_exited=*/true); }

void Transport::SetPeers(const std::map<std::string, std::string>& wanted) {
  std::vector<std::shared_ptr<Impl::Peer>> to_close;
  std::map<std::string, std::string> to_open;
  {
    std::lock_guard<std::mutex> lock(impl_->peers_mu);
    for (auto it = impl_->peers.begin(); it != impl_->peers.end();) {
      auto w = wanted.find(it->first);
      if (w == wanted.end() || w->second != it->second->url) {
        to_close.push_back(it->second);
        it = impl_->peers.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [id, url] : wanted) {
      if (impl_->peers.count(id) == 0) to_open[id] = url;
    }
  }
  if (impl_->death_watch) {
    std::lock_guard<std::mutex> lock(impl_->watch_mu);
    impl_->hosts.clear();
    for (const auto& [id, url] : wanted) {
      if (auto host = TcpHost(url); host && !host->empty() && *host != "*") {
        impl_->hosts[id] = *host;
      }
    }
    impl_->UpdateWatch();
  }
  // Stopping aios waits for callbacks, which never take peers_mu; still, do it unlocked.
  for (auto& peer : to_close) Impl::ClosePeer(*peer);
  for (const auto& [id, url] : to_open) {
    auto peer = impl_->OpenPeer(id, url);
    if (!peer.ok()) continue;  // a malformed URL: the peer stays unreachable until it changes
    std::lock_guard<std::mutex> lock(impl_->peers_mu);
    impl_->peers[id] = std::move(*peer);
  }
}

void Transport::SetBlocked(std::set<std::string> peers) {
  if (impl_->death_watch) impl_->death_watch->SetBlocked(peers);
  std::lock_guard<std::mutex> lock(impl_->blocked_mu);
  impl_->blocked = std::move(peers);
}

void Transport::WatchPeer(const std::string& peer) {
  if (!impl_->death_watch) return;
  std::lock_guard<std::mutex> lock(impl_->watch_mu);
  if (peer == impl_->watched) return;
  impl_->watched = peer;
  impl_->UpdateWatch();
}

DeathWatchCounters Transport::death_watch_counters() const {
  return impl_->death_watch ? impl_->death_watch->counters() : DeathWatchCounters();
}

uint16_t Transport::death_watch_port() const { return impl_->watch_port; }

bool Transport::Send(const election::Message& message) {
  std::shared_ptr<Impl::Peer> peer;
  if (impl_->Blocked(message.to)) return false;
  {
    std::lock_guard<std::mutex> lock(impl_->peers_mu);
    auto it = impl_->peers.find(message.to);
    if (it == impl_->peers.end()) return false;
    peer = it->second;
    // Held under the lock so that SetPeers cannot close the peer while a send starts.
    Impl::RequestSlot* slot = nullptr;
    for (auto& s : peer->slots) {
      bool expected = false;
      if (s->busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        slot = s.get();
        break;
      }
    }
    if (slot == nullptr) {
      peer->failed++;
      return false;
    }
    uint64_t nonce;
    {
      std::lock_guard<std::mutex> random_lock(impl_->random_mu);
      nonce = impl_->random();
    }
    const std::vector<uint8_t> bytes =
        impl_->codec.Encode(message, RealtimeNs(), nonce, impl_->watch_port);
    nng_msg* msg = nullptr;
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, bytes.data(), bytes.size()) != 0) {
      if (msg != nullptr) nng_msg_free(msg);
      Impl::Finish(slot, false);
      return false;
    }
    slot->phase = Phase::kSending;
    nng_aio_set_msg(slot->aio, msg);
    nng_aio_set_timeout(slot->aio,
                        static_cast<nng_duration>(impl_->options.request_timeout.count()));
    nng_ctx_send(slot->ctx, slot->aio);
  }
  return true;
}

std::vector<PeerCounters> Transport::peer_counters() const {
  std::vector<PeerCounters> out;
  std::lock_guard<std::mutex> lock(impl_->peers_mu);
  for (const auto& [id, peer] : impl_->peers) {
    out.push_back(
        {id, peer->url, peer->sent.load(), peer->failed.load(), peer->last_ack_ns.load()});
  }
  return out;
}

std::array<uint64_t, wire::kRejectReasonCount> Transport::rejected() const {
  std::array<uint64_t, wire::kRejectReasonCount> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = impl_->rejected[i].load();
  return out;
}

uint64_t Transport::delivered() const { return impl_->delivered.load(); }

const std::string& Transport::bound_url() const { return impl_->bound_url; }

}  // namespace instaface::transport

#include "instaface/transport/death_watch.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "instaface/clock.h"

namespace instaface::transport {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using common::Status;

constexpr uint32_t kHelloMagic = 0x57444649;  // "IFDW" read little-endian
constexpr uint8_t kHelloVersion = 1;
constexpr size_t kHelloIdBytes = 64;
constexpr size_t kHelloBodyBytes = 4 + 1 + 1 + kHelloIdBytes;
constexpr size_t kHelloMacBytes = 32;
static_assert(kHelloBodyBytes + kHelloMacBytes == kWatchHelloBytes);
// A dying process's kernel closes its descriptors one by one: the watched connection may end
// while its listening socket still takes connections (and then resets them, or lets them time
// out). So a redial that meets anything but a refusal or a valid hello asks again, after a
// pause that starts at kProbePause and doubles, until DeathWatchOptions::timeout has passed
// since the connection ended; only a refusal is evidence, a hello is life.
constexpr std::chrono::milliseconds kProbePause{1};
constexpr std::chrono::milliseconds kProbePauseMax{20};

// HMAC-SHA256(secret, body || cluster_len || cluster || nonce).
void HelloMac(const uint8_t* body, const std::string& cluster, const std::string& secret,
              const std::array<uint8_t, kWatchNonceBytes>& nonce, uint8_t* mac) {
  uint8_t input[kHelloBodyBytes + 1 + 255 + kWatchNonceBytes];
  size_t n = 0;
  std::memcpy(input, body, kHelloBodyBytes);
  n += kHelloBodyBytes;
  const size_t cluster_len = std::min<size_t>(cluster.size(), 255);
  input[n++] = static_cast<uint8_t>(cluster_len);
  std::memcpy(input + n, cluster.data(), cluster_len);
  n += cluster_len;
  std::memcpy(input + n, nonce.data(), nonce.size());
  n += nonce.size();
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), input, n, mac, &mac_len);
}

// Every close of ours but EndInOrder's is an abort: a reset, never the orderly close that
// otherwise only the kernel's cleanup of a dead process sends (see death_watch.h).
void Abort(tcp::socket& socket) {
  error_code ignored;
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

}  // namespace

std::array<uint8_t, kWatchHelloBytes> EncodeWatchHello(
    const std::string& cluster, const std::string& secret, const std::string& id,
    const std::array<uint8_t, kWatchNonceBytes>& nonce) {
  std::array<uint8_t, kWatchHelloBytes> out{};
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(kHelloMagic >> (8 * i));
  out[4] = kHelloVersion;
  const size_t len = std::min(id.size(), kHelloIdBytes);
  out[5] = static_cast<uint8_t>(len);
  std::memcpy(out.data() + 6, id.data(), len);
  HelloMac(out.data(), cluster, secret, nonce, out.data() + kHelloBodyBytes);
  return out;
}

Status CheckWatchHello(const uint8_t* bytes, size_t size, const std::string& cluster,
                       const std::string& secret, const std::string& expected_id,
                       const std::array<uint8_t, kWatchNonceBytes>& nonce) {
  if (bytes == nullptr || size != kWatchHelloBytes) {
    return Status::Error("death-watch hello of " + std::to_string(size) + " bytes, want " +
                         std::to_string(kWatchHelloBytes));
  }
  uint32_t magic = 0;
  for (int i = 0; i < 4; ++i) magic |= static_cast<uint32_t>(bytes[i]) << (8 * i);
  if (magic != kHelloMagic) return Status::Error("not a death-watch hello (wrong magic)");
  if (bytes[4] != kHelloVersion) {
    return Status::Error("death-watch hello version " + std::to_string(bytes[4]) + ", want " +
                         std::to_string(kHelloVersion));
  }
  const size_t len = bytes[5];
  if (len == 0 || len > kHelloIdBytes) {
    return Status::Error("death-watch hello with an id of " + std::to_string(len) + " bytes");
  }
  for (size_t i = 6 + len; i < kHelloBodyBytes; ++i) {
    if (bytes[i] != 0) return Status::Error("death-watch hello with bytes after its id");
  }
  uint8_t mac[EVP_MAX_MD_SIZE];
  HelloMac(bytes, cluster, secret, nonce, mac);
  if (CRYPTO_memcmp(mac, bytes + kHelloBodyBytes, kHelloMacBytes) != 0) {
    return Status::Error("death-watch hello does not authenticate (another cluster or secret)");
  }
  const std::string id(reinterpret_cast<const char*>(bytes + 6), len);
  if (id != expected_id) {
    return Status::Error("death-watch hello from '" + id + "', not '" + expected_id + "'");
  }
  return Status::Ok();
}

// Everything below runs on the one thread of `io`, except the public entry points, which post
// to it, and the counters. Handlers capture `this`: the destructor stops the thread before any
// member goes, and `io` (declared first) outlives every socket and timer.
struct DeathWatch::Impl {
  using Nonce = std::array<uint8_t, kWatchNonceBytes>;

  DeathWatchOptions options;
  Died died;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  uint16_t bound_port = 0;
  std::set<std::shared_ptr<tcp::socket>> sessions;  // accepted: held until the watcher goes
  bool stopping = false;

  // The one peer watched, and the generation that tells a stale handler from a current one.
  std::string peer, host;
  uint16_t port = 0;
  uint64_t generation = 0;
  std::shared_ptr<tcp::socket> watched;
  asio::steady_timer retry_timer{io};

  mutable std::mutex blocked_mu;
  std::set<std::string> blocked;

  std::atomic<uint64_t> accepted{0}, established{0}, ended{0}, deaths{0}, not_evidence{0};
  std::thread thread;

  Impl(DeathWatchOptions o, Died d) : options(std::move(o)), died(std::move(d)) {}

  bool Blocked(const std::string& id) const {
    std::lock_guard<std::mutex> lock(blocked_mu);
    return blocked.count(id) != 0;
  }

  static Nonce FreshNonce() {
    Nonce nonce{};
    RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
    return nonce;
  }

  // ---- the watched side: answer watchers and keep their connections ---------------------------

  void Accept() {
    auto socket = std::make_shared<tcp::socket>(io);
    acceptor.async_accept(*socket, [this, socket](const error_code& ec) {
      if (stopping || ec == asio::error::operation_aborted) {
        Abort(*socket);  // a connection accepted as we stop must not see an orderly close
        return;
      }
      if (ec) {
        // Out of descriptors, say: try again later rather than spin.
        retry_accept.expires_after(options.retry);
        retry_accept.async_wait([this](const error_code& e) {
          if (!e && !stopping) Accept();
        });
        return;
      }
      Serve(socket);
      Accept();
    });
  }
  asio::steady_timer retry_accept{io};

  void Serve(const std::shared_ptr<tcp::socket>& socket) {
    if (sessions.size() >= options.max_accepted) {
      Abort(*socket);
      return;
    }
    sessions.insert(socket);
    ++accepted;
    auto nonce = std::make_shared<Nonce>();
    auto deadline = std::make_shared<asio::steady_timer>(io, 5 * options.timeout);
    deadline->async_wait([this, socket](const error_code& ec) {
      if (!ec) Drop(socket);  // no nonce in time
    });
    asio::async_read(*socket, asio::buffer(*nonce),
                     [this, socket, nonce, deadline](const error_code& ec, size_t) {
                       deadline->cancel();
                       if (ec || stopping) {
                         Drop(socket);
                         return;
                       }
                       auto hello =
                           std::make_shared<std::array<uint8_t, kWatchHelloBytes>>(EncodeWatchHello(
                               options.cluster, options.secret, options.self_id, *nonce));
                       asio::async_write(*socket, asio::buffer(*hello),
                                         [this, socket, hello](const error_code& e, size_t) {
                                           if (e || stopping) {
                                             Drop(socket);
                                             return;
                                           }
                                           Hold(socket);
                                         });
                     });
  }

  // Nothing more is expected from the watcher: whatever ends this read (it went away, or sent
  // what it must not) ends the session.
  void Hold(const std::shared_ptr<tcp::socket>& socket) {
    auto byte = std::make_shared<std::array<uint8_t, 1>>();
    socket->async_read_some(asio::buffer(*byte),
                            [this, socket, byte](const error_code&, size_t) { Drop(socket); });
  }

  void Drop(const std::shared_ptr<tcp::socket>& socket) {
    if (sessions.erase(socket) == 0) return;
    Abort(*socket);
  }

  // ---- the watching side --------------------------------------------------------------------

  void SetTarget(const std::string& new_peer, const std::string& new_host, uint16_t new_port) {
    if (stopping || (new_peer == peer && new_host == host && new_port == port)) return;
    ++generation;
    StopWatching();
    peer = new_peer;
    host = new_host;
    port = new_port;
    if (peer.empty() || host.empty() || port == 0) return;
    Resolve(generation);
  }

  void StopWatching() {
    retry_timer.cancel();
    if (watched) Abort(*watched);
    watched.reset();
  }

  void RetryLater(uint64_t gen) {
    if (gen != generation || stopping) return;
    retry_timer.expires_after(options.retry);
    retry_timer.async_wait([this, gen](const error_code& ec) {
      if (!ec && gen == generation && !stopping) Resolve(gen);
    });
  }

  void Resolve(uint64_t gen) {
    auto resolver = std::make_shared<tcp::resolver>(io);
    resolver->async_resolve(
        host, std::to_string(port),
        [this, gen, resolver](const error_code& ec, const tcp::resolver::results_type& results) {
          if (gen != generation || stopping) return;
          if (ec || results.empty()) {
            RetryLater(gen);
            return;
          }
          Connect(gen, results.begin()->endpoint(), /*probe=*/false, 0, 0);
        });
  }

  // A dial, or (probe) the redial that decides whether an ended connection is evidence. A probe
  // asks until `probe_until` (see kProbePause).
  void Connect(uint64_t gen, const tcp::endpoint& endpoint, bool probe, int attempt,
               int64_t observed_at, std::chrono::steady_clock::time_point probe_until = {}) {
    auto socket = std::make_shared<tcp::socket>(io);
    auto limit = options.timeout;
    if (probe) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          probe_until - std::chrono::steady_clock::now());
      limit = std::max(std::chrono::milliseconds(1), std::min(limit, left));
    }
    auto deadline = std::make_shared<asio::steady_timer>(io, limit);
    deadline->async_wait([socket](const error_code& ec) {
      if (!ec) Abort(*socket);  // the pending operation fails: too slow to count
    });
    // Neither a refusal nor a hello: a dial starts over later; a probe asks again while it may.
    auto inconclusive = [this, gen, endpoint, probe, attempt, observed_at, probe_until, socket,
                         deadline] {
      deadline->cancel();
      Abort(*socket);
      if (!probe) return RetryLater(gen);
      const auto now = std::chrono::steady_clock::now();
      if (now >= probe_until) {
        ++not_evidence;
        return RetryLater(gen);
      }
      const auto pause = std::min<std::chrono::steady_clock::duration>(
          std::min(kProbePause * (1 << std::min(attempt, 5)), kProbePauseMax), probe_until - now);
      auto timer = std::make_shared<asio::steady_timer>(io, pause);
      timer->async_wait([=](const error_code& ec) {  // holds `timer` until it fires
        (void)timer;
        if (ec || gen != generation || stopping) return;
        Connect(gen, endpoint, true, attempt + 1, observed_at, probe_until);
      });
    };
    socket->async_connect(endpoint, [=](const error_code& ec) {
      if (gen != generation || stopping) {
        deadline->cancel();
        Abort(*socket);
        return;
      }
      if (ec) {
        if (probe && ec == asio::error::connection_refused) {
          deadline->cancel();
          ++deaths;
          died(peer, observed_at);
          RetryLater(gen);  // should it come back, a new process is watched afresh
          return;
        }
        return inconclusive();
      }
      error_code ignored;
      socket->set_option(tcp::no_delay(true), ignored);
      auto nonce = std::make_shared<Nonce>(FreshNonce());
      auto hello = std::make_shared<std::array<uint8_t, kWatchHelloBytes>>();
      asio::async_write(*socket, asio::buffer(*nonce), [=](const error_code& we, size_t) {
        if (gen != generation || stopping) return inconclusive();
        if (we) return inconclusive();
        asio::async_read(*socket, asio::buffer(*hello), [=](const error_code& re, size_t) {
          if (gen != generation || stopping) return inconclusive();
          if (re) return inconclusive();
          if (!CheckWatchHello(hello->data(), hello->size(), options.cluster, options.secret, peer,
                               *nonce)
                   .ok()) {
            return inconclusive();
          }
          deadline->cancel();
          if (probe) ++not_evidence;  // it answered: alive, whatever closed the old one
          Established(gen, socket, endpoint);
        });
      });
    });
  }

  void Established(uint64_t gen, const std::shared_ptr<tcp::socket>& socket,
                   const tcp::endpoint& endpoint) {
    watched = socket;
    ++established;
    auto byte = std::make_shared<std::array<uint8_t, 1>>();
    socket->async_read_some(asio::buffer(*byte),
                            [this, gen, socket, endpoint, byte](const error_code& ec, size_t) {
                              if (gen != generation || stopping)
                                return;  // replaced: StopWatching aborted it
                              watched.reset();
                              Abort(*socket);
                              if (ec != asio::error::eof) {
                                // A reset, a timeout, or bytes the peer must not send: no evidence.
                                RetryLater(gen);
                                return;
                              }
                              const int64_t observed_at = instaface::LeaseClockNowNs();
                              ++ended;
                              if (Blocked(peer)) {
                                ++not_evidence;
                                RetryLater(gen);
                                return;
                              }
                              Connect(gen, endpoint, /*probe=*/true, 0, observed_at,
                                      std::chrono::steady_clock::now() + options.timeout);
                            });
  }

  // ---- life ---------------------------------------------------------------------------------

  Status Listen() {
    error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(options.bind_host, ec), options.port);
    if (ec) {
      // A host name, as nng accepts one: listen where it resolves.
      tcp::resolver resolver(io);
      const auto results = resolver.resolve(options.bind_host, std::to_string(options.port), ec);
      if (ec || results.empty()) {
        return Status::Error("death watch: cannot resolve '" + options.bind_host + "'");
      }
      endpoint = results.begin()->endpoint();
    }
    acceptor.open(endpoint.protocol(), ec);
    // A restarted agent takes its fixed port back at once, TIME_WAIT or not.
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Error("death watch: cannot listen on " + options.bind_host + " port " +
                           std::to_string(options.port) + ": " + ec.message());
    }
    bound_port = acceptor.local_endpoint(ec).port();
    Accept();
    thread = std::thread([this] { io.run(); });
    return Status::Ok();
  }

  // Ends every connection (see EndInOrder for `in_order`) and stops the thread.
  void Stop(bool in_order) {
    if (!thread.joinable()) return;
    std::promise<void> ended;
    asio::post(io, [this, in_order, &ended] {
      stopping = true;
      ++generation;
      error_code ignored;
      acceptor.close(ignored);  // first: a watcher's redial after our FIN must be refused
      retry_accept.cancel();
      StopWatching();
      for (const auto& socket : sessions) {
        if (in_order) {
          // A FIN: the watcher sent its nonce and nothing else, and we read all of it, so the
          // close sends nothing after it (unread bytes would turn it into a reset).
          socket->shutdown(tcp::socket::shutdown_send, ignored);
          socket->close(ignored);
        } else {
          Abort(*socket);
        }
      }
      sessions.clear();
      ended.set_value();
    });
    ended.get_future().wait();
    io.stop();
    thread.join();
  }
};

common::StatusOr<std::unique_ptr<DeathWatch>> DeathWatch::Start(DeathWatchOptions options,
                                                                Died died) {
  if (options.self_id.empty() || options.self_id.size() > kHelloIdBytes) {
    return Status::Error("death watch: node id must be 1 to 64 bytes");
  }
  if (options.timeout.count() <= 0 || options.retry.count() <= 0) {
    return Status::Error("death watch: timeout and retry must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(died));
  if (Status st = impl->Listen(); !st.ok()) return st;
  return std::unique_ptr<DeathWatch>(new DeathWatch(std::move(impl)));
}

DeathWatch::DeathWatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DeathWatch::~DeathWatch() { impl_->Stop(/*in_order=*/false); }

void DeathWatch::EndInOrder() { impl_->Stop(/*in_order=*/true); }

uint16_t DeathWatch::port() const { return impl_->bound_port; }

void DeathWatch::Watch(const std::string& peer, const std::string& host, uint16_t port) {
  asio::post(impl_->io,
             [impl = impl_.get(), peer, host, port] { impl->SetTarget(peer, host, port); });
}

void DeathWatch::SetBlocked(std::set<std::string> peers) {
  std::lock_guard<std::mutex> lock(impl_->blocked_mu);
  impl_->blocked = std::move(peers);
}

DeathWatchCounters DeathWatch::counters() const {
  DeathWatchCounters c;
  c.accepted = impl_->accepted;
  c.established = impl_->established;
  c.ended = impl_->ended;
  c.deaths = impl_->deaths;
  c.not_evidence = impl_->not_evidence;
  return c;
}

}  // namespace instaface::transport

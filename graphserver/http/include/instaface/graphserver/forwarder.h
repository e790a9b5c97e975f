// Forwarder: a follower's writes, sent on to the leader without a thread waiting on each.
//
// A forward goes to the leader the View names. It is sent again, to the leader named then,
// until `timeout` has passed since it began, when:
//  - the View names another leader while it is in flight: the attempt is cancelled at once, so
//    a write never waits out its timeout on a leader that is gone;
//  - it got no answer (connect refused, connection lost): after `retry_pause`, or at once when
//    the leader changes;
//  - the leader answered 503 (not the leader after all, no lease yet, database unreachable, or
//    an unknown outcome): after `retry_pause`.
// Sending a write again is safe only because the request carries an Idempotency-Key
// (idempotency_key.h): the caller must set one. The result is the leader's answer, or no answer
// with whether any attempt may have been applied.
//
// Connections are kept alive per leader address. All I/O runs on the Forwarder's own thread; a
// second thread sleeps on the View's change futex and tells the I/O thread of a new leader.
//
// Thread safety: Forward may be called from any thread, and its `done` runs on the I/O thread
// (it must not block). Start and Stop from one thread.
#ifndef INSTAFACE_GRAPHSERVER_FORWARDER_H_
#define INSTAFACE_GRAPHSERVER_FORWARDER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "instaface/graphserver/http_server.h"
#include "instaface/view.h"

namespace instaface::graphserver {

struct ForwarderOptions {
  std::string self_app_address;               // never forwarded to: this node's own address
  std::chrono::milliseconds timeout{5000};    // per forward, over all of its attempts
  std::chrono::milliseconds retry_pause{25};  // before trying the same leader again
  size_t max_idle_per_address = 64;           // kept-alive connections per leader
};

struct ForwardResult {
  bool answered = false;  // `response` is the leader's final answer
  HttpResponse response;  // when answered (a 503 when the timeout ended its retries)
  // Some attempt was sent and got no definite answer: the write may have been applied.
  bool maybe_applied = false;
  std::string error;  // when not answered: why the last attempt got no answer
  int attempts = 0;   // requests sent or tried, 1 when nothing went wrong
};

class Forwarder {
 public:
  using Done = std::function<void(ForwardResult)>;

  // `view` must outlive the Forwarder.
  Forwarder(const View& view, ForwarderOptions options);
  ~Forwarder();  // Stop()
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  void Start();
  // Ends the forwards in flight (each gets a "shutting down" result) and joins the threads.
  // Forwards after Stop are answered at once. Idempotent.
  void Stop();

  // Sends `request` (target, method, body and headers as given; Host is filled in). `done` is
  // called exactly once.
  void Forward(HttpRequest request, Done done);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_FORWARDER_H_

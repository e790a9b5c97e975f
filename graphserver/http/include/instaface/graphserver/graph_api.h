// GraphApi: the graphserver's request handler. It maps each route to the GraphService, sends
// writes through the elected leader, serves the original's timeline routes (/api/timeline/...)
// and the console page, and answers the operational routes (/metrics, /healthz, /readyz,
// /api/graph/unreachable, /api/graph/unplugged, /api/graph/events).
//
// Writes: when this node leads (the View says leader, lease valid, agent alive) the write runs
// here, fenced by the snapshot's term; otherwise it is forwarded (forwarder.h), with the same
// method, path and body, to the leader's app address, and the leader's answer is returned. A
// forwarded request carries kForwardedHeader, and a node that receives one without leading
// answers 503 instead of forwarding again, so a stale view on two nodes cannot bounce a write
// around. No leader, a stale agent, an unreachable leader or a lost fence: 503 with
// Retry-After: 1.
//
// Every write goes under an Idempotency-Key, the client's or one made here, and its answer says
// which, and on failure whether it may have been applied (idempotency_key.h). The forwarder
// sends a write again under its key when an attempt's outcome is unknown or the leader changes,
// so a follower's write follows a new leader at once and is still written once.
//
// Every error body is {"error": "..."}.
//
// Thread safety: Handle() is called concurrently from the server's worker threads, HandleFast()
// from its I/O threads.
#ifndef INSTAFACE_GRAPHSERVER_GRAPH_API_H_
#define INSTAFACE_GRAPHSERVER_GRAPH_API_H_

#include <chrono>
#include <memory>
#include <string>

#include "instaface/graph/graph_service.h"
#include "instaface/graph/miss_filler.h"
#include "instaface/graphserver/cluster_view.h"
#include "instaface/graphserver/console_assets.h"
#include "instaface/graphserver/console_events.h"
#include "instaface/graphserver/forwarder.h"
#include "instaface/graphserver/graph_metrics.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/http_server.h"
#include "instaface/graphserver/route.h"
#include "instaface/view.h"

namespace instaface::graphserver {

// Marks a request one graphserver sent to another (a forwarded write or a cache fill).
inline constexpr const char kForwardedHeader[] = "X-Instaface-Forwarded";

struct GraphApiOptions {
  std::string self_app_address;  // this server's own address as the agent advertises it
  std::string control_socket;    // the agent's control socket; empty disables the fault routes
  // A forwarded write's attempts end this long after it arrived (forwarder.h); the pause is
  // between attempts at the same leader.
  std::chrono::milliseconds forward_timeout{5000};
  std::chrono::milliseconds forward_retry_pause{25};
  std::chrono::milliseconds fill_timeout{1000};
  std::chrono::milliseconds control_timeout{2000};
  // The console page's files (ConsoleAssets() in the server); null: `/` answers 404.
  const std::vector<ConsoleAsset>* console_assets = nullptr;
};

class GraphApi {
 public:
  // Bodies up to this size may take the fast path; a larger one is parsed on a worker thread,
  // away from the I/O thread that serves other connections.
  static constexpr size_t kFastPathBodyLimit = 64 * 1024;

  // All references must outlive the GraphApi.
  GraphApi(graph::GraphService& service, const View& view, GraphMetrics& metrics,
           GraphApiOptions options);
  ~GraphApi();

  HttpResponse Handle(HttpRequest&& request);

  // The HttpServer fast path, with no worker thread waiting on a write: on the leader, a
  // well-formed entity create is handed to the group commit from the I/O thread and answered
  // from its callback (a bad type or attributes included, with the same 400 as Handle); on a
  // follower, a well-formed create of either kind is handed to the forwarder. Returns false,
  // leaving the request untouched, for everything else (other routes, a bad key or body, a
  // follower with no leader to forward to, a leader's association or no group commit), which
  // Handle then answers.
  bool HandleFast(HttpRequest& request, HttpServer::Respond respond);

  // A MissFiller that reads a follower's cache misses from the leader's read routes. Install it
  // with GraphService::set_miss_filler before serving.
  std::shared_ptr<graph::MissFiller> MakeLeaderMissFiller();

  // The HttpServer stream path: takes GET /api/graph/events as a console event stream.
  bool HandleStream(const HttpRequest& request, std::shared_ptr<EventStream> stream);

  // Answers the forwards in flight and refuses later ones with a 503; call it while the HTTP
  // server still answers, as forwards are answered through it. The destructor calls it too.
  void StopForwarding() { forwarder_.Stop(); }

  // Feeds the console's events and serves /api/graph/events (set before serving).
  void set_console_events(ConsoleEvents* events) { events_ = events; }

 private:
  class LeaderFiller;
  HttpResponse Dispatch(HttpRequest& request, Route& route, bool& database_error);
  HttpResponse Write(HttpRequest& request, const Route& route, bool& database_error);
  // Why this follower cannot forward a write now (empty: it can, to the leader it names).
  std::string ForwardTarget(const Snapshot& s) const;
  // Sends a write to the leader under `key`; `respond` gets the answer on the forwarder's
  // thread.
  void ForwardWrite(const HttpRequest& request, const Route& route, const std::string& key,
                    std::function<void(HttpResponse)> respond);
  HttpResponse Query(const HttpRequest& request, bool& database_error);
  HttpResponse Timeline(const HttpRequest& request, int64_t user, bool& database_error);
  HttpResponse TimelineCluster(const HttpRequest& request);
  HttpResponse Console(const HttpRequest& request, const std::string& file);
  HttpResponse Unplugged(const HttpRequest& request, bool put);
  HttpResponse Unreachable(const HttpRequest& request);
  // This node's view of the cluster, with the agent's peers when its socket answers.
  common::StatusOr<ClusterView> Cluster();
  HttpResponse Ready(const HttpRequest& request);
  HttpResponse Metrics(const HttpRequest& request);

  graph::GraphService& service_;
  const View& view_;
  GraphMetrics& metrics_;
  GraphApiOptions options_;
  ClientPool forward_clients_;  // the cache fills' reads from the leader
  Forwarder forwarder_;         // writes to the leader
  ConsoleEvents* events_ = nullptr;
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_GRAPH_API_H_

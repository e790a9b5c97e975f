#include "instaface/graphserver/graph_api.h"

#include <cctype>
#include <chrono>

#include <nlohmann/json.hpp>

#include "instaface/control/control_client.h"

namespace instaface::graphserver {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {

// Set while a worker thread handles a request that another graphserver sent: such a request
// must be answered from this node's own database, never passed on again.
thread_local bool handling_forwarded = false;

std::string DumpJson(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse Unavailable(const std::string& message, const HttpRequest& req) {
  HttpResponse res = JsonError(503, message, req.version(), req.keep_alive());
  res.set(http::field::retry_after, "1");
  return res;
}

int HttpStatusFor(common::StatusCode code) {
  switch (code) {
    case common::StatusCode::kOk:
      return 200;
    case common::StatusCode::kInvalidArgument:
      return 400;
    case common::StatusCode::kNotFound:
      return 404;
    case common::StatusCode::kConflict:
      return 409;
    case common::StatusCode::kFenceLost:
    case common::StatusCode::kUnavailable:
      return 503;
    case common::StatusCode::kUnknown:
    case common::StatusCode::kInternal:
      return 500;
  }
  return 500;
}

HttpResponse FromStatus(const common::Status& status, unsigned version, bool keep_alive,
                        bool& database_error) {
  int code = HttpStatusFor(status.code());
  if (status.code() == common::StatusCode::kUnavailable ||
      status.code() == common::StatusCode::kInternal) {
    database_error = true;
  }
  std::string message = status.message();
  if (status.code() == common::StatusCode::kFenceLost) {
    message = "write refused: a newer leader holds the fence (" + message + ")";
  }
  HttpResponse res = JsonError(code, message, version, keep_alive);
  if (code == 503) res.set(http::field::retry_after, "1");
  return res;
}

HttpResponse FromStatus(const common::Status& status, const HttpRequest& req,
                        bool& database_error) {
  return FromStatus(status, req.version(), req.keep_alive(), database_error);
}

// Parses a request body as JSON. An empty body is `empty_value`.
bool ParseBody(const HttpRequest& req, const json& empty_value, json& out, std::string& error) {
  const std::string& body = req.body();
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    out = empty_value;
    return true;
  }
  try {
    out = json::parse(body);
    return true;
  } catch (const json::parse_error& e) {
    error = std::string("malformed JSON body: ") + e.what();
    return false;
  }
}

// A role that can act as leader: the agent is alive, says this node leads, and the lease holds.
bool Leads(const Snapshot& s) { return !s.stale && s.role == Role::kLeader && s.lease_valid; }

}  // namespace

class GraphApi::LeaderFiller : public graph::MissFiller {
 public:
  explicit LeaderFiller(GraphApi& api) : api_(api) {}

  bool ShouldUse() const override {
    if (handling_forwarded) return false;
    Snapshot s = api_.view_.snapshot();
    return !s.stale && s.role != Role::kLeader && !s.leader_app_address.empty() &&
           s.leader_app_address != api_.options_.self_app_address;
  }
  common::StatusOr<json> FetchEntities(const std::vector<int64_t>& ids) override {
    return Fetch("/api/graph/entities", json(ids));
  }
  common::StatusOr<json> FetchAssociations(const std::string& type,
                                           const std::vector<int64_t>& from_ids) override {
    return Fetch("/api/graph/entities/" + type, json(from_ids));
  }

 private:
  common::StatusOr<json> Fetch(const std::string& target, const json& body) {
    Snapshot s = api_.view_.snapshot();
    if (s.leader_app_address.empty()) return common::Status::Unavailable("no leader known");
    HttpRequest req{http::verb::post, target, 11};
    req.set(http::field::content_type, "application/json");
    req.set(kForwardedHeader, s.self_id.empty() ? "follower" : s.self_id);
    req.body() = body.dump();
    ClientResult r = api_.forward_clients_.Send(s.leader_app_address, std::move(req),
                                                api_.options_.fill_timeout);
    if (!r.ok) return common::Status::Unavailable("leader read failed: " + r.error);
    if (r.response.result_int() != 200) {
      return common::Status::Unavailable("leader answered " +
                                         std::to_string(r.response.result_int()));
    }
    json answer = json::parse(r.response.body(), nullptr, false);
    if (answer.is_discarded() || !answer.is_array()) {
      return common::Status::Unavailable("leader answered something other than a JSON array");
    }
    return answer;
  }

  GraphApi& api_;
};

GraphApi::GraphApi(graph::GraphService& service, const View& view, GraphMetrics& metrics,
                   GraphApiOptions options)
    : service_(service), view_(view), metrics_(metrics), options_(std::move(options)) {}

GraphApi::~GraphApi() = default;

std::shared_ptr<graph::MissFiller> GraphApi::MakeLeaderMissFiller() {
  return std::make_shared<LeaderFiller>(*this);
}

HttpResponse GraphApi::Handle(HttpRequest&& request) {
  auto start = std::chrono::steady_clock::now();
  RouteMatch match =
      MatchRoute(std::string_view(request.method_string().data(), request.method_string().size()),
                 std::string_view(request.target().data(), request.target().size()));
  HttpResponse res;
  const char* route_label = "unmatched";
  bool database_error = false;
  if (match.error) {
    route_label = match.error->path_template;
    res = JsonError(match.error->status, match.error->message, request.version(),
                    request.keep_alive());
    if (!match.error->allow.empty()) res.set(http::field::allow, match.error->allow);
  } else {
    route_label = match.route->path_template;
    handling_forwarded = request.find(kForwardedHeader) != request.end();
    try {
      res = Dispatch(request, *match.route, database_error);
    } catch (const std::exception& e) {
      // json type errors inside the service are the caller's input, anything else is ours.
      res = JsonError(500, std::string("internal error: ") + e.what(), request.version(),
                      request.keep_alive());
    }
    handling_forwarded = false;
  }
  if (database_error) metrics_.CountDatabaseError();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.ObserveRequest(route_label, res.result_int(), seconds);
  if (request.method() == http::verb::head) res.body().clear();
  res.prepare_payload();
  return res;
}

bool GraphApi::HandleFast(HttpRequest& req, HttpServer::Respond respond) {
  if (!service_.group_commit() || req.method() != http::verb::post ||
      req.body().size() > kFastPathBodyLimit) {
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  RouteMatch match =
      MatchRoute(std::string_view(req.method_string().data(), req.method_string().size()),
                 std::string_view(req.target().data(), req.target().size()));
  if (match.error || match.route->kind != RouteKind::kCreateEntity) return false;
  Snapshot s = view_.snapshot();
  if (!Leads(s)) return false;
  // A body that is not a JSON object goes the ordinary way, which explains the error; the
  // service validates the type and attributes itself and answers a bad one at once.
  json attributes;
  std::string error;
  if (!ParseBody(req, json::object(), attributes, error) || !attributes.is_object()) return false;
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  const char* route_label = match.route->path_template;
  service_.CreateEntityAsync(
      match.route->type, attributes, s.term,
      [this, respond = std::move(respond), version, keep_alive, route_label,
       start](common::StatusOr<int64_t> id) {
        bool database_error = false;
        if (id.ok() && events_) events_->CountWrite();
        HttpResponse res = id.ok() ? JsonResponse(200, std::to_string(*id), version, keep_alive)
                                   : FromStatus(id.status(), version, keep_alive, database_error);
        if (database_error) metrics_.CountDatabaseError();
        metrics_.ObserveRequest(
            route_label, res.result_int(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        respond(std::move(res));
      });
  return true;
}

HttpResponse GraphApi::Dispatch(HttpRequest& req, Route& route, bool& database_error) {
  auto answer = [&](const common::StatusOr<json>& r) {
    if (!r.ok()) return FromStatus(r.status(), req, database_error);
    return JsonResponse(200, DumpJson(*r), req.version(), req.keep_alive());
  };
  json body;
  std::string error;
  switch (route.kind) {
    case RouteKind::kGetEntities:
      if (!ParseBody(req, json::array(), body, error)) return JsonError(400, error);
      return answer(service_.GetEntities(body));
    case RouteKind::kGetAssociations:
      if (!ParseBody(req, json::array(), body, error)) return JsonError(400, error);
      return answer(service_.GetAssociations(route.type, body));
    case RouteKind::kQuery:
      return Query(req, database_error);
    case RouteKind::kRandom:
      return answer(service_.Random(route.type, route.from));
    case RouteKind::kCreateEntity:
    case RouteKind::kCreateAssociation:
      return Write(req, route, database_error);
    case RouteKind::kUnreachable:
      return Unreachable(req);
    case RouteKind::kGetUnplugged:
      return Unplugged(req, false);
    case RouteKind::kPutUnplugged:
      return Unplugged(req, true);
    case RouteKind::kMetrics:
      return Metrics(req);
    case RouteKind::kHealth:
      return JsonResponse(200, R"({"status":"ok"})", req.version(), req.keep_alive());
    case RouteKind::kReady:
      return Ready(req);
    case RouteKind::kEvents:
      return JsonError(503, "this server does not stream console events", req.version(),
                       req.keep_alive());
    case RouteKind::kTimelineCluster:
      return TimelineCluster(req);
    case RouteKind::kTimeline:
      return Timeline(req, route.from, database_error);
    case RouteKind::kConsole:
      return Console(req, route.type);
  }
  return JsonError(404, "no route");
}

HttpResponse GraphApi::Write(HttpRequest& req, const Route& route, bool& database_error) {
  // Bad input is refused here, on whichever node receives it, before any forwarding.
  json attributes;
  std::string error;
  if (!ParseBody(req, json::object(), attributes, error)) {
    return JsonError(400, error, req.version(), req.keep_alive());
  }
  if (!attributes.is_object()) {
    return JsonError(400, "body must be a JSON object of attributes", req.version(),
                     req.keep_alive());
  }

  Snapshot s = view_.snapshot();
  if (Leads(s)) {
    if (route.kind == RouteKind::kCreateEntity) {
      common::StatusOr<int64_t> id = service_.CreateEntity(route.type, attributes, s.term);
      if (!id.ok()) return FromStatus(id.status(), req, database_error);
      if (events_) events_->CountWrite();
      return JsonResponse(200, std::to_string(*id), req.version(), req.keep_alive());
    }
    common::Status st =
        service_.CreateAssociation(route.type, route.from, route.to, attributes, s.term);
    if (!st.ok()) return FromStatus(st, req, database_error);
    if (events_) events_->CountWrite();
    return JsonResponse(200, "{}", req.version(), req.keep_alive());
  }
  if (handling_forwarded) {
    metrics_.CountForward("refused");
    return Unavailable("this node received a forwarded write but is not the leader", req);
  }
  if (s.stale) return Unavailable("the election agent is not responding; no leader known", req);
  if (s.role == Role::kLeader) {
    return Unavailable("this node's leader lease is not valid yet; retry", req);
  }
  if (s.leader_app_address.empty()) return Unavailable("no leader elected yet", req);
  if (s.leader_app_address == options_.self_app_address) {
    return Unavailable("the published leader is this node but it does not hold the lease", req);
  }
  HttpResponse res = Forward(req, s.leader_app_address);
  if (res.result_int() == 200 && route.kind == RouteKind::kCreateAssociation) {
    service_.InvalidateAssociations(route.type, route.from);
  }
  return res;
}

HttpResponse GraphApi::Forward(HttpRequest& req, const std::string& leader_address) {
  HttpRequest out{req.method(), req.target(), 11};
  out.set(http::field::content_type, "application/json");
  Snapshot s = view_.snapshot();
  out.set(kForwardedHeader, s.self_id.empty() ? "follower" : s.self_id);
  out.body() = req.body();
  ClientResult r = forward_clients_.Send(leader_address, std::move(out), options_.forward_timeout);
  if (!r.ok) {
    metrics_.CountForward("error");
    return Unavailable("could not reach the leader at " + leader_address + ": " + r.error, req);
  }
  metrics_.CountForward("ok");
  if (events_) events_->CountForward();
  HttpResponse res{r.response.result(), req.version()};
  res.set(http::field::content_type, "application/json");
  auto retry = r.response.find(http::field::retry_after);
  if (retry != r.response.end()) res.set(http::field::retry_after, retry->value());
  res.body() = std::move(r.response.body());
  res.keep_alive(req.keep_alive());
  return res;
}

common::StatusOr<ClusterView> GraphApi::Cluster() {
  Snapshot s = view_.snapshot();
  if (options_.control_socket.empty()) return ClusterFromSnapshot(s, options_.self_app_address);
  auto status = control::QueryStatusOnce(options_.control_socket, options_.control_timeout);
  if (!status.ok()) {
    return common::Status::Unavailable("agent control socket: " + status.status().message());
  }
  return ClusterFromAgent(s, *status, options_.self_app_address);
}

// GET answers the nodes this server treats as unplugged. PUT {"node": <url or id>,
// "unplugged": bool} (keys in any case, as the original's model binder reads them) switches
// one: this node itself leaves the election (the agent stops sending and receiving), a peer
// has its link from this node cut both ways. The original Monitor sends the same PUT to every
// node, which isolates that node from all; sent to one node, it cuts one link. A bare `true` or
// `false`, or {"unplugged": bool} without "node", switches this node.
HttpResponse GraphApi::Unplugged(const HttpRequest& req, bool put) {
  if (put) {
    if (options_.control_socket.empty()) {
      return JsonError(503, "no agent control socket configured (--socket)", req.version(),
                       req.keep_alive());
    }
    json body;
    std::string error;
    if (!ParseBody(req, json(), body, error)) return JsonError(400, error);
    std::optional<bool> on;
    std::optional<std::string> node;
    if (body.is_boolean()) {
      on = body.get<bool>();
    } else if (body.is_object()) {
      for (auto it = body.begin(); it != body.end(); ++it) {
        std::string key = it.key();
        for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (key == "unplugged" && it->is_boolean()) {
          on = it->get<bool>();
        } else if (key == "node" && it->is_string() && !it->get_ref<const std::string&>().empty()) {
          node = it->get<std::string>();
        } else {
          return JsonError(400,
                           "unplugged body: unexpected or mistyped key '" + it.key().substr(0, 32) +
                               "' (expected \"node\": string and \"unplugged\": boolean)",
                           req.version(), req.keep_alive());
        }
      }
    }
    if (!on) {
      return JsonError(400,
                       "body must be {\"node\": <node url>, \"unplugged\": true|false}, or true "
                       "or false for this node",
                       req.version(), req.keep_alive());
    }
    control::Request creq;
    creq.command = control::Command::kUnplug;
    creq.unplug_on = *on;
    if (node) {
      auto cluster = Cluster();
      if (!cluster.ok()) return Unavailable(cluster.status().message(), req);
      if (!cluster->IsSelf(*node)) {
        const PeerView* peer = cluster->FindPeer(*node);
        if (peer == nullptr) {
          return JsonError(404, "no node '" + node->substr(0, 128) + "' in this cluster",
                           req.version(), req.keep_alive());
        }
        creq.unplug_peer = peer->id;
      }
    }
    auto reply = control::CallOnce(options_.control_socket, creq, options_.control_timeout);
    if (!reply.ok()) return Unavailable("agent control socket: " + reply.status().message(), req);
    const json& r = *reply;
    if (r.contains("ok") && r["ok"].is_boolean() && !r["ok"].get<bool>()) {
      return JsonError(502, "agent refused: " + r.value("error", std::string("unknown error")),
                       req.version(), req.keep_alive());
    }
  }
  auto cluster = Cluster();
  if (!cluster.ok()) return Unavailable(cluster.status().message(), req);
  json list = cluster->UnpluggedUrls();
  return JsonResponse(200, DumpJson(put ? json{{"unplugged", list}} : list), req.version(),
                      req.keep_alive());
}

// The original's clients read a list of node names: the peers this node's agent has not heard
// from within the election timeout, by their app URLs.
HttpResponse GraphApi::Unreachable(const HttpRequest& req) {
  auto cluster = Cluster();
  if (!cluster.ok()) return Unavailable(cluster.status().message(), req);
  return JsonResponse(200, DumpJson(cluster->UnreachableUrls()), req.version(), req.keep_alive());
}

HttpResponse GraphApi::TimelineCluster(const HttpRequest& req) {
  auto cluster = Cluster();
  if (!cluster.ok()) return Unavailable(cluster.status().message(), req);
  return JsonResponse(200, DumpJson(ClusterStateJson(*cluster)), req.version(), req.keep_alive());
}

HttpResponse GraphApi::Query(const HttpRequest& req, bool& database_error) {
  json body;
  std::string error;
  if (!ParseBody(req, json(), body, error)) return JsonError(400, error);
  if (body.is_null()) {
    return JsonError(400, "query needs a body {\"entities\": [ids], \"template\": {...}}",
                     req.version(), req.keep_alive());
  }
  common::StatusOr<json> answer = service_.Query(body);
  if (!answer.ok()) return FromStatus(answer.status(), req, database_error);
  if (events_) {
    const json& stats = (*answer)["stats"];
    events_->OnQuery((*answer)["entities"].size(), stats["calls"].get<int64_t>(),
                     stats["timeRunning"].get<double>(), stats["timeFetching"].get<double>());
  }
  return JsonResponse(200, DumpJson(*answer), req.version(), req.keep_alive());
}

// The original TimelineWebServer's GET /api/timeline/{id}: the user with what they posted (and
// who liked it) and what they liked (and who posted it), in the query envelope, plus the time
// the whole request took. Served here, from the same caches and the same view of the leader as
// every other read, rather than by a second binary that would only call this one.
HttpResponse GraphApi::Timeline(const HttpRequest& req, int64_t user, bool& database_error) {
  const auto started = std::chrono::steady_clock::now();
  const json request = {
      {"entities", {user}},
      {"template", {{"posted", {{"likedby", nullptr}}}, {"liked", {{"postedby", nullptr}}}}}};
  common::StatusOr<json> answer = service_.Query(request);
  if (!answer.ok()) return FromStatus(answer.status(), req, database_error);
  if ((*answer)["entities"].empty()) {
    return JsonError(404, "no entity " + std::to_string(user), req.version(), req.keep_alive());
  }
  (*answer)["overallTime"] =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return JsonResponse(200, DumpJson(*answer), req.version(), req.keep_alive());
}

HttpResponse GraphApi::Console(const HttpRequest& req, const std::string& file) {
  const ConsoleAsset* asset =
      options_.console_assets ? FindConsoleAsset(*options_.console_assets, file) : nullptr;
  if (asset == nullptr) {
    return JsonError(404, "no console file '" + file + "' in this build", req.version(),
                     req.keep_alive());
  }
  HttpResponse res{http::status::ok, req.version()};
  res.set(http::field::content_type, std::string(asset->content_type));
  // The files are part of the binary: a new build is a new server, so a short cache is safe.
  res.set(http::field::cache_control, "max-age=60");
  res.keep_alive(req.keep_alive());
  res.body().assign(asset->body.data(), asset->body.size());
  return res;
}

bool GraphApi::HandleStream(const HttpRequest& req, std::shared_ptr<EventStream> stream) {
  if (events_ == nullptr) return false;
  RouteMatch match =
      MatchRoute(std::string_view(req.method_string().data(), req.method_string().size()),
                 std::string_view(req.target().data(), req.target().size()));
  if (!match.route || match.route->kind != RouteKind::kEvents) return false;
  metrics_.ObserveRequest(match.route->path_template, 200, 0);
  events_->Subscribe(std::move(stream));
  return true;
}

HttpResponse GraphApi::Ready(const HttpRequest& req) {
  Snapshot s = view_.snapshot();
  common::Status db = service_.CheckDatabase();
  json answer = {{"database", db.ok() ? "ok" : db.ToString()},
                 {"leader", s.leader_id},
                 {"term", s.term},
                 {"role", RoleName(s.role)},
                 {"stale", s.stale}};
  bool ready = db.ok() && !s.stale && !s.leader_id.empty();
  answer["ready"] = ready;
  return JsonResponse(ready ? 200 : 503, DumpJson(answer), req.version(), req.keep_alive());
}

HttpResponse GraphApi::Metrics(const HttpRequest& req) {
  graph::GraphStats stats = service_.stats();
  metrics_.SetCacheTotals("entity", stats.entity_cache_hits, stats.entity_cache_misses);
  metrics_.SetCacheTotals("association", stats.association_cache_hits,
                          stats.association_cache_misses);
  if (service_.group_commit()) {
    metrics_.SetBatchTotals(stats.group_commits, stats.group_commit_creates);
  }
  Snapshot s = view_.snapshot();
  metrics_.SetLeader(Leads(s), s.term);
  HttpResponse res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.keep_alive(req.keep_alive());
  res.body() = metrics_.Serialize();
  return res;
}

}  // namespace instaface::graphserver

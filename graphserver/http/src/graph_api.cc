#include "instaface/graphserver/graph_api.h"

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
  if (!batcher_ || req.method() != http::verb::post || req.body().size() > kFastPathBodyLimit) {
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
  // batcher validates the type and attributes itself and answers a bad one at once.
  json attributes;
  std::string error;
  if (!ParseBody(req, json::object(), attributes, error) || !attributes.is_object()) return false;
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  const char* route_label = match.route->path_template;
  batcher_->CreateAsync(
      match.route->type, attributes, s.term,
      [this, respond = std::move(respond), version, keep_alive, route_label,
       start](common::StatusOr<int64_t> id) {
        bool database_error = false;
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
      if (!ParseBody(req, json::object(), body, error)) return JsonError(400, error);
      return answer(service_.Query(body));
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
      common::StatusOr<int64_t> id = batcher_
                                         ? batcher_->Create(route.type, attributes, s.term)
                                         : service_.CreateEntity(route.type, attributes, s.term);
      if (!id.ok()) return FromStatus(id.status(), req, database_error);
      return JsonResponse(200, std::to_string(*id), req.version(), req.keep_alive());
    }
    common::Status st =
        service_.CreateAssociation(route.type, route.from, route.to, attributes, s.term);
    if (!st.ok()) return FromStatus(st, req, database_error);
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
  HttpResponse res{r.response.result(), req.version()};
  res.set(http::field::content_type, "application/json");
  auto retry = r.response.find(http::field::retry_after);
  if (retry != r.response.end()) res.set(http::field::retry_after, retry->value());
  res.body() = std::move(r.response.body());
  res.keep_alive(req.keep_alive());
  return res;
}

HttpResponse GraphApi::Unplugged(const HttpRequest& req, bool put) {
  if (options_.control_socket.empty()) {
    return JsonError(503, "no agent control socket configured (--socket)", req.version(),
                     req.keep_alive());
  }
  control::Request creq;
  creq.command = control::Command::kStatus;
  bool on = false;
  if (put) {
    json body;
    std::string error;
    if (!ParseBody(req, json(), body, error)) return JsonError(400, error);
    if (body.is_boolean()) {
      on = body.get<bool>();
    } else if (body.is_object() && body.contains("unplugged") && body["unplugged"].is_boolean()) {
      on = body["unplugged"].get<bool>();
    } else {
      return JsonError(400, "body must be true, false or {\"unplugged\": true|false}",
                       req.version(), req.keep_alive());
    }
    creq.command = control::Command::kUnplug;
    creq.unplug_on = on;
  }
  auto reply = control::CallOnce(options_.control_socket, creq, options_.control_timeout);
  if (!reply.ok()) return Unavailable("agent control socket: " + reply.status().message(), req);
  const json& r = *reply;
  if (r.contains("ok") && r["ok"].is_boolean() && !r["ok"].get<bool>()) {
    return JsonError(502, "agent refused: " + r.value("error", std::string("unknown error")),
                     req.version(), req.keep_alive());
  }
  bool unplugged = on;
  if (r.contains("unplugged") && r["unplugged"].is_boolean())
    unplugged = r["unplugged"].get<bool>();
  return JsonResponse(200, json{{"unplugged", unplugged}}.dump(), req.version(), req.keep_alive());
}

HttpResponse GraphApi::Unreachable(const HttpRequest& req) {
  Snapshot s = view_.snapshot();
  json answer = {{"self", s.self_id},
                 {"leader", s.leader_id},
                 {"term", s.term},
                 {"stale", s.stale},
                 {"unreachable", json::array()}};
  if (options_.control_socket.empty()) {
    answer["source"] = "none";
    return JsonResponse(200, DumpJson(answer), req.version(), req.keep_alive());
  }
  auto status = control::QueryStatusOnce(options_.control_socket, options_.control_timeout);
  if (!status.ok()) return Unavailable("agent control socket: " + status.status().message(), req);
  answer["source"] = "agent";
  // The agent lists its peers with whether it heard from them recently; report the silent ones.
  const json described = control::ToJson(*status);
  for (const control::PeerStatus& peer : status->peers) {
    if (!peer.reachable) answer["unreachable"].push_back(peer.id);
  }
  answer["peers"] = described["peers"];
  answer["unplugged"] = status->unplugged;
  return JsonResponse(200, DumpJson(answer), req.version(), req.keep_alive());
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
  if (batcher_) metrics_.SetBatchTotals(batcher_->transactions(), batcher_->creates());
  Snapshot s = view_.snapshot();
  metrics_.SetLeader(Leads(s), s.term);
  HttpResponse res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.keep_alive(req.keep_alive());
  res.body() = metrics_.Serialize();
  return res;
}

}  // namespace instaface::graphserver

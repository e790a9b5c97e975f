#include "instaface/graphserver/graph_api.h"

#include <cctype>
#include <chrono>
#include <future>
#include <iterator>

#include <nlohmann/json.hpp>

#include "instaface/control/control_client.h"
#include "instaface/graphserver/idempotency_key.h"

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
    case common::StatusCode::kKeyReused:
      return 422;
    case common::StatusCode::kFenceLost:
    case common::StatusCode::kUnavailable:
    case common::StatusCode::kOutcomeUnknown:
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

// What a failed write's answer says of it (idempotency_key.h).
constexpr const char kOutcomeNone[] = "none";
constexpr const char kOutcomeUnknown[] = "unknown";

// A failed write's answer: {"error", "outcome"} and the outcome header, Retry-After on a 503.
HttpResponse WriteError(int status, const std::string& message, const char* outcome,
                        unsigned version, bool keep_alive) {
  json body = {{"error", message}, {"outcome", outcome}};
  HttpResponse res = JsonResponse(status, DumpJson(body), version, keep_alive);
  res.set(kWriteOutcomeHeader, outcome);
  if (status == 503) res.set(http::field::retry_after, "1");
  return res;
}

HttpResponse WriteError(int status, const std::string& message, const char* outcome,
                        const HttpRequest& req) {
  return WriteError(status, message, outcome, req.version(), req.keep_alive());
}

// A write the service refused or could not finish.
HttpResponse WriteFailure(const common::Status& status, unsigned version, bool keep_alive,
                          bool& database_error) {
  HttpResponse res = FromStatus(status, version, keep_alive, database_error);
  json body = json::parse(res.body(), nullptr, false);
  const char* outcome =
      status.code() == common::StatusCode::kOutcomeUnknown ? kOutcomeUnknown : kOutcomeNone;
  return WriteError(res.result_int(),
                    body.is_object() ? body.value("error", status.message()) : status.message(),
                    outcome, version, keep_alive);
}

// The key a write goes under: the client's Idempotency-Key, or a fresh one.
common::StatusOr<std::string> WriteKey(const HttpRequest& req) {
  auto [first, last] = req.equal_range(kIdempotencyKeyHeader);
  if (first == last) return MakeIdempotencyKey();
  if (std::next(first) != last) {
    return common::Status::InvalidArgument(
        "Idempotency-Key: send one key per request, not several headers");
  }
  return ParseIdempotencyKey(std::string_view(first->value().data(), first->value().size()));
}

// The answer of a write made (or refused) under `key` names it, so that the client can retry.
HttpResponse WithKey(HttpResponse res, const std::string& key) {
  res.set(kIdempotencyKeyHeader, FormatIdempotencyKey(key));
  return res;
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
    req.set(kForwardedHeader, s.self_id.empty() ? "follower" : s.self_id.c_str());
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
    : service_(service),
      view_(view),
      metrics_(metrics),
      options_(std::move(options)),
      forwarder_(view, ForwarderOptions{options_.self_app_address, options_.forward_timeout,
                                        options_.forward_retry_pause}) {
  forwarder_.Start();
}

GraphApi::~GraphApi() { forwarder_.Stop(); }

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
  if (req.method() != http::verb::post || req.body().size() > kFastPathBodyLimit) return false;
  const auto start = std::chrono::steady_clock::now();
  RouteMatch match =
      MatchRoute(std::string_view(req.method_string().data(), req.method_string().size()),
                 std::string_view(req.target().data(), req.target().size()));
  if (match.error || (match.route->kind != RouteKind::kCreateEntity &&
                      match.route->kind != RouteKind::kCreateAssociation)) {
    return false;
  }
  const Snapshot s = view_.snapshot();
  const bool leads = Leads(s);
  if (leads && (match.route->kind != RouteKind::kCreateEntity || !service_.group_commit())) {
    return false;
  }
  // Every refusal (a bad key or body, a forwarded write here, no leader to forward to) goes the
  // ordinary way, which explains it.
  if (!leads && (req.find(kForwardedHeader) != req.end() || !ForwardTarget(s).empty())) {
    return false;
  }
  common::StatusOr<std::string> key = WriteKey(req);
  if (!key.ok()) return false;
  json attributes;
  std::string error;
  if (!ParseBody(req, json::object(), attributes, error) || !attributes.is_object()) return false;
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  const char* route_label = match.route->path_template;
  auto answer = [this, respond = std::move(respond), route_label, start](HttpResponse res) {
    metrics_.ObserveRequest(
        route_label, res.result_int(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    res.prepare_payload();
    respond(std::move(res));
  };
  if (!leads) {
    ForwardWrite(req, *match.route, *key, std::move(answer));
    return true;
  }
  // The service validates the type and attributes itself and answers a bad one at once.
  service_.CreateEntityAsync(
      match.route->type, attributes, s.term,
      [this, answer = std::move(answer), version, keep_alive,
       key = *key](common::StatusOr<int64_t> id) {
        bool database_error = false;
        if (id.ok() && events_) events_->CountWrite();
        HttpResponse res = id.ok() ? JsonResponse(200, std::to_string(*id), version, keep_alive)
                                   : WriteFailure(id.status(), version, keep_alive, database_error);
        if (database_error) metrics_.CountDatabaseError();
        answer(WithKey(std::move(res), key));
      },
      *key);
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
  common::StatusOr<std::string> key = WriteKey(req);
  if (!key.ok()) return WriteError(400, key.status().message(), kOutcomeNone, req);
  json attributes;
  std::string error;
  if (!ParseBody(req, json::object(), attributes, error)) {
    return WithKey(WriteError(400, error, kOutcomeNone, req), *key);
  }
  if (!attributes.is_object()) {
    return WithKey(WriteError(400, "body must be a JSON object of attributes", kOutcomeNone, req),
                   *key);
  }

  Snapshot s = view_.snapshot();
  if (Leads(s)) {
    if (route.kind == RouteKind::kCreateEntity) {
      common::StatusOr<int64_t> id = service_.CreateEntity(route.type, attributes, s.term, *key);
      if (!id.ok()) {
        return WithKey(WriteFailure(id.status(), req.version(), req.keep_alive(), database_error),
                       *key);
      }
      if (events_) events_->CountWrite();
      return WithKey(JsonResponse(200, std::to_string(*id), req.version(), req.keep_alive()), *key);
    }
    common::Status st =
        service_.CreateAssociation(route.type, route.from, route.to, attributes, s.term, *key);
    if (!st.ok()) {
      return WithKey(WriteFailure(st, req.version(), req.keep_alive(), database_error), *key);
    }
    if (events_) events_->CountWrite();
    return WithKey(JsonResponse(200, "{}", req.version(), req.keep_alive()), *key);
  }
  if (handling_forwarded) {
    metrics_.CountForward("refused");
    return WithKey(WriteError(503, "this node received a forwarded write but is not the leader",
                              kOutcomeNone, req),
                   *key);
  }
  if (std::string why = ForwardTarget(s); !why.empty()) {
    return WithKey(WriteError(503, why, kOutcomeNone, req), *key);
  }
  // A body too large for the I/O thread's fast path: this worker waits for the forward.
  std::promise<HttpResponse> answered;
  ForwardWrite(req, route, *key,
               [&answered](HttpResponse res) { answered.set_value(std::move(res)); });
  return answered.get_future().get();
}

std::string GraphApi::ForwardTarget(const Snapshot& s) const {
  if (s.stale) return "the election agent is not responding; no leader known";
  if (s.role == Role::kLeader) return "this node's leader lease is not valid yet; retry";
  if (s.leader_app_address.empty()) return "no leader elected yet";
  if (s.leader_app_address == options_.self_app_address) {
    return "the published leader is this node but it does not hold the lease";
  }
  return "";
}

void GraphApi::ForwardWrite(const HttpRequest& req, const Route& route, const std::string& key,
                            std::function<void(HttpResponse)> respond) {
  HttpRequest out{req.method(), req.target(), 11};
  out.set(http::field::content_type, "application/json");
  const Snapshot s = view_.snapshot();
  out.set(kForwardedHeader, s.self_id.empty() ? "follower" : s.self_id.c_str());
  // The key makes sending it again safe: the forwarder does, when an attempt's outcome is
  // unknown or the leader changes under it.
  out.set(kIdempotencyKeyHeader, FormatIdempotencyKey(key));
  out.body() = req.body();
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  forwarder_.Forward(std::move(out), [this, route, key, version, keep_alive,
                                      respond = std::move(respond)](ForwardResult r) {
    const bool final_answer = r.answered && !(r.response.result_int() == 503 && r.maybe_applied);
    if (!final_answer) {
      metrics_.CountForward("error");
      std::string why = "could not reach the leader (" + std::to_string(r.attempts) +
                        (r.attempts == 1 ? " attempt" : " attempts") + "): " + r.error;
      if (r.answered) {
        json body = json::parse(r.response.body(), nullptr, false);
        why = "the leader could not write: " +
              (body.is_object() ? body.value("error", std::string("503")) : std::string("503"));
      }
      if (r.maybe_applied) {
        why += "; an earlier attempt may have been applied: retry with the same Idempotency-Key";
      }
      return respond(WithKey(WriteError(503, why, r.maybe_applied ? kOutcomeUnknown : kOutcomeNone,
                                        version, keep_alive),
                             key));
    }
    metrics_.CountForward(r.response.result_int() == 503 ? "error" : "ok");
    if (events_ && r.response.result_int() == 200) events_->CountForward();
    if (r.response.result_int() == 200 && route.kind == RouteKind::kCreateAssociation) {
      service_.InvalidateAssociations(route.type, route.from);
    }
    HttpResponse res{r.response.result(), version};
    res.set(http::field::content_type, "application/json");
    for (auto field : {http::field::retry_after}) {
      auto it = r.response.find(field);
      if (it != r.response.end()) res.set(field, it->value());
    }
    auto outcome = r.response.find(kWriteOutcomeHeader);
    if (outcome != r.response.end()) res.set(kWriteOutcomeHeader, outcome->value());
    res.body() = std::move(r.response.body());
    res.keep_alive(keep_alive);
    respond(WithKey(std::move(res), key));
  });
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

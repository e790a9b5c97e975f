#include "instaface/graphserver/route.h"

#include <limits>
#include <vector>

namespace instaface::graphserver {
namespace {

constexpr std::string_view kApiPrefix = "/api/graph";
constexpr std::string_view kTimelinePrefix = "/api/timeline/";
constexpr std::string_view kConsolePrefix = "/console/";

// A console file name: [A-Za-z0-9_.-], not starting with a dot, so no path can escape.
bool IsConsoleFileName(std::string_view name) {
  if (name.empty() || name.size() > kMaxConsoleFileName || name[0] == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

Route MakeRoute(RouteKind kind, const char* path_template, std::string type = "") {
  Route r;
  r.kind = kind;
  r.path_template = path_template;
  r.type = std::move(type);
  return r;
}

RouteMatch Ok(Route route) { return RouteMatch{std::move(route), std::nullopt}; }

RouteMatch Fail(int status, std::string message, const char* path_template = "unmatched",
                std::string allow = "") {
  return RouteMatch{std::nullopt,
                    RouteError{status, std::move(message), std::move(allow), path_template}};
}

// A known path with the wrong method.
RouteMatch WrongMethod(std::string_view method, const char* path_template, const char* allow) {
  return Fail(405, "method " + std::string(method) + " not allowed on " + path_template,
              path_template, allow);
}

RouteMatch BadType(std::string_view type, const char* path_template) {
  return Fail(400,
              "invalid type '" + std::string(type.substr(0, 32)) +
                  "': expected 1-10 characters from [A-Za-z0-9_-]",
              path_template);
}

RouteMatch BadId(std::string_view what, std::string_view text, const char* path_template) {
  return Fail(400,
              "invalid " + std::string(what) + " '" + std::string(text.substr(0, 32)) +
                  "': expected a positive integer below 2^63",
              path_template);
}

}  // namespace

std::optional<int64_t> ParseId(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');  // 19 digits cannot overflow uint64
  }
  if (value == 0 || value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

bool IsValidType(std::string_view type) {
  if (type.empty() || type.size() > kMaxTypeLength) return false;
  for (char c : type) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

RouteMatch MatchRoute(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  bool get = method == "GET" || method == "HEAD";
  bool post = method == "POST";
  bool put = method == "PUT";

  if (path == "/metrics" || path == "/healthz" || path == "/readyz") {
    const char* tmpl = path == "/metrics"   ? "/metrics"
                       : path == "/healthz" ? "/healthz"
                                            : "/readyz";
    if (!get) return WrongMethod(method, tmpl, "GET");
    RouteKind kind = path == "/metrics"   ? RouteKind::kMetrics
                     : path == "/healthz" ? RouteKind::kHealth
                                          : RouteKind::kReady;
    return Ok(MakeRoute(kind, tmpl));
  }

  if (path == "/" || path == "/index.html" ||
      path.substr(0, kConsolePrefix.size()) == kConsolePrefix) {
    constexpr const char* t = "/console/{file}";
    if (!get) return WrongMethod(method, t, "GET");
    std::string_view name = path.size() <= 1 || path == "/index.html"
                                ? std::string_view("index.html")
                                : path.substr(kConsolePrefix.size());
    if (!IsConsoleFileName(name)) {
      return Fail(404, "no console file " + std::string(name.substr(0, 64)), t);
    }
    return Ok(MakeRoute(RouteKind::kConsole, t, std::string(name)));
  }
  if (path.substr(0, kTimelinePrefix.size()) == kTimelinePrefix) {
    std::string_view rest = path.substr(kTimelinePrefix.size());
    if (rest == "cluster") {
      constexpr const char* t = "/api/timeline/cluster";
      if (!get) return WrongMethod(method, t, "GET");
      return Ok(MakeRoute(RouteKind::kTimelineCluster, t));
    }
    constexpr const char* t = "/api/timeline/{id}";
    if (!get) return WrongMethod(method, t, "GET");
    std::optional<int64_t> user = ParseId(rest);
    if (!user) return BadId("user id", rest, t);
    Route r = MakeRoute(RouteKind::kTimeline, t);
    r.from = *user;
    return Ok(std::move(r));
  }

  if (path.substr(0, kApiPrefix.size()) != kApiPrefix ||
      (path.size() > kApiPrefix.size() && path[kApiPrefix.size()] != '/')) {
    return Fail(404, "no route for " + std::string(path.substr(0, 128)));
  }
  std::vector<std::string_view> p = SplitPath(path.substr(kApiPrefix.size()));
  auto not_found = [&] { return Fail(404, "no route for " + std::string(path.substr(0, 128))); };
  if (p.empty()) return not_found();

  if (p[0] == "entities") {
    if (p.size() == 1) {
      constexpr const char* t = "/api/graph/entities";
      if (!post) return WrongMethod(method, t, "POST");
      return Ok(MakeRoute(RouteKind::kGetEntities, t));
    }
    if (p.size() == 2) {
      constexpr const char* t = "/api/graph/entities/{type}";
      if (!post) return WrongMethod(method, t, "POST");
      if (!IsValidType(p[1])) return BadType(p[1], t);
      return Ok(MakeRoute(RouteKind::kGetAssociations, t, std::string(p[1])));
    }
    if (p.size() == 3 && p[2] == "create") {
      constexpr const char* t = "/api/graph/entities/{type}/create";
      if (!post) return WrongMethod(method, t, "POST");
      if (!IsValidType(p[1])) return BadType(p[1], t);
      return Ok(MakeRoute(RouteKind::kCreateEntity, t, std::string(p[1])));
    }
    return not_found();
  }
  if (p[0] == "query" && p.size() == 1) {
    constexpr const char* t = "/api/graph/query";
    if (!post) return WrongMethod(method, t, "POST");
    return Ok(MakeRoute(RouteKind::kQuery, t));
  }
  if (p[0] == "random" && p.size() == 3) {
    constexpr const char* t = "/api/graph/random/{type}/{count}";
    if (!post) return WrongMethod(method, t, "POST");
    if (!IsValidType(p[1])) return BadType(p[1], t);
    std::optional<int64_t> count = ParseId(p[2]);
    if (!count || *count > kMaxRandomCount) {
      return Fail(400,
                  "invalid count '" + std::string(p[2].substr(0, 32)) + "': expected 1 to " +
                      std::to_string(kMaxRandomCount),
                  t);
    }
    Route r = MakeRoute(RouteKind::kRandom, t, std::string(p[1]));
    r.from = *count;
    return Ok(std::move(r));
  }
  if (p[0] == "associations" && p.size() == 6 && p[2] == "from" && p[4] == "to") {
    constexpr const char* t = "/api/graph/associations/{type}/from/{from}/to/{to}";
    if (!post) return WrongMethod(method, t, "POST");
    if (!IsValidType(p[1])) return BadType(p[1], t);
    std::optional<int64_t> from = ParseId(p[3]);
    if (!from) return BadId("from id", p[3], t);
    std::optional<int64_t> to = ParseId(p[5]);
    if (!to) return BadId("to id", p[5], t);
    Route r = MakeRoute(RouteKind::kCreateAssociation, t, std::string(p[1]));
    r.from = *from;
    r.to = *to;
    return Ok(std::move(r));
  }
  if (p[0] == "unreachable" && p.size() == 1) {
    constexpr const char* t = "/api/graph/unreachable";
    if (!get) return WrongMethod(method, t, "GET");
    return Ok(MakeRoute(RouteKind::kUnreachable, t));
  }
  if (p[0] == "events" && p.size() == 1) {
    constexpr const char* t = "/api/graph/events";
    if (!get) return WrongMethod(method, t, "GET");
    return Ok(MakeRoute(RouteKind::kEvents, t));
  }
  if (p[0] == "unplugged" && p.size() == 1) {
    constexpr const char* t = "/api/graph/unplugged";
    if (get) return Ok(MakeRoute(RouteKind::kGetUnplugged, t));
    if (put) return Ok(MakeRoute(RouteKind::kPutUnplugged, t));
    return WrongMethod(method, t, "GET, PUT");
  }
  return not_found();
}

}  // namespace instaface::graphserver

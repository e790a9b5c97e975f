// Maps an HTTP method and request target of the graphserver to a route and its parameters.
//
// Parsing is strict because the target comes from the network: ids are positive integers that
// fit a signed 64-bit column, entity and association types are 1-10 characters from
// [A-Za-z0-9_-], and anything else is an error value naming the problem. The route's template
// (for example "/api/graph/entities/{type}") is what metrics label by, never the raw path.
//
// Thread safety: pure functions, safe from any thread.
#ifndef INSTAFACE_GRAPHSERVER_ROUTE_H_
#define INSTAFACE_GRAPHSERVER_ROUTE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace instaface::graphserver {

enum class RouteKind {
  kGetEntities,        // POST /api/graph/entities
  kGetAssociations,    // POST /api/graph/entities/{type}
  kQuery,              // POST /api/graph/query
  kRandom,             // POST /api/graph/random/{type}/{count}
  kCreateEntity,       // POST /api/graph/entities/{type}/create
  kCreateAssociation,  // POST /api/graph/associations/{type}/from/{from}/to/{to}
  kUnreachable,        // GET  /api/graph/unreachable
  kGetUnplugged,       // GET  /api/graph/unplugged
  kPutUnplugged,       // PUT  /api/graph/unplugged
  kEvents,             // GET  /api/graph/events (Server-Sent Events; see console_events.h)
  kTimelineCluster,    // GET  /api/timeline/cluster
  kTimeline,           // GET  /api/timeline/{id}
  kConsole,            // GET  / and /console/{file}: the console page's files
  kMetrics,            // GET  /metrics
  kHealth,             // GET  /healthz
  kReady,              // GET  /readyz
};

struct Route {
  RouteKind kind = RouteKind::kHealth;
  const char* path_template = "";  // static string; a metrics label
  std::string type;                // entity or association type, or the console file's name
  int64_t from = 0;  // association source, the count of /random, or the timeline's user
  int64_t to = 0;
  bool is_write() const {
    return kind == RouteKind::kCreateEntity || kind == RouteKind::kCreateAssociation;
  }
};

// Why a target did not map to a route; `status` is the HTTP code to answer with.
struct RouteError {
  int status;           // 400, 404 or 405
  std::string message;  // for the JSON error body
  std::string allow;    // for 405: the methods the path accepts, e.g. "GET, PUT"
  const char* path_template = "unmatched";  // label for metrics
};

// Exactly one of route/error is set.
struct RouteMatch {
  std::optional<Route> route;
  std::optional<RouteError> error;
};

inline constexpr int64_t kMaxRandomCount = 10000;
inline constexpr size_t kMaxTypeLength = 10;
inline constexpr size_t kMaxConsoleFileName = 64;

RouteMatch MatchRoute(std::string_view method, std::string_view target);

// Parses a positive decimal id in [1, INT64_MAX]: no sign, no spaces, no leading zeros beyond
// the number itself. Returns nullopt for anything else.
std::optional<int64_t> ParseId(std::string_view text);

// True for 1-10 characters from [A-Za-z0-9_-].
bool IsValidType(std::string_view type);

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_ROUTE_H_

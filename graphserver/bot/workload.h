// The load bot's workload: the original Instaface's social traffic through the HTTP API. Each
// worker plays one new member after another, the way the original's bot does: it samples some
// existing users, joins as a user {"firstName", "lastName"}, befriends each of them ("friend"
// both ways), samples some statuses, then acts a number of times, each time either liking the
// next sampled status ("liked" user -> status and "likedby" status -> user) or posting a status
// {"text"} ("posted" user -> status and "postedby" status -> user). Between those steps it reads
// with the original's query templates: a user's timeline and what their friends posted. Reads go
// to followers, writes to any node (followers forward them) or only to the leader, as
// configured.
//
// Thread safety: Run() is called once; the report callback is called from Run()'s thread.
#ifndef INSTAFACE_GRAPHSERVER_BOT_WORKLOAD_H_
#define INSTAFACE_GRAPHSERVER_BOT_WORKLOAD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace instaface::bot {

struct Targets {
  std::vector<std::string> all;  // http://host:port of every graphserver
  std::string leader;            // empty when unknown
};

struct WorkloadOptions {
  double rate = 200;  // operations per second across all workers; 0 = as fast as possible
  std::chrono::seconds duration{30};
  int concurrency = 8;
  std::chrono::seconds report_every{5};
  bool writes_to_leader_only = false;
  std::chrono::milliseconds request_timeout{5000};
  uint64_t seed = 1;
  // Re-reads the targets (for example from Redis) every few seconds; may be empty.
  std::function<Targets()> refresh_targets;
};

struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};

// Every request has one outcome: ok, conflict or failed.
struct WorkloadResult {
  double seconds = 0;
  uint64_t ok = 0;         // a 200 whose body is what the route answers
  uint64_t conflicts = 0;  // a 409: the association already existed, so nothing was written
  uint64_t failed = 0;     // anything else
  // Writes sent again under their Idempotency-Key because the outcome of an attempt was
  // unknown (no answer, or a 503 that said so); each write has one outcome above all the same.
  uint64_t write_retries = 0;
  std::map<std::string, uint64_t> ok_by_operation;
  // Every outcome but ok, by kind: the HTTP status ("409", "503", ...), "bad-answer" (a 200
  // whose body is not what the route answers), "timeout", "connect" or "io".
  std::map<std::string, uint64_t> errors_by_kind;
  LatencySummary reads;  // of the ok requests
  LatencySummary writes;
};

WorkloadResult RunWorkload(const Targets& targets, const WorkloadOptions& options,
                           const std::function<void(const std::string& line)>& report);

// Text for people: throughput, conflicts, failures, percentiles, outcomes other than ok by kind.
std::string FormatResult(const WorkloadResult& result);
// One JSON line, for scripts.
std::string ResultJson(const WorkloadResult& result);

}  // namespace instaface::bot

#endif  // INSTAFACE_GRAPHSERVER_BOT_WORKLOAD_H_

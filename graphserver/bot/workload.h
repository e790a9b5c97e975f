// The load bot's workload: the original service's social traffic driven through the HTTP API.
// Workers create users, make friendships (an association each way), post statuses and like
// them; they read with query templates (a user's friends and what those friends posted) and
// random samples. Reads go to followers, writes to any node (followers forward them) or only
// to the leader, as configured.
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

struct WorkloadResult {
  double seconds = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  std::map<std::string, uint64_t> ok_by_operation;
  std::map<std::string, uint64_t> errors_by_kind;  // "503", "409", "timeout", "connect", ...
  LatencySummary reads;
  LatencySummary writes;
};

WorkloadResult RunWorkload(const Targets& targets, const WorkloadOptions& options,
                           const std::function<void(const std::string& line)>& report);

// Text for people: throughput, percentiles, errors by kind.
std::string FormatResult(const WorkloadResult& result);
// One JSON line, for scripts.
std::string ResultJson(const WorkloadResult& result);

}  // namespace instaface::bot

#endif  // INSTAFACE_GRAPHSERVER_BOT_WORKLOAD_H_

// The graphserver's Prometheus metrics: requests by route template and status code, request
// duration, forwarded writes, database errors, cache hits and misses, group-commit batches. Served
// as text at /metrics by the graphserver's own HTTP server (no second listener to configure or
// probe).
//
// Route labels are route templates ("/api/graph/entities/{type}"), never raw paths, so the
// label set stays small whatever clients send.
//
// Thread safety: every method may be called from any thread.
#ifndef INSTAFACE_GRAPHSERVER_GRAPH_METRICS_H_
#define INSTAFACE_GRAPHSERVER_GRAPH_METRICS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace instaface::graphserver {

class GraphMetrics {
 public:
  // Registers the families in `registry`, or in a registry of its own when null.
  explicit GraphMetrics(std::shared_ptr<prometheus::Registry> registry = nullptr);

  void ObserveRequest(const std::string& route_template, int status, double seconds);
  // outcome: "ok" (the leader answered), "error" (no answer), "refused" (the forward was
  // refused, e.g. a second hop).
  void CountForward(const std::string& outcome);
  void CountDatabaseError();
  // Monotonic totals read from the cache at scrape time; the counters advance by the difference.
  void SetCacheTotals(const std::string& cache, uint64_t hits, uint64_t misses);
  // The leader's group commit: batches run and the entity creates they carried (their ratio is
  // the mean batch size).
  void SetBatchTotals(uint64_t batches, uint64_t creates);
  void SetLeader(bool is_leader, uint64_t term);

  // The text exposition format of everything in the registry.
  std::string Serialize() const;
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& forwarded_;
  prometheus::Counter& db_errors_;
  prometheus::Family<prometheus::Counter>& cache_hits_;
  prometheus::Family<prometheus::Counter>& cache_misses_;
  prometheus::Counter& batches_;
  prometheus::Counter& batched_creates_;
  prometheus::Gauge& is_leader_;
  prometheus::Gauge& term_;
  std::mutex totals_mu_;  // serializes the Set*Totals read-modify-writes
};

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_GRAPH_METRICS_H_

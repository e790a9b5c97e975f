#include "instaface/graphserver/graph_metrics.h"

#include <prometheus/text_serializer.h>

namespace instaface::graphserver {

namespace {
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return buckets;
}
// Moves a counter up to a monotonic total read from elsewhere (a counter never goes down).
void AdvanceTo(prometheus::Counter& counter, uint64_t total) {
  const double gap = static_cast<double>(total) - counter.Value();
  if (gap > 0) counter.Increment(gap);
}
std::shared_ptr<prometheus::Registry> OrNew(std::shared_ptr<prometheus::Registry> r) {
  return r ? r : std::make_shared<prometheus::Registry>();
}
}  // namespace

GraphMetrics::GraphMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(OrNew(std::move(registry))),
      requests_(prometheus::BuildCounter()
                    .Name("instaface_graph_requests_total")
                    .Help("HTTP requests answered, by route template and status code")
                    .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("instaface_graph_request_duration_seconds")
                    .Help("Time from a complete request to its answer, by route template")
                    .Register(*registry_)),
      forwarded_(prometheus::BuildCounter()
                     .Name("instaface_graph_writes_forwarded_total")
                     .Help("Writes this follower forwarded to the leader, by outcome")
                     .Register(*registry_)),
      db_errors_(prometheus::BuildCounter()
                     .Name("instaface_graph_database_errors_total")
                     .Help("Requests that failed because of the database")
                     .Register(*registry_)
                     .Add({})),
      cache_hits_(prometheus::BuildCounter()
                      .Name("instaface_graph_cache_hits_total")
                      .Help("Cache lookups answered from memory, by cache")
                      .Register(*registry_)),
      cache_misses_(prometheus::BuildCounter()
                        .Name("instaface_graph_cache_misses_total")
                        .Help("Cache lookups that went to the leader or the database, by cache")
                        .Register(*registry_)),
      batches_(prometheus::BuildCounter()
                   .Name("instaface_graph_write_batches_total")
                   .Help("Group-commit batches of entity creates the leader ran")
                   .Register(*registry_)
                   .Add({})),
      batched_creates_(prometheus::BuildCounter()
                           .Name("instaface_graph_batched_creates_total")
                           .Help("Entity creates carried by the leader's group-commit batches")
                           .Register(*registry_)
                           .Add({})),
      is_leader_(prometheus::BuildGauge()
                     .Name("instaface_graph_is_leader")
                     .Help("1 when this graphserver's node leads and may write")
                     .Register(*registry_)
                     .Add({})),
      term_(prometheus::BuildGauge()
                .Name("instaface_graph_term")
                .Help("The election term this graphserver last saw")
                .Register(*registry_)
                .Add({})) {}

void GraphMetrics::ObserveRequest(const std::string& route_template, int status, double seconds) {
  requests_.Add({{"route", route_template}, {"code", std::to_string(status)}}).Increment();
  duration_.Add({{"route", route_template}}, DurationBuckets()).Observe(seconds);
}

void GraphMetrics::CountForward(const std::string& outcome) {
  forwarded_.Add({{"outcome", outcome}}).Increment();
}

void GraphMetrics::CountDatabaseError() { db_errors_.Increment(); }

void GraphMetrics::SetCacheTotals(const std::string& cache, uint64_t hits, uint64_t misses) {
  std::lock_guard<std::mutex> lock(totals_mu_);
  AdvanceTo(cache_hits_.Add({{"cache", cache}}), hits);
  AdvanceTo(cache_misses_.Add({{"cache", cache}}), misses);
}

void GraphMetrics::SetBatchTotals(uint64_t batches, uint64_t creates) {
  std::lock_guard<std::mutex> lock(totals_mu_);
  AdvanceTo(batches_, batches);
  AdvanceTo(batched_creates_, creates);
}

void GraphMetrics::SetLeader(bool is_leader, uint64_t term) {
  is_leader_.Set(is_leader ? 1 : 0);
  term_.Set(static_cast<double>(term));
}

std::string GraphMetrics::Serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace instaface::graphserver

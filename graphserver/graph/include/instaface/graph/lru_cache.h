// LruCache: a bounded map that forgets the least recently used entry, with hit/miss counters.
// Values are handed out as shared_ptr<const V> so a reader keeps its copy alive after eviction.
// An optional time to live makes entries older than it count as misses.
//
// Thread safety: all methods are safe from any thread (one mutex; the critical sections are a
// hash lookup and a list splice).
#ifndef INSTAFACE_GRAPH_LRU_CACHE_H_
#define INSTAFACE_GRAPH_LRU_CACHE_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace instaface::graph {

template <typename K, typename V, typename Hash = std::hash<K>>
class LruCache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LruCache(size_t capacity, Clock::duration ttl = Clock::duration::zero())
      : capacity_(capacity), ttl_(ttl) {}

  std::shared_ptr<const V> Get(const K& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end() || Expired(it->second->stored)) {
      if (it != index_.end()) EraseLocked(it);
      misses_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    order_.splice(order_.begin(), order_, it->second);
    hits_.fetch_add(1, std::memory_order_relaxed);
    return it->second->value;
  }

  void Put(const K& key, std::shared_ptr<const V> value) {
    if (capacity_ == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) EraseLocked(it);
    order_.push_front(Entry{key, std::move(value), Clock::now()});
    index_.emplace(key, order_.begin());
    while (index_.size() > capacity_) EraseLocked(index_.find(order_.back().key));
  }

  void Erase(const K& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) EraseLocked(it);
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    index_.clear();
    order_.clear();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return index_.size();
  }
  size_t capacity() const { return capacity_; }
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    K key;
    std::shared_ptr<const V> value;
    Clock::time_point stored;
  };
  using Iterator = typename std::list<Entry>::iterator;

  bool Expired(Clock::time_point stored) const {
    return ttl_ != Clock::duration::zero() && Clock::now() - stored > ttl_;
  }
  // Must hold mu_.
  void EraseLocked(typename std::unordered_map<K, Iterator, Hash>::iterator it) {
    order_.erase(it->second);
    index_.erase(it);
  }

  const size_t capacity_;
  const Clock::duration ttl_;
  mutable std::mutex mu_;
  std::list<Entry> order_;                       // guarded by mu_; front = most recent
  std::unordered_map<K, Iterator, Hash> index_;  // guarded by mu_
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_LRU_CACHE_H_

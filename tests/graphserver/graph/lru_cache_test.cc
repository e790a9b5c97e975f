#include "instaface/graph/lru_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace instaface::graph {
namespace {

std::shared_ptr<const std::string> V(const std::string& s) {
  return std::make_shared<const std::string>(s);
}

TEST(LruCacheTest, EvictsTheLeastRecentlyUsed) {
  LruCache<int, std::string> cache(2);
  cache.Put(1, V("one"));
  cache.Put(2, V("two"));
  ASSERT_NE(cache.Get(1), nullptr);  // 1 is now more recent than 2
  cache.Put(3, V("three"));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get(2), nullptr);
  EXPECT_EQ(*cache.Get(1), "one");
  EXPECT_EQ(*cache.Get(3), "three");
}

TEST(LruCacheTest, CountsHitsAndMisses) {
  LruCache<int, std::string> cache(4);
  cache.Put(1, V("one"));
  cache.Get(1);
  cache.Get(1);
  cache.Get(2);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(LruCacheTest, PutReplacesAndEraseForgets) {
  LruCache<int, std::string> cache(4);
  cache.Put(1, V("one"));
  cache.Put(1, V("uno"));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(*cache.Get(1), "uno");
  cache.Erase(1);
  EXPECT_EQ(cache.Get(1), nullptr);
  cache.Put(2, V("two"));
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(LruCacheTest, EntriesOlderThanTheTtlAreMisses) {
  LruCache<int, std::string> cache(4, std::chrono::milliseconds(1));
  cache.Put(1, V("one"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(cache.Get(1), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(LruCacheTest, ZeroCapacityStoresNothing) {
  LruCache<int, std::string> cache(0);
  cache.Put(1, V("one"));
  EXPECT_EQ(cache.Get(1), nullptr);
}

TEST(LruCacheTest, ValueOutlivesEviction) {
  LruCache<int, std::string> cache(1);
  cache.Put(1, V("one"));
  auto held = cache.Get(1);
  cache.Put(2, V("two"));
  EXPECT_EQ(*held, "one");
}

TEST(LruCacheTest, ConcurrentUseKeepsTheBound) {
  LruCache<int, std::string> cache(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int k = 0; k < 5000; ++k) {
        const int key = (k * 7 + t) % 200;
        if (k % 3 == 0) {
          cache.Put(key, V(std::to_string(key)));
        } else if (auto v = cache.Get(key)) {
          ASSERT_EQ(*v, std::to_string(key));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(cache.size(), 64u);
}

}  // namespace
}  // namespace instaface::graph

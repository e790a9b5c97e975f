// A closed-loop HTTP load generator in the manner of wrk: `connections` keep-alive connections
// spread over `threads` event loops (Boost.Beast), each sending its next request as soon as the
// answer to the last one has arrived. A thread per connection would cost more CPU than the
// server it measures on a small machine; this costs about what wrk does.
#ifndef INSTAFACE_BENCH_GRAPHSERVER_HTTP_LOAD_H_
#define INSTAFACE_BENCH_GRAPHSERVER_HTTP_LOAD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace instaface::bench {

struct HttpLoadOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string target;  // every request is a POST of `body(connection, n)` to this path
  std::function<std::string(int connection, uint64_t n)> body;
  int connections = 8;
  int threads = 2;
  std::chrono::milliseconds duration{5000};
  // How long after `duration` an answer may still arrive; a request still waiting then fails.
  std::chrono::milliseconds timeout{10000};
};

struct HttpLoadResult {
  uint64_t ok = 0;      // answered 200
  uint64_t failed = 0;  // any other status, or an I/O error (the connection is then reopened)
  double seconds = 0;   // from the first request to the last answer
};

// Runs the load until `duration` has passed and every request sent has been answered or failed.
HttpLoadResult RunHttpLoad(const HttpLoadOptions& options);

}  // namespace instaface::bench

#endif  // INSTAFACE_BENCH_GRAPHSERVER_HTTP_LOAD_H_

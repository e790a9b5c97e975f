// HttpGet: a minimal blocking HTTP/1.1 GET for tests (scraping /metrics, querying a private
// Prometheus), to 127.0.0.1 only. Not a general client: no TLS, no redirects, no chunked
// request bodies; chunked responses are decoded.
//
// Thread safety: a pure function; call from any thread.
#ifndef INSTAFACE_TESTS_SUPPORT_HTTP_GET_H_
#define INSTAFACE_TESTS_SUPPORT_HTTP_GET_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace instaface::testing {

struct HttpResponse {
  int status = 0;  // 0: no response (connection failed, timeout, garbage)
  std::string body;
  std::string error;  // why status is 0
};

// `target` is the path and query, e.g. "/api/v1/query?query=up" (already URL-encoded).
HttpResponse HttpGet(uint16_t port, const std::string& target,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& value);

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_HTTP_GET_H_

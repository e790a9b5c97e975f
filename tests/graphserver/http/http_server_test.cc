// The HTTP server's own answers, seen from a plain socket: what a client gets when the server
// refuses a request before any handler runs.
#include "instaface/graphserver/http_server.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace instaface::graphserver {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(std::chrono::milliseconds request_timeout = 5s,
                   HttpServer::FastPath fast_path = nullptr, int max_connections = 4096,
                   HttpServer::StreamPath stream_path = nullptr, std::string allow_origin = "",
                   size_t stream_backlog_limit = 1 << 20) {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.worker_threads = 1;
    options.body_limit = 4096;
    options.request_timeout = request_timeout;
    options.max_connections = max_connections;
    options.allow_origin = std::move(allow_origin);
    options.stream_backlog_limit = stream_backlog_limit;
    server_ = std::make_unique<HttpServer>(
        options,
        [this](HttpRequest&& r) {
          ++handled_;
          return JsonResponse(200, "\"" + std::string(r.target()) + "\"", r.version(),
                              r.keep_alive());
        },
        [this](int status) {
          std::lock_guard<std::mutex> lock(mu_);
          rejected_.push_back(status);
        },
        std::move(fast_path), std::move(stream_path));
    const common::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  tcp::socket Connect() {
    tcp::socket socket(io_);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    return socket;
  }

  // Reads one response; an error (such as a reset) fails the test through the returned code.
  boost::system::error_code ReadResponse(tcp::socket& socket, HttpResponse& res) {
    boost::system::error_code ec;
    http::read(socket, buffer_, res, ec);
    return ec;
  }

  asio::io_context io_;
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
  std::vector<int> rejected() {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }

  std::mutex mu_;
  std::vector<int> rejected_;
};

TEST_F(HttpServerTest, AnswersAndKeepsTheConnection) {
  StartServer();
  tcp::socket socket = Connect();
  for (const char* target : {"/one", "/two"}) {
    std::string request = std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    HttpResponse res;
    ASSERT_FALSE(ReadResponse(socket, res));
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), std::string("\"") + target + "\"");
  }
  EXPECT_EQ(handled_, 2);
}

// The client sends its whole oversized body before reading, as most clients do. The server
// must not reset the connection under it: the 413 has to arrive intact.
TEST_F(HttpServerTest, OversizedBodyGets413EvenWhileTheClientIsStillSending) {
  StartServer();
  for (int attempt = 0; attempt < 5; ++attempt) {
    tcp::socket socket = Connect();
    std::string body(4 << 20, 'a');
    std::string head =
        "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n";
    boost::system::error_code ec;
    asio::write(socket, std::vector<asio::const_buffer>{asio::buffer(head), asio::buffer(body)},
                ec);
    ASSERT_FALSE(ec) << "write: " << ec.message();
    HttpResponse res;
    ec = ReadResponse(socket, res);
    ASSERT_FALSE(ec) << "read: " << ec.message();
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_NE(res.body().find("exceeds the limit of 4096 bytes"), std::string::npos) << res.body();
  }
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(rejected(), std::vector<int>(5, 413));
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  StartServer();
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  HttpResponse res;
  ASSERT_FALSE(ReadResponse(socket, res));
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(handled_, 0);
}

// On a timeout the connection is closed without an answer (the stream has closed the socket);
// a half-sent request is still counted as a 408, an idle keep-alive connection is not.
TEST_F(HttpServerTest, TimedOutConnectionsAreClosedAndHalfSentOnesCounted) {
  StartServer(300ms);
  tcp::socket half = Connect();
  asio::write(half, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: x\r\nContent-Le")));
  tcp::socket silent = Connect();
  for (tcp::socket* socket : {&half, &silent}) {
    char byte;
    boost::system::error_code ec;
    size_t n = asio::read(*socket, asio::buffer(&byte, 1), ec);
    EXPECT_EQ(n, 0u);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  }
  EXPECT_EQ(handled_, 0);
  // The stream closes the socket before the server's read handler counts the 408, so the client
  // may see the close first.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (rejected().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(rejected(), std::vector<int>{408});
}

// The fast path takes /fast requests and answers them later from a thread of its own; every
// other request falls through, untouched, to the handler. Answers on one keep-alive connection
// come back in order, with the request's HTTP version.
TEST_F(HttpServerTest, FastPathAnswersFromAnotherThreadAndPassesTheRestOn) {
  std::mutex answer_mu;
  std::vector<std::thread> answerers;
  StartServer(5s, [&](HttpRequest& req, HttpServer::Respond respond) {
    if (req.target() != "/fast") return false;
    std::string body = "\"fast " + req.body() + "\"";
    std::lock_guard<std::mutex> lock(answer_mu);
    answerers.emplace_back([respond = std::move(respond), body]() mutable {
      std::this_thread::sleep_for(20ms);
      respond(JsonResponse(200, body, 11, true));
    });
    return true;
  });
  tcp::socket socket = Connect();
  const std::vector<std::pair<std::string, std::string>> sent = {
      {"/fast", "\"fast 1\""}, {"/slow", "\"/slow\""}, {"/fast", "\"fast 3\""}};
  int n = 0;
  for (const auto& [target, expected] : sent) {
    std::string body = std::to_string(++n);
    std::string request = "POST " + target + " HTTP/1.0\r\nConnection: keep-alive\r\n" +
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(socket, asio::buffer(request));
    HttpResponse res;
    boost::system::error_code ec = ReadResponse(socket, res);
    EXPECT_FALSE(ec) << ec.message();
    if (ec) break;
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.version(), 10u) << "the answer must carry the request's version";
    EXPECT_EQ(res.body(), expected);
  }
  EXPECT_EQ(handled_, 1) << "only the request the fast path declined reaches the handler";
  server_->Stop();
  std::lock_guard<std::mutex> lock(answer_mu);
  for (std::thread& t : answerers) t.join();
}

// Over max_connections a new connection is answered 503 and closed, without its request being
// read; once a connection closes, a new one is served again.
TEST_F(HttpServerTest, ConnectionsOverTheLimitGet503AndCapacityComesBack) {
  StartServer(5s, nullptr, /*max_connections=*/2);
  auto get = [&](tcp::socket& socket, HttpResponse& res) {
    asio::write(socket, asio::buffer(std::string("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")));
    boost::beast::flat_buffer buffer;
    boost::system::error_code ec;
    http::read(socket, buffer, res, ec);
    return ec;
  };
  tcp::socket first = Connect();
  tcp::socket second = Connect();
  HttpResponse res;
  ASSERT_FALSE(get(first, res));
  EXPECT_EQ(res.result_int(), 200);
  res = {};
  ASSERT_FALSE(get(second, res));
  EXPECT_EQ(res.result_int(), 200);

  tcp::socket third = Connect();
  HttpResponse refused;
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  http::read(third, buffer, refused, ec);  // answered without sending anything
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_EQ(refused[http::field::retry_after], "1");
  EXPECT_EQ(rejected(), std::vector<int>{503});
  EXPECT_EQ(handled_, 2);

  // Closing one makes room; the server notices the close on its own time, so poll.
  first.close();
  third.close();
  bool served = false;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    tcp::socket next = Connect();
    HttpResponse r;
    served = !get(next, r) && r.result_int() == 200;
    if (!served) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(served) << "no connection was served after one closed";
}

}  // namespace
}  // namespace instaface::graphserver

namespace instaface::graphserver {
namespace {

// Reads from `socket` until `needle` has arrived (or the peer closes); returns what came.
std::string ReadUntil(tcp::socket& socket, const std::string& needle, std::string seen = "") {
  char chunk[4096];
  while (seen.find(needle) == std::string::npos) {
    boost::system::error_code ec;
    size_t n = socket.read_some(asio::buffer(chunk), ec);
    if (ec) break;
    seen.append(chunk, n);
  }
  return seen;
}

TEST_F(HttpServerTest, CorsHeadersOnEveryAnswerAndPreflightIsAnswered) {
  StartServer(5s, nullptr, 4096, nullptr, "*");
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")));
  HttpResponse res;
  ASSERT_FALSE(ReadResponse(socket, res));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::access_control_allow_origin], "*");

  asio::write(socket, asio::buffer(std::string(
                          "OPTIONS /api/graph/unplugged HTTP/1.1\r\nHost: t\r\nOrigin: "
                          "http://elsewhere\r\nAccess-Control-Request-Method: PUT\r\n\r\n")));
  HttpResponse pre;
  ASSERT_FALSE(ReadResponse(socket, pre));
  EXPECT_EQ(pre.result_int(), 204);
  EXPECT_EQ(pre[http::field::access_control_allow_origin], "*");
  EXPECT_NE(std::string(pre[http::field::access_control_allow_methods]).find("PUT"),
            std::string::npos);
  EXPECT_NE(std::string(pre[http::field::access_control_allow_headers]).find("Content-Type"),
            std::string::npos);
  EXPECT_EQ(handled_, 1) << "the preflight never reaches the handler";
}

TEST_F(HttpServerTest, WithoutAnOriginThereAreNoCorsHeaders) {
  StartServer();
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")));
  HttpResponse res;
  ASSERT_FALSE(ReadResponse(socket, res));
  EXPECT_EQ(res.count(http::field::access_control_allow_origin), 0u);
}

// An event stream: the header goes out at once, then every event in order, as chunks, from a
// thread that is not the server's; when the client hangs up, Send says so.
TEST_F(HttpServerTest, EventStreamCarriesEventsUntilTheClientLeaves) {
  std::mutex mu;
  std::shared_ptr<EventStream> held;
  StartServer(
      200ms, nullptr, 4096,
      [&](const HttpRequest& req, std::shared_ptr<EventStream> stream) {
        if (req.target() != "/events") return false;
        stream->Send("hello", R"({"n":0})");  // before the header: queued, sent after it
        std::lock_guard<std::mutex> lock(mu);
        held = std::move(stream);
        return true;
      },
      "*");
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")));
  std::string got = ReadUntil(socket, "data: {\"n\":0}\n\n");
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  EXPECT_NE(got.find("text/event-stream"), std::string::npos) << got;
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  EXPECT_NE(got.find("Access-Control-Allow-Origin: *"), std::string::npos) << got;
  EXPECT_NE(got.find("event: hello\ndata: {\"n\":0}\n\n"), std::string::npos) << got;

  std::shared_ptr<EventStream> stream;
  {
    std::lock_guard<std::mutex> lock(mu);
    stream = held;
  }
  ASSERT_NE(stream, nullptr);
  // Longer than the request timeout: a stream is not cut by it.
  std::this_thread::sleep_for(400ms);
  std::thread producer([&] {
    for (int i = 1; i <= 50; ++i) EXPECT_TRUE(stream->Send("tick", std::to_string(i)));
  });
  producer.join();
  got = ReadUntil(socket, "data: 50\n\n");
  size_t at = 0;
  for (int i = 1; i <= 50; ++i) {
    const std::string frame = "event: tick\ndata: " + std::to_string(i) + "\n\n";
    const size_t found = got.find(frame, at);
    ASSERT_NE(found, std::string::npos) << "event " << i << " missing or out of order";
    at = found + frame.size();
  }
  EXPECT_EQ(handled_, 0);

  socket.close();
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !stream->Send("tick", "after");
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "the stream still accepts events after the client hung up";
  EXPECT_FALSE(stream->open());
}

// A client that never reads is cut off once its backlog passes the limit, instead of growing
// the server's memory without bound.
TEST_F(HttpServerTest, EventStreamThatFallsTooFarBehindIsClosed) {
  std::shared_ptr<EventStream> held;
  std::mutex mu;
  StartServer(
      5s, nullptr, 4096,
      [&](const HttpRequest&, std::shared_ptr<EventStream> stream) {
        std::lock_guard<std::mutex> lock(mu);
        held = std::move(stream);
        return true;
      },
      "", 64 * 1024);
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")));
  ReadUntil(socket, "\r\n\r\n");
  std::shared_ptr<EventStream> stream;
  for (int i = 0; i < 100 && !stream; ++i) {
    std::this_thread::sleep_for(10ms);
    std::lock_guard<std::mutex> lock(mu);
    stream = held;
  }
  ASSERT_NE(stream, nullptr);
  const std::string big(8 * 1024, 'x');
  bool refused = false;
  // The socket buffers take some megabytes first; then the backlog fills and the stream closes.
  for (int i = 0; i < 100000 && !refused; ++i) refused = !stream->Send("big", big);
  EXPECT_TRUE(refused);
  EXPECT_FALSE(stream->open());
}

}  // namespace
}  // namespace instaface::graphserver

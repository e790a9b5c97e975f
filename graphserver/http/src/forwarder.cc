#include "instaface/graphserver/forwarder.h"

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>

#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/idempotency_key.h"

namespace instaface::graphserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class Forwarder::Impl {
 public:
  class Op;

  Impl(const View& view, ForwarderOptions options)
      : view_(view), options_(std::move(options)), work_(asio::make_work_guard(ioc_)) {}

  void Start() {
    {
      std::lock_guard<std::mutex> lock(accept_mu_);
      accepting_ = true;
    }
    io_thread_ = std::thread([this] { ioc_.run(); });
    watch_thread_ = std::thread([this] { Watch(); });
  }

  void Stop();

  void Forward(HttpRequest request, Done done);

 private:
  friend class Op;

  // Sleeps on the View's change futex; a new leader address is handed to the I/O thread.
  void Watch();

  // The address writes go to now: empty when none is known, when the agent is not alive (its
  // view could be anything), and when it is this node itself.
  std::string LeaderAddress(const Snapshot& s) const {
    if (s.stale || s.leader_app_address == options_.self_app_address) return "";
    return s.leader_app_address;
  }

  std::unique_ptr<beast::tcp_stream> TakeIdle(const std::string& address) {
    auto it = idle_.find(address);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    std::unique_ptr<beast::tcp_stream> stream = std::move(it->second.back());
    it->second.pop_back();
    return stream;
  }

  void ReturnIdle(const std::string& address, std::unique_ptr<beast::tcp_stream> stream) {
    if (stopping_) return;
    auto& list = idle_[address];
    if (list.size() < options_.max_idle_per_address) list.push_back(std::move(stream));
  }

  const View& view_;
  const ForwarderOptions options_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread io_thread_;
  std::thread watch_thread_;
  std::mutex accept_mu_;
  bool accepting_ = false;  // under accept_mu_
  std::atomic<bool> stop_watch_{false};
  // The rest is touched on the I/O thread only.
  bool stopping_ = false;
  std::unordered_set<Op*> ops_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle_;
};

// One forward, across its attempts. Lives in ops_ from its first attempt to Finish.
class Forwarder::Impl::Op : public std::enable_shared_from_this<Op> {
 public:
  Op(Impl& impl, HttpRequest request, Done done)
      : impl_(impl),
        request_(std::move(request)),
        done_(std::move(done)),
        deadline_(Clock::now() + impl.options_.timeout),
        resolver_(impl.ioc_),
        pause_(impl.ioc_) {}

  void Begin() {
    impl_.ops_.insert(this);
    Attempt();
  }

  // The View names `address` now.
  void LeaderChanged(const std::string& address) {
    if (address.empty() || address == address_) return;
    if (stream_ || resolving_) {
      leader_changed_ = true;
      resolver_.cancel();
      if (stream_) stream_->cancel();
    } else {
      pause_.cancel();  // a pause ends early: try the new leader at once
    }
  }

  void Cancel() {
    resolver_.cancel();
    if (stream_) stream_->cancel();
    pause_.cancel();
  }

 private:
  void Attempt() {
    if (impl_.stopping_) return Finish("the graphserver is shutting down");
    if (Clock::now() >= deadline_) return Finish(last_error_);
    const std::string address = impl_.LeaderAddress(impl_.view_.snapshot());
    if (address.empty()) {
      last_error_ = "no other node is known to lead";
      return Pause();
    }
    address_ = address;
    leader_changed_ = false;
    sent_ = false;
    ++attempts_;
    std::optional<HostPort> hp = ParseHttpAddress(address_);
    if (!hp) {
      last_error_ = "the leader's address '" + address_ + "' is not http://host:port";
      return Pause();
    }
    host_ = hp->host + ":" + std::to_string(hp->port);
    stream_ = impl_.TakeIdle(address_);
    reused_ = stream_ != nullptr;
    if (stream_) return Send();
    resolving_ = true;
    resolver_.async_resolve(
        hp->host, std::to_string(hp->port),
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          self->resolving_ = false;
          if (ec) return self->Failed(ec, "resolve");
          self->stream_ = std::make_unique<beast::tcp_stream>(self->impl_.ioc_);
          self->stream_->expires_at(self->deadline_);
          self->stream_->async_connect(
              results, [self](beast::error_code ec2, const tcp::endpoint&) {
                if (ec2) return self->Failed(ec2, "connect to");
                beast::error_code ignored;
                self->stream_->socket().set_option(tcp::no_delay(true), ignored);
                self->Send();
              });
        });
  }

  void Send() {
    request_.set(http::field::host, host_);
    request_.keep_alive(true);
    request_.prepare_payload();
    stream_->expires_at(deadline_);
    http::async_write(*stream_, request_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Failed(ec, "write to");
                        self->sent_ = true;
                        self->parser_.emplace();
                        self->parser_->body_limit(64 << 20);
                        http::async_read(*self->stream_, self->buffer_, *self->parser_,
                                         [self](beast::error_code ec2, size_t) {
                                           if (ec2) return self->Failed(ec2, "read from");
                                           self->Answered();
                                         });
                      });
  }

  void Answered() {
    HttpResponse response = parser_->release();
    parser_.reset();
    if (response.keep_alive()) {
      impl_.ReturnIdle(address_, std::move(stream_));
    }
    stream_.reset();
    buffer_.clear();
    if (response.result_int() != 503) return Finish(std::move(response));
    // The node answered that it cannot write now; a new leader or a moment may change that.
    auto outcome = response.find(kWriteOutcomeHeader);
    if (outcome != response.end() && outcome->value() == "unknown") maybe_applied_ = true;
    last_503_ = std::move(response);
    last_error_.clear();
    Pause();
  }

  void Failed(beast::error_code ec, const char* step) {
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().close(ignored);
      stream_.reset();
    }
    parser_.reset();
    buffer_.clear();
    maybe_applied_ = maybe_applied_ || sent_;
    if (impl_.stopping_) return Finish("the graphserver is shutting down");
    last_503_.reset();
    last_error_ = std::string(step) + " " + address_ + ": " +
                  (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    if (leader_changed_) {
      last_error_ += " (the leader changed)";
      return Attempt();
    }
    // A kept-alive connection the leader had closed while idle: try a fresh one at once.
    if (reused_ && (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                    ec == asio::error::broken_pipe || ec == asio::error::eof)) {
      return Attempt();
    }
    Pause();
  }

  void Pause() {
    if (Clock::now() + impl_.options_.retry_pause >= deadline_) return Finish(last_error_);
    pause_.expires_after(impl_.options_.retry_pause);
    pause_.async_wait([self = shared_from_this()](beast::error_code) { self->Attempt(); });
  }

  void Finish(HttpResponse response) {
    ForwardResult result;
    result.answered = true;
    result.response = std::move(response);
    result.maybe_applied = maybe_applied_;
    result.attempts = attempts_;
    Complete(std::move(result));
  }

  void Finish(const std::string& error) {
    if (last_503_) return Finish(std::move(*last_503_));
    ForwardResult result;
    result.error = error.empty() ? "no answer from the leader in time" : error;
    result.maybe_applied = maybe_applied_;
    result.attempts = attempts_;
    Complete(std::move(result));
  }

  void Complete(ForwardResult result) {
    if (done_ == nullptr) return;
    impl_.ops_.erase(this);
    Done done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  Impl& impl_;
  HttpRequest request_;
  Done done_;
  const Clock::time_point deadline_;
  tcp::resolver resolver_;
  asio::steady_timer pause_;
  std::unique_ptr<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::optional<HttpResponse> last_503_;
  std::string address_;
  std::string host_;
  std::string last_error_;
  bool resolving_ = false;
  bool reused_ = false;
  bool sent_ = false;
  bool leader_changed_ = false;
  bool maybe_applied_ = false;
  int attempts_ = 0;
};

void Forwarder::Impl::Stop() {
  if (!io_thread_.joinable()) return;
  {
    // Every forward posted before this point runs before the stop below, so it is answered.
    std::lock_guard<std::mutex> lock(accept_mu_);
    accepting_ = false;
  }
  stop_watch_ = true;
  watch_thread_.join();
  asio::post(ioc_, [this] {
    stopping_ = true;
    for (Op* op : ops_) op->Cancel();
    idle_.clear();
  });
  work_.reset();
  io_thread_.join();
}

// Sleeps on the View's change futex; a new leader address is handed to the I/O thread.
void Forwarder::Impl::Watch() {
  uint32_t seen = view_.snapshot().change_counter;
  std::string last = LeaderAddress(view_.snapshot());
  while (!stop_watch_) {
    // The timeout bounds how long Stop waits.
    seen = view_.WaitForChange(seen, std::chrono::milliseconds(100));
    std::string now = LeaderAddress(view_.snapshot());
    if (now == last) continue;
    last = now;
    asio::post(ioc_, [this, now] {
      for (Op* op : ops_) op->LeaderChanged(now);
    });
  }
}

void Forwarder::Impl::Forward(HttpRequest request, Done done) {
  std::unique_lock<std::mutex> lock(accept_mu_);
  if (!accepting_) {
    lock.unlock();
    ForwardResult result;
    result.error = "the graphserver is shutting down";
    return done(std::move(result));
  }
  auto op = std::make_shared<Op>(*this, std::move(request), std::move(done));
  asio::post(ioc_, [op] { op->Begin(); });
}

Forwarder::Forwarder(const View& view, ForwarderOptions options)
    : impl_(std::make_shared<Impl>(view, std::move(options))) {}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Start() { impl_->Start(); }

void Forwarder::Stop() { impl_->Stop(); }

void Forwarder::Forward(HttpRequest request, Done done) {
  impl_->Forward(std::move(request), std::move(done));
}

}  // namespace instaface::graphserver

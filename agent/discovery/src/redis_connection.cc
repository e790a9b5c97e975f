#include "instaface/discovery/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <optional>

namespace instaface::discovery {

using common::Status;
using common::StatusOr;

namespace {

timeval ToTimeval(std::chrono::milliseconds d) {
  if (d.count() <= 0) d = std::chrono::milliseconds(1);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

// Copies a hiredis reply into plain values; an error reply becomes a Status instead.
StatusOr<RedisReply> Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_ERROR:
      return Status::Error("Redis error reply: " + std::string(r->str, r->len));
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        auto element = Convert(r->element[i]);
        if (!element.ok()) return element;
        out.elements.push_back(std::move(*element));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

void RedisConnection::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

RedisConnection::RedisConnection(redisContext* c, std::string where)
    : context_(c), where_(std::move(where)) {}
RedisConnection::RedisConnection(RedisConnection&&) noexcept = default;
RedisConnection& RedisConnection::operator=(RedisConnection&&) noexcept = default;
RedisConnection::~RedisConnection() = default;

StatusOr<RedisConnection> RedisConnection::Connect(const RedisUrl& url,
                                                   std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds command_timeout) {
  std::string where = url.Redacted();
  redisContext* raw =
      redisConnectWithTimeout(url.host.c_str(), url.port, ToTimeval(connect_timeout));
  if (raw == nullptr) return Status::Error("Redis " + where + ": out of memory");
  RedisConnection connection(raw, where);
  if (raw->err) {
    return Status::Error("Redis " + where + ": connect: " + raw->errstr);
  }
  if (redisSetTimeout(raw, ToTimeval(command_timeout)) != REDIS_OK) {
    return Status::Error("Redis " + where + ": cannot set timeout");
  }
  if (!url.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!url.username.empty()) auth.push_back(url.username);
    auth.push_back(url.password);
    auto reply = connection.Command(auth);
    if (!reply.ok())
      return Status::Error("Redis " + where + ": AUTH failed: " + reply.status().message());
  }
  if (url.db != 0) {
    auto reply = connection.Command({"SELECT", std::to_string(url.db)});
    if (!reply.ok()) return Status::Error("Redis " + where + ": " + reply.status().message());
  }
  return connection;
}

Status RedisConnection::IoError(const char* what) {
  broken_ = true;
  std::string detail = context_ && context_->err ? context_->errstr : "connection lost";
  return Status::Error("Redis " + where_ + ": " + what + ": " + detail);
}

StatusOr<RedisReply> RedisConnection::Command(const std::vector<std::string>& argv) {
  auto replies = Pipeline({argv});
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (broken_ || !context_) return Status::Error("Redis " + where_ + ": connection is broken");
  redisContext* c = context_.get();
  for (const auto& argv : commands) {
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(args.size()), args.data(), lengths.data()) !=
        REDIS_OK) {
      return IoError("append");
    }
  }
  std::vector<RedisReply> out;
  out.reserve(commands.size());
  std::optional<Status> first_error;
  // Every reply is read even after an error reply, so the stream stays in step.
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) return IoError("read");
    ReplyPtr reply(static_cast<redisReply*>(raw));
    auto converted = Convert(reply.get());
    if (!converted.ok()) {
      if (!first_error) first_error = converted.status();
      continue;
    }
    out.push_back(std::move(*converted));
  }
  if (first_error) return *first_error;
  return out;
}

}  // namespace instaface::discovery

// The C API over View: error codes and fixed-size buffers instead of exceptions and strings.
#include "instaface/instaface.h"

#include <cstring>
#include <new>
#include <optional>
#include <string>

#include "instaface/clock.h"
#include "instaface/shm_layout.h"
#include "instaface/view.h"
#include "record_access.h"
#include "view_access.h"

// The C header repeats what shm_layout.h defines; they must not drift apart.
static_assert(INSTAFACE_ROLE_FOLLOWER == static_cast<int>(instaface::shm::Role::kFollower) &&
                  INSTAFACE_ROLE_CANDIDATE == static_cast<int>(instaface::shm::Role::kCandidate) &&
                  INSTAFACE_ROLE_LEADER == static_cast<int>(instaface::shm::Role::kLeader),
              "enum instaface_role differs from shm::Role");
static_assert(INSTAFACE_ID_BYTES == instaface::shm::kIdBytes, "C and C++ id sizes differ");
static_assert(INSTAFACE_ADDRESS_BYTES == instaface::shm::kAddressBytes,
              "C and C++ address sizes differ");

struct instaface_view {
  instaface::View view;
};

namespace {

thread_local std::string last_error;

int Fail(int code, const std::string& message, char* buffer, size_t size) {
  last_error = message;
  if (buffer != nullptr && size > 0) {
    const size_t n = std::min(size - 1, message.size());
    std::memcpy(buffer, message.data(), n);
    buffer[n] = '\0';
  }
  return code;
}

int CodeFor(instaface::internal::OpenFailure failure) {
  using instaface::internal::OpenFailure;
  switch (failure) {
    case OpenFailure::kInvalidArgument:
      return INSTAFACE_ERR_INVALID_ARGUMENT;
    case OpenFailure::kNotFound:
      return INSTAFACE_ERR_NOT_FOUND;
    case OpenFailure::kIncompatible:
      return INSTAFACE_ERR_INCOMPATIBLE;
    case OpenFailure::kNone:
    case OpenFailure::kSystem:
      break;
  }
  return INSTAFACE_ERR_SYSTEM;
}

// The C fields are exactly as long as the record's, and keep a NUL even where a foreign writer
// filled the field.
template <size_t N>
void Terminate(char (&text)[N]) {
  text[N - 1] = '\0';
}

}  // namespace

extern "C" {

int instaface_open(const char* shm_name, instaface_view** view, char* error_buffer,
                   size_t error_buffer_size) {
  if (view != nullptr) *view = nullptr;
  if (shm_name == nullptr || view == nullptr) {
    return Fail(INSTAFACE_ERR_INVALID_ARGUMENT, "instaface_open: null argument", error_buffer,
                error_buffer_size);
  }
  instaface::internal::OpenFailure failure;
  auto opened = instaface::internal::ViewAccess::Open(shm_name, &failure);
  if (!opened.ok()) {
    return Fail(CodeFor(failure), opened.error(), error_buffer, error_buffer_size);
  }
  auto* handle = new (std::nothrow) instaface_view{std::move(*opened)};
  if (handle == nullptr) {
    return Fail(INSTAFACE_ERR_SYSTEM, "instaface_open: out of memory", error_buffer,
                error_buffer_size);
  }
  *view = handle;
  last_error.clear();
  return INSTAFACE_OK;
}

const char* instaface_last_error(void) { return last_error.c_str(); }

int instaface_leadership(const instaface_view* view, instaface_leadership_t* out) {
  const std::optional<instaface::Leadership> lead =
      view != nullptr ? view->view.leadership() : std::nullopt;
  if (out != nullptr) {
    out->term = lead ? lead->term : 0;
    out->lease_until_ns = lead ? lead->lease_until_ns : 0;
  }
  return lead ? 1 : 0;
}

int instaface_is_leader(const instaface_view* view) {
  return view != nullptr && view->view.is_leader() ? 1 : 0;
}

int64_t instaface_lease_clock_now_ns(void) { return instaface::LeaseClockNowNs(); }

int instaface_snapshot(const instaface_view* view, instaface_snapshot_t* out) {
  if (view == nullptr || out == nullptr) {
    return Fail(INSTAFACE_ERR_INVALID_ARGUMENT, "instaface_snapshot: null argument", nullptr, 0);
  }
  // Straight from the record into the caller's buffers, each text's field whole
  // (record_access.h, LoadWholeText): no Snapshot in between, and no clearing after the texts.
  namespace internal = instaface::internal;
  const instaface::shm::Record& r = *internal::ViewAccess::record(view->view);
  out->change_counter = r.change_counter.load(std::memory_order_acquire);
  const internal::PayloadFacts facts =
      internal::ReadPayload(r, static_cast<uint64_t>(view->view.stale_after().count()), [&] {
        internal::LoadWholeText(r.self_id, out->self_id);
        internal::LoadWholeText(r.leader_id, out->leader_id);
        internal::LoadWholeText(r.leader_peer_address, out->leader_peer_address);
        internal::LoadWholeText(r.leader_app_address, out->leader_app_address);
      });
  if (!facts.stable) {
    std::memset(out->self_id, 0, sizeof out->self_id);
    std::memset(out->leader_id, 0, sizeof out->leader_id);
    std::memset(out->leader_peer_address, 0, sizeof out->leader_peer_address);
    std::memset(out->leader_app_address, 0, sizeof out->leader_app_address);
  }
  Terminate(out->self_id);
  Terminate(out->leader_id);
  Terminate(out->leader_peer_address);
  Terminate(out->leader_app_address);
  out->role = static_cast<int>(facts.role);
  out->term = facts.term;
  out->lease_until_ns = facts.lease_until_ns;
  out->lease_valid = facts.lease_valid ? 1 : 0;
  out->stale = facts.stale ? 1 : 0;
  return INSTAFACE_OK;
}

int instaface_wait_for_change(const instaface_view* view, uint32_t last_seen, uint64_t timeout_ns,
                              uint32_t* current) {
  if (view == nullptr) {
    return Fail(INSTAFACE_ERR_INVALID_ARGUMENT, "instaface_wait_for_change: null view", nullptr, 0);
  }
  const uint64_t capped = std::min<uint64_t>(timeout_ns, INT64_MAX);
  uint32_t now = last_seen;
  const bool news = instaface::internal::ViewAccess::WaitForChangeOrDeath(
      view->view, last_seen, std::chrono::nanoseconds(static_cast<int64_t>(capped)), &now);
  if (current != nullptr) *current = now;
  return news ? INSTAFACE_OK : INSTAFACE_ERR_TIMEOUT;
}

void instaface_close(instaface_view* view) { delete view; }

const char* instaface_role_name(int role) {
  if (role < INSTAFACE_ROLE_FOLLOWER || role > INSTAFACE_ROLE_LEADER) return "unknown";
  return instaface::RoleName(static_cast<instaface::Role>(role));
}

}  // extern "C"

// The C API over View: error codes and fixed-size buffers instead of exceptions and strings.
#include "instaface/instaface.h"

#include <cstring>
#include <new>
#include <optional>
#include <string>

#include "instaface/clock.h"
#include "instaface/shm_layout.h"
#include "instaface/view.h"
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

template <size_t N>
void CopyText(char (&out)[N], const std::string& text) {
  const size_t n = std::min(N - 1, text.size());
  std::memcpy(out, text.data(), n);
  std::memset(out + n, 0, N - n);
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
  try {
    const instaface::Snapshot s = view->view.snapshot();
    out->role = static_cast<int>(s.role);
    out->term = s.term;
    CopyText(out->self_id, s.self_id);
    CopyText(out->leader_id, s.leader_id);
    CopyText(out->leader_peer_address, s.leader_peer_address);
    CopyText(out->leader_app_address, s.leader_app_address);
    out->lease_until_ns = s.lease_until_ns;
    out->lease_valid = s.lease_valid ? 1 : 0;
    out->stale = s.stale ? 1 : 0;
    out->change_counter = s.change_counter;
  } catch (const std::bad_alloc&) {
    return Fail(INSTAFACE_ERR_SYSTEM, "instaface_snapshot: out of memory", nullptr, 0);
  }
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

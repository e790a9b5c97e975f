// The HTTP side of exactly-once creates (graph/entity_writes.h holds the database side).
//
// A client names a create with an `Idempotency-Key` request header (the IETF httpapi draft's
// name): a Structured Field string, `"8e03978e-40d5-43e8-bc93-6894a57f9324"`, or the same text
// bare, as many clients send it. The same key returns the same outcome and creates nothing new,
// through any node, across leaders and restarts; a key reused with another request is 422.
//
// Every write answer carries the key it was written under in `Idempotency-Key`; a create sent
// without one gets a key the server made, so that even such a client can retry an unknown
// outcome safely. Every failed write answer says in `Instaface-Write-Outcome` (and in its body's
// "outcome") whether the write may have been applied:
//   none     it was not, and will not be, applied: a definite refusal (4xx, no leader, fence lost)
//   unknown  it was sent and no answer came back: retry it with the same key to learn the outcome
//
// Thread safety: pure functions, except MakeIdempotencyKey, which is safe from any thread.
#ifndef INSTAFACE_GRAPHSERVER_IDEMPOTENCY_KEY_H_
#define INSTAFACE_GRAPHSERVER_IDEMPOTENCY_KEY_H_

#include <string>
#include <string_view>

#include "instaface/common/status.h"

namespace instaface::graphserver {

inline constexpr const char kIdempotencyKeyHeader[] = "Idempotency-Key";
inline constexpr const char kWriteOutcomeHeader[] = "Instaface-Write-Outcome";

// The key in a header value: a Structured Field string ("..." with \" and \\ escapes) or bare
// text, 1..128 printable ASCII characters once unquoted. InvalidArgument says what is wrong.
common::StatusOr<std::string> ParseIdempotencyKey(std::string_view header_value);

// The key as a Structured Field string, for the answer's header.
std::string FormatIdempotencyKey(std::string_view key);

// A fresh key of 128 random bits, for a create that came without one.
std::string MakeIdempotencyKey();

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_IDEMPOTENCY_KEY_H_

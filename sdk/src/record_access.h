// How libinstaface reads and writes the fields of shm::Record: the seqlock protocol and the
// word-wise text fields. Shared by View (reader) and shm::Writer so that both sides of the
// protocol live next to each other.
//
// Memory order (C++ model, so TSan agrees): the writer stores seq odd (relaxed), then every
// payload word with release, then seq even with release. A reader loads seq with acquire,
// copies the payload with acquire loads, then loads seq again (relaxed; the acquire loads
// before it keep it from moving up). If a copied word came from a write that started after
// the first seq load, that word's release makes the odd seq visible to the second load, so the
// two differ and the reader retries.
#ifndef INSTAFACE_SDK_SRC_RECORD_ACCESS_H_
#define INSTAFACE_SDK_SRC_RECORD_ACCESS_H_

#include <linux/futex.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "clocks.h"
#include "instaface/shm_layout.h"
#include "life_lock.h"

namespace instaface::internal {

// True once the agent that holds the record's life lock (shm_layout.h, "Life") has died or let
// it go: its futex word has FUTEX_OWNER_DIED, or no owner. A plain load, no system call. An
// in-process record has no lock, and its agent is never gone while its app runs.
inline bool AgentGone(const shm::Record& record) {
  if (record.agent_lock_kind != shm::kAgentLockRobustMutex) return false;
  return OwnerGone(record.agent_lock);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Runs `copy` (acquire loads of the payload) until it saw one stable version, whose seq it
// leaves in `*version`. Returns false, without a copy, if the writer stays mid-update while the
// record is stale: an agent killed or stopped between its two seq stores must not hang its
// readers.
template <typename CopyFn>
inline bool SeqlockRead(const shm::Record& record, uint64_t stale_after_ns, CopyFn&& copy,
                        uint32_t* version) {
  for (uint32_t spins = 0;; ++spins) {
    const uint32_t s1 = record.seq.load(std::memory_order_acquire);
    if ((s1 & 1) == 0) {
      copy();
      const uint32_t s2 = record.seq.load(std::memory_order_relaxed);
      if (s1 == s2) {
        *version = s1;
        return true;
      }
    }
    if (spins < 64) {
      CpuRelax();
      continue;
    }
    // The writer is slow to finish: it may be descheduled (give it the CPU) or gone.
    sched_yield();
    if (spins % 64 == 0 &&
        IsStale(LeaseNowNs(), record.liveness_ns.load(std::memory_order_acquire), stale_after_ns)) {
      return false;
    }
  }
}

// Whether the record still holds the payload version `version` after every load before this
// call, the life lock's word above all. A reader that judges a payload by the liveness stamp
// and the life lock read after it must ask: an agent that takes over a dead one's record
// withdraws the dead one's claim (a publish) before it takes the life lock (shm_writer.cc), so
// a reader whose lock load saw the new holder sees the new version here and reads again,
// rather than pairing the dead agent's lease with the new agent's life.
//
// Every load a reader makes before this one is an acquire (the life lock's word last), and no
// later load moves up past an acquire: a relaxed load is enough, as for the seqlock's second.
inline bool SeqStill(const shm::Record& record, uint32_t version) {
  return record.seq.load(std::memory_order_relaxed) == version;
}

// The high bit of each byte of `word` that is zero, and no other bit (exact: no borrow runs
// from one byte into the next).
inline uint64_t ZeroBytes(uint64_t word) {
  constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;
  return ~(((word & kLow7) + kLow7) | word | kLow7);
}

// The index, in memory order, of the first zero byte of a word whose ZeroBytes is `zeros` != 0.
inline size_t FirstZeroByte(uint64_t zeros) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return static_cast<size_t>(__builtin_ctzll(zeros)) / 8;
#else
  return static_cast<size_t>(__builtin_clzll(zeros)) / 8;
#endif
}

// Copies `text` into `out` (Bytes of room, 8-byte aligned) up to and including the first word
// that holds a NUL (all of it if the writer left none, as a foreign writer might): the bytes a
// reader uses, so that an id such as "node-a" costs one load rather than eight, and a 21-byte
// URL three rather than 24. Returns the text's length: up to its NUL, which can only be in the
// last word copied. Bytes of `out` past the words copied are left alone.
//
// Under the seqlock the words read, and so the length, may come from a write in progress; the
// reader's second load of seq discards such a copy as it does a full one: the argument above
// holds for any words that were read, whichever they were, since each load is an acquire.
template <size_t Bytes>
inline size_t LoadUsedText(const shm::AtomicText<Bytes>& text, char* out) {
  for (size_t i = 0; i < Bytes / 8; ++i) {
    const uint64_t word = text.words[i].load(std::memory_order_acquire);
    std::memcpy(out + i * 8, &word, 8);
    const uint64_t zeros = ZeroBytes(word);
    if (zeros != 0) return i * 8 + FirstZeroByte(zeros);
  }
  return Bytes;
}

// Copies the whole of `text` into a buffer as long as the field (the C API's): the writer pads
// with NULs, so the buffer needs no zeroing after the text, and a fixed-size copy costs less
// than the sized copy and clearing of the rest (a `rep` string instruction each, here).
template <size_t Bytes>
inline void LoadWholeText(const shm::AtomicText<Bytes>& text, char (&out)[Bytes]) {
  for (size_t i = 0; i < Bytes / 8; ++i) {
    const uint64_t word = text.words[i].load(std::memory_order_acquire);
    std::memcpy(out + i * 8, &word, 8);
  }
}

// What a snapshot reports besides the texts: one stable read of the payload, then the lease
// clock, the stamp and the life lock.
struct PayloadFacts {
  bool stable;  // false: a writer died mid-update, and the texts copied are not to be trusted
  bool stale;
  bool lease_valid;
  shm::Role role;
  uint64_t term;
  uint64_t lease_until_ns;
};

// View::snapshot and instaface_snapshot: `copy_texts` loads the texts (acquire loads, into the
// caller's buffers) in the same seqlock pass as role, term and lease end. The clock is read
// after the payload, so a read that waited for the writer is judged at the time it finished.
// When the read is not stable the facts are those of a fresh Snapshot, and stale.
template <typename CopyTexts>
inline PayloadFacts ReadPayload(const shm::Record& r, uint64_t stale_after_ns,
                                CopyTexts&& copy_texts) {
  uint32_t role = 0;
  uint64_t term = 0;
  uint64_t lease_until = 0;
  uint64_t now = 0;
  bool stale = true;
  for (;;) {
    uint32_t version = 0;
    const bool stable = SeqlockRead(
        r, stale_after_ns,
        [&] {
          role = r.role.load(std::memory_order_acquire);
          term = r.term.load(std::memory_order_acquire);
          lease_until = r.lease_until_ns.load(std::memory_order_acquire);
          copy_texts();
        },
        &version);
    if (!stable) return PayloadFacts{false, true, false, shm::Role::kFollower, 0, 0};
    now = LeaseNowNs();
    stale =
        IsStale(now, r.liveness_ns.load(std::memory_order_acquire), stale_after_ns) || AgentGone(r);
    if (SeqStill(r, version)) break;
  }
  const shm::Role known = role <= static_cast<uint32_t>(shm::Role::kLeader)
                              ? static_cast<shm::Role>(role)
                              : shm::Role::kFollower;
  return PayloadFacts{true,  stale, known == shm::Role::kLeader && now < lease_until,
                      known, term,  lease_until};
}

// Cuts `text` to at most max_bytes without splitting a UTF-8 sequence.
inline std::string_view TruncateUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// Stores `text` NUL-padded, keeping one NUL at the end at least.
template <size_t Bytes>
inline void StoreText(shm::AtomicText<Bytes>& field, std::string_view text) {
  const std::string_view cut = TruncateUtf8(text, Bytes - 1);
  uint64_t words[Bytes / 8] = {};
  std::memcpy(words, cut.data(), cut.size());
  for (size_t i = 0; i < Bytes / 8; ++i) field.words[i].store(words[i], std::memory_order_release);
}

// Turns a name as the user wrote it into the POSIX form "/name"; empty if it is not valid.
inline std::string PosixShmName(const std::string& name) {
  std::string posix = (!name.empty() && name[0] == '/') ? name : "/" + name;
  if (posix.size() < 2 || posix.size() > 255 || posix.find('/', 1) != std::string::npos ||
      posix == "/." || posix == "/..") {
    return std::string();
  }
  return posix;
}

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_RECORD_ACCESS_H_

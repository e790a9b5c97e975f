/* libinstaface's C API: read the leader that the local instaface-agent publishes in shared
 * memory, in nanoseconds and without a system call, or sleep until it changes.
 *
 *   instaface_view* view;
 *   char err[256];
 *   if (instaface_open("instaface-graph-0", &view, err, sizeof err) != INSTAFACE_OK) { ... }
 *   instaface_leadership_t lead;
 *   if (instaface_leadership(view, &lead)) { ... act, fenced by lead.term ... }
 *   instaface_close(view);
 *
 * Fence with the term that instaface_leadership returns, never with one from a separate
 * instaface_snapshot: between two reads this node can lose its lease and the next term can
 * begin, a term in which it does not lead.
 *
 * Times (lease_until_ns) are nanoseconds of the lease clock, CLOCK_BOOTTIME, which counts
 * through suspends (instaface/clock.h says why); instaface_lease_clock_now_ns reads it.
 *
 * Thread safety: a view may be used by any number of threads at once; instaface_close must
 * come after every other use. instaface_last_error is per thread.
 */
#ifndef INSTAFACE_INSTAFACE_H_
#define INSTAFACE_INSTAFACE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct instaface_view instaface_view; /* opaque */

enum instaface_error {
  INSTAFACE_OK = 0,
  INSTAFACE_ERR_INVALID_ARGUMENT = 1, /* null pointer, malformed segment name */
  INSTAFACE_ERR_NOT_FOUND = 2,        /* no segment by that name: is the agent running? */
  INSTAFACE_ERR_INCOMPATIBLE = 3,     /* truncated, foreign or other layout version */
  INSTAFACE_ERR_SYSTEM = 4,           /* permission denied, out of memory, ... */
  INSTAFACE_ERR_TIMEOUT = 5           /* instaface_wait_for_change: nothing changed */
};

enum instaface_role {
  INSTAFACE_ROLE_FOLLOWER = 0,
  INSTAFACE_ROLE_CANDIDATE = 1,
  INSTAFACE_ROLE_LEADER = 2
};

#define INSTAFACE_ID_BYTES 64       /* with the terminating NUL */
#define INSTAFACE_ADDRESS_BYTES 192 /* with the terminating NUL */

typedef struct instaface_snapshot {
  int role; /* enum instaface_role */
  uint64_t term;
  char self_id[INSTAFACE_ID_BYTES];
  char leader_id[INSTAFACE_ID_BYTES]; /* "" when no leader is known */
  char leader_peer_address[INSTAFACE_ADDRESS_BYTES];
  char leader_app_address[INSTAFACE_ADDRESS_BYTES];
  uint64_t lease_until_ns; /* lease clock ns, 0 when no lease is held */
  int lease_valid;         /* this node leads and its lease has not expired */
  int stale;               /* the agent is dead or hung: trust nothing above */
  uint32_t change_counter; /* pass to instaface_wait_for_change */
} instaface_snapshot_t;

/* Opens the named segment. On failure returns an error code, sets *view to NULL, and writes a
 * message naming the segment into error_buffer (if not NULL) and instaface_last_error(). */
int instaface_open(const char* shm_name, instaface_view** view, char* error_buffer,
                   size_t error_buffer_size);

/* The message of this thread's last failed call, or "". Valid until its next call. */
const char* instaface_last_error(void);

/* This node's leadership, from one read of the record. */
typedef struct instaface_leadership {
  uint64_t term;           /* the fence token: the term of this leadership */
  uint64_t lease_until_ns; /* lease clock ns; leadership ends then unless renewed */
} instaface_leadership_t;

/* 1 when this node leads, its lease holds and the agent is alive, with *out (if not NULL) taken
 * from the same read as that answer, so out->term is a term in which this node led; 0
 * otherwise (also for a NULL view), with *out zeroed. As cheap as instaface_is_leader. */
int instaface_leadership(const instaface_view* view, instaface_leadership_t* out);

/* 1 only when this node leads, its lease holds and the agent is alive; 0 otherwise. */
int instaface_is_leader(const instaface_view* view);

/* The lease clock (CLOCK_BOOTTIME) in nanoseconds, to compare with lease_until_ns. */
int64_t instaface_lease_clock_now_ns(void);

/* Copies a consistent snapshot; the strings are NUL-terminated. */
int instaface_snapshot(const instaface_view* view, instaface_snapshot_t* out);

/* Sleeps until the change counter differs from last_seen, the agent dies, or timeout_ns passes.
 * Stores the current counter in *current (if not NULL). Returns INSTAFACE_OK when there is
 * something new to read: a new counter, or the agent's death, with *current == last_seen (a dead
 * agent publishes nothing; instaface_snapshot then reads stale); INSTAFACE_ERR_TIMEOUT after
 * timeout_ns with nothing new. A death is reported as View::WaitForChange does (view.h): to
 * every call asleep then, at once, and to the first call on each thread after it; later calls
 * sleep until a restarted agent publishes or the timeout, so a loop does not spin. A zero
 * timeout only reads the counter. */
int instaface_wait_for_change(const instaface_view* view, uint32_t last_seen, uint64_t timeout_ns,
                              uint32_t* current);

void instaface_close(instaface_view* view);

const char* instaface_role_name(int role);

#ifdef __cplusplus
}
#endif

#endif /* INSTAFACE_INSTAFACE_H_ */

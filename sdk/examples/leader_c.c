/* Prints the state the local instaface-agent publishes, then every change, using the C API.
 *
 *   instaface_leader_c SEGMENT [CHANGES]   (stops after CHANGES changes; 0 = forever)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "instaface/instaface.h"

static void print_state(const instaface_view* view) {
  instaface_snapshot_t s;
  if (instaface_snapshot(view, &s) != INSTAFACE_OK) {
    fprintf(stderr, "snapshot: %s\n", instaface_last_error());
    return;
  }
  printf("term=%" PRIu64 " role=%s leader=%s app=%s lease_valid=%d stale=%d", s.term,
         instaface_role_name(s.role), s.leader_id[0] ? s.leader_id : "-",
         s.leader_app_address[0] ? s.leader_app_address : "-", s.lease_valid, s.stale);
  /* What an app acts on: whether it leads, and the term to fence its writes with, from one read
   * (the snapshot above may already be older than this). */
  instaface_leadership_t lead;
  if (instaface_leadership(view, &lead)) {
    const int64_t left_ns = (int64_t)lead.lease_until_ns - instaface_lease_clock_now_ns();
    printf(" leading in term %" PRIu64 " for %" PRId64 " ms\n", lead.term, left_ns / 1000000);
  } else {
    printf(" not leading\n");
  }
  fflush(stdout);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s SEGMENT [CHANGES]\n", argv[0]);
    return 2;
  }
  const long changes = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  instaface_view* view = NULL;
  char error[256];
  if (instaface_open(argv[1], &view, error, sizeof error) != INSTAFACE_OK) {
    fprintf(stderr, "%s\n", error);
    return 1;
  }
  instaface_snapshot_t s;
  instaface_snapshot(view, &s);
  uint32_t seen = s.change_counter;
  print_state(view);
  for (long n = 0; changes == 0 || n < changes;) {
    /* Wake at least every second so a dead agent shows as stale in the output. */
    int rc = instaface_wait_for_change(view, seen, 1000000000ull, &seen);
    if (rc == INSTAFACE_OK) ++n;
    print_state(view);
  }
  instaface_close(view);
  return 0;
}

/* Built with `cc ... $(pkg-config --cflags --libs instaface)`: the C API from the installed
 * package. A segment that does not exist must give INSTAFACE_ERR_NOT_FOUND and a message. */
#include <stdio.h>
#include <string.h>

#include <instaface/instaface.h>

int main(void) {
  instaface_view* view = NULL;
  char error[256];
  int rc = instaface_open("instaface-consumer-absent", &view, error, sizeof error);
  if (rc != INSTAFACE_ERR_NOT_FOUND || view != NULL || strstr(error, "absent") == NULL) {
    fprintf(stderr, "unexpected: rc=%d error=%s\n", rc, error);
    return 1;
  }
  if (instaface_leadership(NULL, NULL) != 0 || instaface_lease_clock_now_ns() <= 0) {
    fprintf(stderr, "unexpected: leadership without a view, or no lease clock\n");
    return 1;
  }
  printf("pkg-config consumer: %s\n", error);
  return 0;
}

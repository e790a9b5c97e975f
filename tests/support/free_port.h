// FreePort: a TCP port on 127.0.0.1 that nothing listens on right now, found by binding port 0
// and closing. Another process may take it before the caller binds it; tests that must be sure
// retry with a new port.
//
// Thread safety: safe to call from any thread.
#ifndef INSTAFACE_TESTS_SUPPORT_FREE_PORT_H_
#define INSTAFACE_TESTS_SUPPORT_FREE_PORT_H_

#include <cstdint>

namespace instaface::testing {

// 0 if no port could be found (the socket calls failed).
uint16_t FreePort();

// True if something accepts TCP connections on 127.0.0.1:port.
bool PortAcceptsConnections(uint16_t port);

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_SUPPORT_FREE_PORT_H_

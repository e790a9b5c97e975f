// Where an instaface-agent publishes when not told otherwise, shared by the agent and
// instafacectl so that both agree without flags. INSTAFACE_SHM and INSTAFACE_SOCKET override.
#ifndef INSTAFACE_CONTROL_DEFAULTS_H_
#define INSTAFACE_CONTROL_DEFAULTS_H_

namespace instaface::control {

inline constexpr const char kDefaultShmName[] = "instaface";
inline constexpr const char kDefaultSocketPath[] = "/tmp/instaface.sock";

}  // namespace instaface::control

#endif  // INSTAFACE_CONTROL_DEFAULTS_H_

// Status and Result for the discovery library: the shared error values of
// instaface/common/status.h.
#ifndef INSTAFACE_DISCOVERY_STATUS_H_
#define INSTAFACE_DISCOVERY_STATUS_H_

#include "instaface/common/status.h"

namespace instaface::discovery {

using common::Result;
using common::Status;

}  // namespace instaface::discovery

#endif  // INSTAFACE_DISCOVERY_STATUS_H_

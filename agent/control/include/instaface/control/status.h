// Status and Result for the control library: the shared error values of instaface/common/status.h.
#ifndef INSTAFACE_CONTROL_STATUS_H_
#define INSTAFACE_CONTROL_STATUS_H_

#include "instaface/common/status.h"

namespace instaface::control {

using common::Result;
using common::Status;

}  // namespace instaface::control

#endif  // INSTAFACE_CONTROL_STATUS_H_

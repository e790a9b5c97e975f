// Status and Result for the metrics library: the shared error values of instaface/common/status.h.
#ifndef INSTAFACE_METRICS_STATUS_H_
#define INSTAFACE_METRICS_STATUS_H_

#include "instaface/common/status.h"

namespace instaface::metrics {

using common::Result;
using common::Status;

}  // namespace instaface::metrics

#endif  // INSTAFACE_METRICS_STATUS_H_

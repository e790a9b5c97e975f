// Turns a simulation summary into the report instaface-sim prints: readable text, or one JSON
// object for scripts. Pure functions of their arguments.
#ifndef INSTAFACE_SIM_REPORT_H_
#define INSTAFACE_SIM_REPORT_H_

#include <string>

#include <nlohmann/json.hpp>

#include "instaface/sim/simulator.h"

namespace instaface::sim {

// {"violations": count, "violation_list": [{seed, time_ms, check, description, replay}],
//  "elections", "elections_started", "leader_crashes", "failovers",
//  "failover_ms": {"median", "p99", "max"}, "liveness": {...}, "options": {...}, ...}
nlohmann::json SummaryToJson(const Summary& summary, const SimOptions& options);
std::string SummaryToText(const Summary& summary, const SimOptions& options);

}  // namespace instaface::sim

#endif  // INSTAFACE_SIM_REPORT_H_

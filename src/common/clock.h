// Monotonic time helpers shared by every stage that stamps timings into telemetry.
// Thread-safe: free functions over std::chrono::steady_clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace brainstem {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

inline int64_t NanosBetween(TimePoint start, TimePoint end) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
}

inline double MicrosBetween(TimePoint start, TimePoint end) {
  return static_cast<double>(NanosBetween(start, end)) / 1e3;
}

// Wall-clock seconds since the Unix epoch, for timestamps shown to people.
double UnixSeconds();

// ISO-8601 UTC timestamp with microseconds, e.g. "2026-11-22T00:41:58.123456Z".
std::string Iso8601Now();

}  // namespace brainstem

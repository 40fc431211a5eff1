// ProcessStats: resident memory and CPU time of this process, read from /proc/self.
// Thread-safe: each call reads /proc afresh.
#pragma once

#include <cstdint>

namespace brainstem {

struct ProcessStats {
  int64_t rss_bytes = 0;
  double cpu_user_seconds = 0;
  double cpu_system_seconds = 0;
  int64_t threads = 0;
  // Seconds since the process was started by the kernel (not since main()).
  double uptime_seconds = 0;
};

ProcessStats ReadProcessStats();

// Seconds between the kernel starting this process and now: the honest "startup" clock,
// which includes dynamic loading before main().
double SecondsSinceProcessStart();

}  // namespace brainstem

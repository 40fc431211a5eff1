#include "telemetry/process_stats.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace brainstem {
namespace {

double BootTimeNowSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct StatFields {
  double utime = 0, stime = 0, start = 0;
  int64_t threads = 0;
};

StatFields ReadStat() {
  StatFields f;
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  // The command name may hold spaces; fields after the closing ')' are fixed.
  auto close = line.rfind(')');
  if (close == std::string::npos) return f;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  // Field 3 (state) is the first after ')'; utime=14, stime=15, num_threads=20, starttime=22.
  for (int index = 3; rest >> field; ++index) {
    if (index == 14) f.utime = std::stod(field) / ticks;
    if (index == 15) f.stime = std::stod(field) / ticks;
    if (index == 20) f.threads = std::stoll(field);
    if (index == 22) {
      f.start = std::stod(field) / ticks;
      break;
    }
  }
  return f;
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats s;
  StatFields f = ReadStat();
  s.cpu_user_seconds = f.utime;
  s.cpu_system_seconds = f.stime;
  s.threads = f.threads;
  s.uptime_seconds = BootTimeNowSeconds() - f.start;
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  s.rss_bytes = resident_pages * sysconf(_SC_PAGESIZE);
  return s;
}

double SecondsSinceProcessStart() { return BootTimeNowSeconds() - ReadStat().start; }

}  // namespace brainstem

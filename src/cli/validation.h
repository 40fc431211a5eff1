// Validation: the pieces of `brainstem validate` and of `brainstem monitor`'s final report that
// are not I/O: a Check (name, measured value, target, verdict), the report as a text table or
// JSON, and the placement comparison (planned CPUs per thread vs what /proc says each thread
// may run on).
// Thread-compatible: plain values and free functions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/status_client.h"
#include "common/result.h"

namespace brainstem {

enum class Verdict { kPass, kFail, kNotApplicable };

struct Check {
  std::string name;      // "http_p50", "placement", ...
  std::string measured;  // for people: "143.2 us"
  std::string target;    // for people: "<= 200 us"
  Verdict verdict = Verdict::kFail;
  std::string detail;                  // why it failed, or what was measured how
  std::optional<double> value;         // for JSON
  std::optional<double> target_value;  // for JSON
  std::string unit;
};

// value <= limit (or >= for AtLeast) passes; the strings are filled in with `digits` decimals.
Check CheckAtMost(std::string name, double value, double limit, std::string unit, int digits = 1);
Check CheckAtLeast(std::string name, double value, double limit, std::string unit, int digits = 0);
// A check that could not be measured: failed, with the reason in `detail`.
Check CheckFailed(std::string name, std::string target, std::string reason);

struct ReportSummary {
  int total = 0;  // checks with a verdict (n/a excluded)
  int passed = 0;
  double success_rate = 0;  // percent
  bool ok = false;          // every counted check passed and at least one was counted
};
ReportSummary Summarize(const std::vector<Check>& checks);

// A text table: check, measured, target, result, detail; then total, passed, success rate and
// "status: PASSED" / "status: FAILED".
std::string FormatReport(const std::vector<Check>& checks, const std::string& title);
// {"checks":[{"name","measured","target","unit","value","target_value","passed","result",
// "detail"}],"total","passed","success_rate","status"} plus `extra` members (already JSON
// "key":value pairs, comma-separated; may be empty).
std::string FormatReportJson(const std::vector<Check>& checks, const std::string& extra);

// name -> CPUs allowed, for every thread of `pid`, from <proc_root>/<pid>/task/*/comm and
// status (Cpus_allowed_list). Errors: kNotFound when the process is not visible (another host
// or PID namespace), naming the path.
Result<std::map<std::string, std::vector<int>>> ReadThreadAffinities(
    int64_t pid, const std::filesystem::path& proc_root = "/proc");

// Compares the plan with the threads found. With pinning on, every planned thread that exists
// must have exactly its planned CPUs; with pinning off there is nothing to compare and only
// naming is checked. Planned threads that do not exist (an shm poller when shm is off, the
// sampler when disabled) are listed in the detail, not failed; a plan none of whose threads
// exists fails.
Check ComparePlacement(const std::vector<ServerStatus::PlannedThread>& plan, bool pinning,
                       const std::map<std::string, std::vector<int>>& actual);

// "0-3,8" for {0,1,2,3,8}.
std::string CpuListText(const std::vector<int>& cpus);

}  // namespace brainstem

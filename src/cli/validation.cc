#include "cli/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "topology/topology.h"
#include "common/json_writer.h"

namespace brainstem {
namespace {

std::string Fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, value);
  return buf;
}

std::string WithUnit(const std::string& number, const std::string& unit) {
  if (unit.empty()) return number;
  if (unit == "%") return number + "%";
  return number + " " + unit;
}

std::string ResultWord(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "PASS";
    case Verdict::kFail:
      return "FAIL";
    case Verdict::kNotApplicable:
      return "n/a";
  }
  return "?";
}

std::string ReadFirstLine(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

Check CheckAtMost(std::string name, double value, double limit, std::string unit, int digits) {
  Check c;
  c.name = std::move(name);
  c.value = value;
  c.target_value = limit;
  c.measured = WithUnit(Fixed(value, digits), unit);
  c.target = "<= " + WithUnit(Fixed(limit, digits), unit);
  c.verdict = value <= limit ? Verdict::kPass : Verdict::kFail;
  c.unit = std::move(unit);
  return c;
}

Check CheckAtLeast(std::string name, double value, double limit, std::string unit, int digits) {
  Check c;
  c.name = std::move(name);
  c.value = value;
  c.target_value = limit;
  c.measured = WithUnit(Fixed(value, digits), unit);
  c.target = ">= " + WithUnit(Fixed(limit, digits), unit);
  c.verdict = value >= limit ? Verdict::kPass : Verdict::kFail;
  c.unit = std::move(unit);
  return c;
}

Check CheckFailed(std::string name, std::string target, std::string reason) {
  Check c;
  c.name = std::move(name);
  c.measured = "not measured";
  c.target = std::move(target);
  c.verdict = Verdict::kFail;
  c.detail = std::move(reason);
  return c;
}

ReportSummary Summarize(const std::vector<Check>& checks) {
  ReportSummary s;
  for (const Check& c : checks) {
    if (c.verdict == Verdict::kNotApplicable) continue;
    ++s.total;
    if (c.verdict == Verdict::kPass) ++s.passed;
  }
  s.success_rate = s.total > 0 ? 100.0 * s.passed / s.total : 0;
  s.ok = s.total > 0 && s.passed == s.total;
  return s;
}

std::string FormatReport(const std::vector<Check>& checks, const std::string& title) {
  size_t w_name = 5, w_measured = 8, w_target = 6;
  for (const Check& c : checks) {
    w_name = std::max(w_name, c.name.size());
    w_measured = std::max(w_measured, c.measured.size());
    w_target = std::max(w_target, c.target.size());
  }
  auto pad = [](const std::string& s, size_t w) {
    std::string out = s;
    out.resize(std::max(w, s.size()), ' ');
    return out;
  };
  std::ostringstream out;
  out << title << "\n";
  out << "  " << pad("check", w_name) << "  " << pad("measured", w_measured) << "  "
      << pad("target", w_target) << "  result  detail\n";
  for (const Check& c : checks) {
    out << "  " << pad(c.name, w_name) << "  " << pad(c.measured, w_measured) << "  "
        << pad(c.target, w_target) << "  " << pad(ResultWord(c.verdict), 6) << "  " << c.detail
        << "\n";
  }
  const ReportSummary s = Summarize(checks);
  out << "total: " << s.total << ", passed: " << s.passed << ", failed: " << s.total - s.passed
      << ", success rate: " << Fixed(s.success_rate, 1) << "%\n";
  out << "status: " << (s.ok ? "PASSED" : "FAILED") << "\n";
  return out.str();
}

std::string FormatReportJson(const std::vector<Check>& checks, const std::string& extra) {
  std::string o = "{\"checks\":[";
  for (size_t i = 0; i < checks.size(); ++i) {
    const Check& c = checks[i];
    if (i) o.push_back(',');
    o.append("{\"name\":");
    AppendJsonString(&o, c.name);
    o.append(",\"measured\":");
    AppendJsonString(&o, c.measured);
    o.append(",\"target\":");
    AppendJsonString(&o, c.target);
    o.append(",\"unit\":");
    AppendJsonString(&o, c.unit);
    o.append(",\"value\":");
    if (c.value.has_value()) {
      AppendJsonNumber(&o, *c.value);
    } else {
      o.append("null");
    }
    o.append(",\"target_value\":");
    if (c.target_value.has_value()) {
      AppendJsonNumber(&o, *c.target_value);
    } else {
      o.append("null");
    }
    o.append(",\"passed\":");
    o.append(c.verdict == Verdict::kPass ? "true" : "false");
    o.append(",\"result\":");
    AppendJsonString(&o, ResultWord(c.verdict));
    o.append(",\"detail\":");
    AppendJsonString(&o, c.detail);
    o.push_back('}');
  }
  const ReportSummary s = Summarize(checks);
  o.append("],\"total\":");
  AppendJsonNumber(&o, static_cast<int64_t>(s.total));
  o.append(",\"passed\":");
  AppendJsonNumber(&o, static_cast<int64_t>(s.passed));
  o.append(",\"failed\":");
  AppendJsonNumber(&o, static_cast<int64_t>(s.total - s.passed));
  o.append(",\"success_rate\":");
  AppendJsonNumber(&o, s.success_rate);
  o.append(",\"status\":");
  AppendJsonString(&o, s.ok ? "PASSED" : "FAILED");
  if (!extra.empty()) o.append(",").append(extra);
  o.append("}");
  return o;
}

Result<std::map<std::string, std::vector<int>>> ReadThreadAffinities(
    int64_t pid, const std::filesystem::path& proc_root) {
  const std::filesystem::path tasks = proc_root / std::to_string(pid) / "task";
  std::error_code ec;
  std::filesystem::directory_iterator it(tasks, ec);
  if (ec) return NotFoundError("cannot read " + tasks.string() + ": " + ec.message());
  std::map<std::string, std::vector<int>> threads;
  for (const auto& entry : it) {
    const std::string name = ReadFirstLine(entry.path() / "comm");
    std::ifstream status(entry.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      Result<std::vector<int>> cpus = ParseCpuList(line.substr(line.find(':') + 1));
      if (cpus.ok() && !name.empty()) threads[name] = *cpus;
      break;
    }
  }
  if (threads.empty()) return NotFoundError("no threads readable under " + tasks.string());
  return threads;
}

Check ComparePlacement(const std::vector<ServerStatus::PlannedThread>& plan, bool pinning,
                       const std::map<std::string, std::vector<int>>& actual) {
  Check c;
  c.name = "placement";
  c.target = pinning ? "as planned" : "named (pinning off)";
  int found = 0, matched = 0;
  std::vector<std::string> missing, wrong;
  for (const ServerStatus::PlannedThread& t : plan) {
    auto it = actual.find(t.name);
    if (it == actual.end()) {
      missing.push_back(t.name);
      continue;
    }
    ++found;
    std::vector<int> planned = t.cpus;
    std::sort(planned.begin(), planned.end());
    if (!pinning || it->second == planned) {
      ++matched;
    } else {
      wrong.push_back(t.name + " on " + CpuListText(it->second) + " (plan " + CpuListText(planned) +
                      ")");
    }
  }
  c.value = matched;
  c.target_value = found;
  c.measured = std::to_string(matched) + "/" + std::to_string(found) + " threads";
  c.verdict = found > 0 && wrong.empty() ? Verdict::kPass : Verdict::kFail;
  std::string detail;
  for (const std::string& w : wrong) {
    if (!detail.empty()) detail.append("; ");
    detail.append(w);
  }
  if (found == 0) detail = "none of the planned threads exists";
  if (!missing.empty()) {
    if (!detail.empty()) detail.append("; ");
    detail.append("not running:");
    for (const std::string& m : missing) detail.append(" ").append(m);
  }
  c.detail = detail;
  return c;
}

std::string CpuListText(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(cpus[i]);
    if (j > i) out.append("-").append(std::to_string(cpus[j]));
    i = j + 1;
  }
  if (out.empty()) out = "none";
  return out;
}

}  // namespace brainstem

// The brainstem subcommands. Each Register* adds its options to the CLI11 app and returns the
// function that runs it once parsing succeeded; the function returns the process exit code.
// Thread-compatible: called from main() only.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace brainstem {

// Options every command that reads the config shares: --config FILE and --set key=value.
struct ConfigFlags {
  std::string file;
  std::vector<std::string> sets;

  void AddTo(CLI::App* command);
  // Builds ConfigInputs from the flags plus the process environment.
  Result<ConfigInputs> ToInputs(
      std::vector<std::pair<std::string, std::string>> extra_overrides = {}) const;
};

std::function<int()> RegisterServe(CLI::App* app);
std::function<int()> RegisterConfig(CLI::App* app);
std::function<int()> RegisterBench(CLI::App* app);
std::function<int()> RegisterTopology(CLI::App* app);
std::function<int()> RegisterMonitor(CLI::App* app);
std::function<int()> RegisterValidate(CLI::App* app);
// Only in builds with screen perception (BRAINSTEM_HAVE_OCR).
std::function<int()> RegisterCapture(CLI::App* app);

}  // namespace brainstem

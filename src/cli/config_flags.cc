#include "cli/commands.h"

namespace brainstem {

void ConfigFlags::AddTo(CLI::App* command) {
  command->add_option("-c,--config", file, "YAML config file (default: built-in defaults)");
  command->add_option("--set", sets, "Override a config key, e.g. --set server.port=9000")
      ->type_name("KEY=VALUE");
}

Result<ConfigInputs> ConfigFlags::ToInputs(
    std::vector<std::pair<std::string, std::string>> extra_overrides) const {
  ConfigInputs inputs;
  if (!file.empty()) inputs.file = file;
  inputs.env = CurrentEnvironment();
  for (const std::string& set : sets) {
    auto eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError("--set '" + set + "': expected KEY=VALUE");
    }
    inputs.overrides.emplace_back(set.substr(0, eq), set.substr(eq + 1));
  }
  for (auto& override : extra_overrides) inputs.overrides.push_back(std::move(override));
  return inputs;
}

}  // namespace brainstem

// `brainstem config --print`: the effective configuration and where each value came from.
#include <iostream>
#include <memory>

#include "cli/commands.h"

namespace brainstem {

std::function<int()> RegisterConfig(CLI::App* app) {
  CLI::App* command = app->add_subcommand("config", "Show the effective configuration");
  auto flags = std::make_shared<ConfigFlags>();
  flags->AddTo(command);
  auto print = std::make_shared<bool>(false);
  command->add_flag("--print", *print, "Print every key, its value and its source");
  return [flags, print]() {
    Result<ConfigInputs> inputs = flags->ToInputs();
    if (!inputs.ok()) {
      std::cerr << "brainstem: " << inputs.status().message() << "\n";
      return 2;
    }
    Result<Config> config = LoadConfig(*inputs);
    if (!config.ok()) {
      std::cerr << "brainstem: " << config.status().message() << "\n";
      return 2;
    }
    std::cout << PrintConfig(*config);
    if (!*print) std::cerr << "(the config is valid; --print shows sources)\n";
    return 0;
  };
}

}  // namespace brainstem

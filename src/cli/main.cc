// brainstem: one binary, one subcommand per job (serve, config, ...).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"brainstem: a real-time inference runtime for agents"};
  app.require_subcommand(1);
  auto serve = brainstem::RegisterServe(&app);
  auto config = brainstem::RegisterConfig(&app);
  auto topology = brainstem::RegisterTopology(&app);
  auto bench = brainstem::RegisterBench(&app);
  auto monitor = brainstem::RegisterMonitor(&app);
  auto validate = brainstem::RegisterValidate(&app);
#ifdef BRAINSTEM_HAVE_OCR
  auto capture = brainstem::RegisterCapture(&app);
#endif
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("serve")) return serve();
  if (app.got_subcommand("config")) return config();
  if (app.got_subcommand("topology")) return topology();
  if (app.got_subcommand("bench")) return bench();
  if (app.got_subcommand("monitor")) return monitor();
  if (app.got_subcommand("validate")) return validate();
#ifdef BRAINSTEM_HAVE_OCR
  if (app.got_subcommand("capture")) return capture();
#endif
  return 2;
}

#include <fmt/core.h>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Ebb: diffusion image generation in the memory you have"};
  app.require_subcommand(1);
  ebb::add_devices_command(app);
  ebb::add_inspect_command(app);
  ebb::add_generate_command(app);
  ebb::add_report_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ebb::Error& e) {
    fmt::print(stderr, "ebb: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ebb: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}

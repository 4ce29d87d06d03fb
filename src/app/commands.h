#pragma once
// Each `ebb` subcommand registers itself on the CLI; main() only dispatches.
#include <CLI/CLI.hpp>

namespace ebb {

void add_devices_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_report_command(CLI::App& app);

}  // namespace ebb

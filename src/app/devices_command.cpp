#include <fmt/core.h>

#include "app/commands.h"
#include "backend/device_info.h"

namespace ebb {

void add_devices_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("devices", "List the devices Ebb can compute on");
  cmd->callback([] {
    std::vector<std::string> notes;
    for (const DeviceInfo& d : list_devices(notes))
      fmt::print("{:<8} {}  {:.1f} GiB total, {:.1f} GiB free\n", d.id, d.name,
                 d.total_memory / double(1 << 30), d.free_memory / double(1 << 30));
    for (const auto& n : notes) fmt::print(stderr, "note: {}\n", n);
  });
}

}  // namespace ebb

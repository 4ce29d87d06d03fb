#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "weights/ledger_svg.h"

namespace ebb {
namespace {

struct ReportArgs {
  std::string input;
  std::string output = "timeline.svg";
  bool overwrite = false;
};

void run_report(const ReportArgs& a) {
  std::ifstream in(a.input);
  if (!in) fail("cannot read memory report {}", a.input);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json report = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded()) fail("{} is not JSON (expected a --memory-report file)", a.input);
  const std::string svg = ledger_to_svg(report);
  AtomicFile file = AtomicFile::create(a.output, a.overwrite);
  file.write(std::as_bytes(std::span(svg)));
  file.commit();
  if (report.contains("summary")) fmt::print("{}\n", report["summary"].dump(1));
  fmt::print(stderr, "wrote {}\n", a.output);
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand(
      "report", "Draw a --memory-report ledger as a timeline (SVG) and print its summary");
  cmd->add_option("file", args->input, "The JSON written by generate --memory-report")->required();
  cmd->add_option("-o,--output", args->output, "SVG to write")->capture_default_str();
  cmd->add_flag("--overwrite", args->overwrite, "Replace an existing output file");
  cmd->callback([args] { run_report(*args); });
}

}  // namespace ebb

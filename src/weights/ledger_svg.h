#pragma once
// The memory ledger drawn as a timeline: how much memory each device held over the run, and
// where each component's stage began, as a standalone SVG picture.
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace ebb {

// ledger_json is what Ledger::to_json() writes ({"events": [{"t", "event", "device",
// "component", "bytes", ...}], ...}). The held bytes of each device are replayed from the
// events (load and upload add, free and evict subtract, map, mark and sample own nothing and are
// not drawn) and drawn as one step line per device, with axes in seconds and GiB, a legend with
// each device's peak, and a labelled vertical marker where each stage begins: the pipeline's
// "begin <stage>" marks, or without them the first owning event of each component. A
// malformed ledger (a missing field, an unknown event, a free of more than is held) is an
// ebb::Error naming the event.
std::string ledger_to_svg(const nlohmann::json& ledger_json);

}  // namespace ebb

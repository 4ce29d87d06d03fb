#include "weights/ledger_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "weights/byte_units.h"

namespace ebb {
namespace {

constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;

// ---- reading and replaying the ledger ----

struct OwningEvent {  // a load, upload, free or evict; map events own nothing
  size_t index;       // in the ledger's event list, for messages
  double t;
  bool adds;
  std::string device, component;
  uint64_t bytes;
};

const nlohmann::json& field(const nlohmann::json& event, size_t index, const char* name) {
  auto it = event.find(name);
  if (it == event.end()) fail("ledger JSON: event {} has no \"{}\"", index, name);
  return *it;
}

std::string string_field(const nlohmann::json& event, size_t index, const char* name) {
  const nlohmann::json& value = field(event, index, name);
  if (!value.is_string()) fail("ledger JSON: event {}: \"{}\" is not a string", index, name);
  return value.get<std::string>();
}

std::vector<OwningEvent> owning_events(const nlohmann::json& ledger) {
  if (!ledger.is_object() || !ledger.contains("events") || !ledger["events"].is_array())
    fail("ledger JSON: expected an object with an \"events\" array");
  const nlohmann::json& events = ledger["events"];
  std::vector<OwningEvent> owning;
  for (size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json& e = events[i];
    if (!e.is_object()) fail("ledger JSON: event {} is not an object", i);
    std::string kind = string_field(e, i, "event");
    if (kind != "map" && kind != "load" && kind != "upload" && kind != "free" && kind != "evict" &&
        kind != "mark" && kind != "sample")
      fail("ledger JSON: event {}: unknown event \"{}\"", i, kind);
    const nlohmann::json& t = field(e, i, "t");
    if (!t.is_number() || !std::isfinite(t.get<double>()) || t.get<double>() < 0)
      fail("ledger JSON: event {}: \"t\" is not a time in seconds", i);
    const nlohmann::json& bytes = field(e, i, "bytes");
    if (!bytes.is_number_unsigned() && !(bytes.is_number_integer() && bytes.get<int64_t>() >= 0))
      fail("ledger JSON: event {}: \"bytes\" is not a byte count", i);
    std::string device = string_field(e, i, "device");
    std::string component = string_field(e, i, "component");
    if (kind == "map" || kind == "mark" || kind == "sample") continue;
    owning.push_back({i, t.get<double>(), kind == "load" || kind == "upload", std::move(device),
                      std::move(component), bytes.get<uint64_t>()});
  }
  std::stable_sort(owning.begin(), owning.end(),
                   [](const OwningEvent& a, const OwningEvent& b) { return a.t < b.t; });
  return owning;
}

struct Point {
  double t, gib;
};

struct DeviceSeries {
  std::vector<Point> steps;  // a step line: each change is a vertical segment at its time
  uint64_t held = 0, peak = 0;
};

std::map<std::string, DeviceSeries> replay(const std::vector<OwningEvent>& events,
                                           double end_time) {
  std::map<std::string, DeviceSeries> devices;
  for (const OwningEvent& e : events) {
    DeviceSeries& series = devices[e.device];
    if (series.steps.empty()) series.steps.push_back({0, 0});
    if (!e.adds && e.bytes > series.held)
      fail("ledger JSON: event {}: releases {} bytes on {} but only {} are held", e.index, e.bytes,
           e.device, series.held);
    series.steps.push_back({e.t, series.held / kBytesPerGiB});
    series.held = e.adds ? series.held + e.bytes : series.held - e.bytes;
    series.peak = std::max(series.peak, series.held);
    series.steps.push_back({e.t, series.held / kBytesPerGiB});
  }
  for (auto& [device, series] : devices)
    series.steps.push_back({end_time, series.held / kBytesPerGiB});
  return devices;
}

struct StageStart {
  double t;
  std::string component;
};

// The pipeline's own stage marks ("begin diffusion"), the first of each stage.
std::vector<StageStart> marked_stage_starts(const nlohmann::json& ledger) {
  std::vector<StageStart> starts;
  std::set<std::string> seen;
  constexpr std::string_view kBegin = "begin ";
  for (const nlohmann::json& e : ledger["events"]) {
    if (e.value("event", "") != "mark") continue;
    const std::string label = e.value("component", "");
    if (label.rfind(kBegin, 0) != 0) continue;
    const std::string stage = label.substr(kBegin.size());
    if (seen.insert(stage).second) starts.push_back({e.value("t", 0.0), stage});
  }
  return starts;
}

// Without stage marks, a stage begins where a component first owns memory; map events are left
// out because models map every file at open, which would put every marker at the start.
std::vector<StageStart> stage_starts(const std::vector<OwningEvent>& events) {
  std::vector<StageStart> starts;
  std::set<std::string> seen;
  for (const OwningEvent& e : events)
    if (seen.insert(e.component).second) starts.push_back({e.t, e.component});
  return starts;
}

// ---- drawing ----

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// An axis from 0 to a round number at or above max, with 4 to 10 ticks at 1, 2 or 5 times a
// power of ten.
struct Axis {
  double step, top;
  int ticks;     // after 0
  int decimals;  // enough to print every tick exactly
};

Axis nice_axis(double max) {
  if (!(max > 0)) max = 1;
  double magnitude = std::pow(10.0, std::floor(std::log10(max / 5)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (max / step <= 10) break;
  }
  int ticks = static_cast<int>(std::ceil(max / step - 1e-9));
  int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return {step, ticks * step, ticks, decimals};
}

constexpr double kWidth = 960, kHeight = 540;
constexpr double kLeft = 80, kRight = 200, kTop = 80, kBottom = 60;
constexpr double kPlotWidth = kWidth - kLeft - kRight, kPlotHeight = kHeight - kTop - kBottom;
constexpr std::array<const char*, 8> kColours = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                 "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

struct Frame {
  Axis x, y;
  double px(double t) const { return kLeft + t / x.top * kPlotWidth; }
  double py(double gib) const { return kTop + kPlotHeight - gib / y.top * kPlotHeight; }
};

void draw_axes(std::string& svg, const Frame& f) {
  for (int i = 0; i <= f.y.ticks; ++i) {
    double v = i * f.y.step;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e0e0e0\"/>\n",
        kLeft, f.py(v), kLeft + kPlotWidth, f.py(v));
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" class=\"tick\">{:.{}f}</text>\n",
        kLeft - 6, f.py(v) + 4, v, f.y.decimals);
  }
  for (int i = 0; i <= f.x.ticks; ++i) {
    double v = i * f.x.step;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#f0f0f0\"/>\n",
        f.px(v), kTop, f.px(v), kTop + kPlotHeight);
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"tick\">{:.{}f}</text>\n",
        f.px(v), kTop + kPlotHeight + 18, v, f.x.decimals);
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#555\"/>\n", kLeft,
      kTop, kPlotWidth, kPlotHeight);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">seconds</text>\n",
                     kLeft + kPlotWidth / 2, kHeight - 16);
  svg += fmt::format(
      "<text x=\"22\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 22 {0:.1f})\">"
      "GiB held</text>\n",
      kTop + kPlotHeight / 2);
}

// Labels sit in rows above the plot; each goes in the lowest row where it does not run into
// the previous label.
void draw_stage_markers(std::string& svg, const Frame& f, const std::vector<StageStart>& starts) {
  constexpr int kRows = 3;
  constexpr double kCharWidth = 6.2;  // of the 11 px label font, an estimate
  std::array<double, kRows> row_end;
  row_end.fill(-1e9);
  for (const StageStart& s : starts) {
    double x = f.px(s.t);
    double width = kCharWidth * static_cast<double>(s.component.size()) + 6;
    int row = 0;
    for (int r = 0; r < kRows; ++r) {
      if (row_end[r] < x) {
        row = r;
        break;
      }
      if (row_end[r] < row_end[row]) row = r;
    }
    row_end[row] = x + width;
    double label_y = kTop - 8 - 14 * row;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#888\" "
        "stroke-dasharray=\"4 3\"/>\n",
        x, label_y + 3, kTop + kPlotHeight);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"stage\">{}</text>\n", x + 3,
                       label_y, xml_escape(s.component));
  }
}

void draw_series(std::string& svg, const Frame& f,
                 const std::map<std::string, DeviceSeries>& devices) {
  size_t i = 0;
  for (const auto& [device, series] : devices) {
    const char* colour = kColours[i % kColours.size()];
    svg +=
        fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"", colour);
    for (const Point& p : series.steps)
      svg += fmt::format("{:.1f},{:.1f} ", f.px(p.t), f.py(p.gib));
    svg += "\"/>\n";
    double y = kTop + 10 + 36 * static_cast<double>(i);
    double x = kLeft + kPlotWidth + 20;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"3\"/>\n",
        x, y, x + 24, y, colour);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", x + 32, y + 4,
                       xml_escape(device));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\">peak {}</text>\n", x + 32,
                       y + 19, format_bytes(series.peak));
    ++i;
  }
}

}  // namespace

std::string ledger_to_svg(const nlohmann::json& ledger_json) {
  std::vector<OwningEvent> events = owning_events(ledger_json);
  std::vector<StageStart> starts = marked_stage_starts(ledger_json);
  if (starts.empty()) starts = stage_starts(events);
  double end_time = events.empty() ? 0 : events.back().t;
  for (const StageStart& s : starts) end_time = std::max(end_time, s.t);
  std::map<std::string, DeviceSeries> devices = replay(events, end_time);
  uint64_t peak = 0;
  for (const auto& [device, series] : devices) peak = std::max(peak, series.peak);
  // Headroom above the peak keeps its line off the frame.
  Frame frame{nice_axis(end_time), nice_axis(1.08 * peak / kBytesPerGiB)};

  std::string svg = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
      "font-size=\"13\">\n"
      "<style>.tick {{ font-size: 11px; fill: #444; }} .stage {{ font-size: 11px; fill: #333; }}"
      "</style>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" font-size=\"16\" font-weight=\"bold\">Memory held per device"
      "</text>\n",
      kWidth, kHeight, kLeft);
  draw_axes(svg, frame);
  draw_stage_markers(svg, frame, starts);
  draw_series(svg, frame, devices);
  svg += "</svg>\n";
  return svg;
}

}  // namespace ebb

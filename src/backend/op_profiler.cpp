#include "backend/op_profiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace ebb {
namespace {

std::string describe(std::string_view op, std::initializer_list<Operand> operands) {
  std::string key(op);
  const char* separator = " ";
  for (const Operand& o : operands) {
    if (!o.tensor.defined()) continue;
    key += fmt::format("{}{} {}", separator, o.name, o.tensor.describe());
    separator = ", ";
  }
  return key;
}

struct Row {
  std::string op, operands;
  int64_t count = 0;
  double ms = 0;
};

void print_rows(std::string& out, std::vector<Row> rows, size_t top, int runs, double total_ms) {
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  out += "| # | op | operands | calls | ms | share |\n|---|---|---|---|---|---|\n";
  Row rest{"(the rest)", "", 0, 0};
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i >= top) {
      rest.count += rows[i].count;
      rest.ms += rows[i].ms;
      continue;
    }
    out += fmt::format("| {} | {} | {} | {:g} | {:.3f} | {:.1f}% |\n", i + 1, rows[i].op,
                       rows[i].operands, double(rows[i].count) / runs, rows[i].ms / runs,
                       100 * rows[i].ms / total_ms);
  }
  if (rest.count > 0)
    out += fmt::format("| | {} | | {:g} | {:.3f} | {:.1f}% |\n", rest.op, double(rest.count) / runs,
                       rest.ms / runs, 100 * rest.ms / total_ms);
}

}  // namespace

void OpProfiler::op_begin(std::string_view op, std::initializer_list<Operand> operands) {
  if (depth_++ == 0) start(describe(op, operands));
}

void OpProfiler::op_end() {
  if (--depth_ == 0) stop();
}

void OpProfiler::clear() {
  totals_.clear();
  idle_.clear();
  span_ms_ = 0;
}

void OpProfiler::add(const std::string& key, double ms) {
  Total& t = totals_[key];
  ++t.count;
  t.ms += ms;
}

void OpProfiler::add_idle(const std::string& key, double ms) {
  Total& t = idle_[key];
  ++t.count;
  t.ms += ms;
}

std::string OpProfiler::table(std::string_view title, int runs, int top) const {
  runs = std::max(runs, 1);
  double total_ms = 0;
  int64_t calls = 0;
  std::map<std::string, Row> by_op;
  std::vector<Row> by_shape;
  for (const auto& [key, t] : totals_) {
    total_ms += t.ms;
    calls += t.count;
    const size_t space = key.find(' ');
    const std::string op = key.substr(0, space);
    Row& kind = by_op[op];
    kind.op = op;
    kind.count += t.count;
    kind.ms += t.ms;
    by_shape.push_back(
        {op, space == std::string::npos ? std::string() : key.substr(space + 1), t.count, t.ms});
  }
  std::string out = fmt::format(
      "{}: {:g} ops, {:.3f} ms of op time per run; {:.3f} ms from the first op's start to the last "
      "op's end (averaged over {} run{})\n\nBy op:\n\n",
      title, double(calls) / runs, total_ms / runs, span_ms_ / runs, runs, runs == 1 ? "" : "s");
  if (total_ms <= 0) total_ms = 1;
  std::vector<Row> kinds;
  for (auto& [op, row] : by_op) kinds.push_back(std::move(row));
  const size_t all = kinds.size();
  print_rows(out, std::move(kinds), all, runs, total_ms);
  out += fmt::format("\nBy op and operands (top {}):\n\n", top);
  print_rows(out, std::move(by_shape), static_cast<size_t>(std::max(top, 0)), runs, total_ms);
  std::vector<Row> waits;
  double idle_ms = 0;
  for (const auto& [key, t] : idle_) {
    idle_ms += t.ms;
    const size_t space = key.find(' ');
    waits.push_back({key.substr(0, space),
                     space == std::string::npos ? std::string() : key.substr(space + 1), t.count,
                     t.ms});
  }
  if (idle_ms > 0) {
    out += fmt::format(
        "\nDevice idle before ops: {:.3f} ms per run, by the op that started late (top 5; share "
        "of the idle time):\n\n",
        idle_ms / runs);
    print_rows(out, std::move(waits), 5, runs, idle_ms);
  }
  return out;
}

void HostOpProfiler::start(std::string key) {
  key_ = std::move(key);
  started_ = Clock::now();
  if (first_start_)
    add_idle(key_, std::chrono::duration<double, std::milli>(started_ - last_stop_).count());
  else
    first_start_ = started_;
}

void HostOpProfiler::stop() {
  last_stop_ = Clock::now();
  add(key_, std::chrono::duration<double, std::milli>(last_stop_ - started_).count());
}

void HostOpProfiler::collect() {
  if (first_start_)
    add_span(std::chrono::duration<double, std::milli>(last_stop_ - *first_start_).count());
  first_start_.reset();
}

}  // namespace ebb

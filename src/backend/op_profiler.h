#pragma once
// Per-op timing of a backend (`ebb generate --profile`): attached as the backend's op observer,
// a profiler times every outermost public op and sums the times per op and operand shapes, so
// one sampler step reads as a table of what the device spent its time on. A device profiler
// times on the device (CUDA events, see backend/cuda/op_profiler.h); HostOpProfiler times with
// the host clock, which is the op's time on a backend that computes synchronously (the CPU).
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "backend/op_observer.h"

namespace ebb {

class OpProfiler : public OpObserver {
 public:
  void op_begin(std::string_view op, std::initializer_list<Operand> operands) final;
  void op_end() final;

  // Adds the ops finished so far to the totals (waits for the device to finish them).
  virtual void collect() = 0;
  // Forgets the totals (call after collect(): ops still pending would count later).
  void clear();
  // The totals divided by `runs` (the steps they cover): a table by op, then the `top` op and
  // operand-shape rows by time, each with its share of the ops' time, then the ops the device
  // waited longest before (idle time per run), as Markdown.
  std::string table(std::string_view title, int runs, int top = 30) const;

 protected:
  // An outermost op named `key` starts; stop() follows when it has been enqueued.
  virtual void start(std::string key) = 0;
  virtual void stop() = 0;
  void add(const std::string& key, double ms);
  // The time from the first collected op's start to the last one's end: with the ops' sum, it
  // shows how long the device sat idle between ops (waiting for the host).
  void add_span(double ms) { span_ms_ += ms; }
  // The device sat idle `ms` between the previous op's end and the start of op `key`: the host
  // was late to enqueue it (a synchronisation, a blocking call, slow host work before it).
  void add_idle(const std::string& key, double ms);

 private:
  struct Total {
    int64_t count = 0;
    double ms = 0;
  };
  int depth_ = 0;
  double span_ms_ = 0;
  std::map<std::string, Total> totals_;
  std::map<std::string, Total> idle_;  // by the op that started late
};

class HostOpProfiler final : public OpProfiler {
 public:
  void collect() override;

 protected:
  void start(std::string key) override;
  void stop() override;

 private:
  using Clock = std::chrono::steady_clock;
  std::string key_;
  Clock::time_point started_;
  std::optional<Clock::time_point> first_start_;  // since the last collect
  Clock::time_point last_stop_;
};

}  // namespace ebb

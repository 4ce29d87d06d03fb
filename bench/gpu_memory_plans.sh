#!/usr/bin/env bash
# The memory-plan grid of docs/benchmarks.md on a GPU, one command: makes full-size random-weight
# checkpoints with ebb-synth, runs `ebb generate` under each plan with --memory-report, and
# prints one markdown row per plan. Steady step = median of the sampler steps after the first;
# the streaming target is 1.1 × max(resident step, streamed bytes per step ÷ H2D_GBPS), and the
# bound is bench/streaming_bound.py's (no placement of the weights streams faster); the
# streaming column also counts the device arena's cache misses after step 3 (under a budget full
# to the last byte; each is a stream-ordered pool allocation, not a cudaMalloc).
#
#   bench/gpu_memory_plans.sh [sd1] [sdxl]      (default: both)
# Environment: EBB, SYNTH (the binaries), WORK (scratch dir, needs ~12 GB), STEPS_sd1,
# STEPS_sdxl (sampler steps; step time is the metric), H2D_GBPS (pinned host→device rate),
# DEPTHS (prefetch depths, default "1 2"), SKIP_COLD=1 (no cold-read and --direct-io rows),
# SKIP_DIRECT_STREAM=1 (cold-read rows, but not the slow --direct-io streaming one), SKIP_WARM=1
# (only the cold-read rows), STREAM_BUDGETS_sd1, STREAM_BUDGETS_sdxl (extra stream rows at these
# fixed --max-vram budgets in GiB, e.g. an earlier run's, to compare at equal budgets),
# FRACTIONS (the stream rows at these fractions of the UNet, default "0.25 0.5 0.9"; empty for
# none), SKIP_AUTO=1 (no `--memory auto --max-vram 4` row).
set -uo pipefail
EBB=${EBB:-bin/ebb}
SYNTH=${SYNTH:-bin/ebb-synth}
WORK=${WORK:-/tmp/ebb-plans}
H2D_GBPS=${H2D_GBPS:-53.5}
DEPTHS=${DEPTHS:-1 2}
FRACTIONS=${FRACTIONS-0.25 0.5 0.9}
SKIP_AUTO=${SKIP_AUTO:-0}
SKIP_COLD=${SKIP_COLD:-0}
SKIP_DIRECT_STREAM=${SKIP_DIRECT_STREAM:-0}
SKIP_WARM=${SKIP_WARM:-0}
BENCH=$(dirname "$(realpath "$0")")
mkdir -p "$WORK"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(sd1 sdxl)

# Drops a file's pages from the page cache (whole cache where allowed).
evict() {
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null ||
    python3 -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)' "$1"
}

# row MODEL SIZE STEPS LABEL FLAGS...: one generation, one table row.
row() {
  local model=$1 size=$2 steps=$3 label=$4
  shift 4
  rm -f "$WORK/out.png" "$WORK/report.json"
  if ! "$EBB" generate -m "$WORK/$model.safetensors" -p "a lighthouse at dusk" -W "$size" -H "$size" \
      --steps "$steps" -s 1 -o "$WORK/out.png" --memory-report "$WORK/report.json" "$@" \
      >"$WORK/log.txt" 2>&1; then
    echo "| $model $label | failed: $(tail -1 "$WORK/log.txt") |"
    return
  fi
  local budget
  budget=$(printf '%s\n' "$@" | awk 'previous == "--max-vram" {print} {previous = $0}')
  python3 - "$WORK" "$model" "$label" "$H2D_GBPS" "${RESIDENT_STEP:-0}" "${budget:-0}" "$BENCH" <<'PY'
import json, re, statistics, sys, zlib
work, model, label, h2d, resident_step = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
budget = float(sys.argv[6])
sys.path.insert(0, sys.argv[7])
import streaming_bound
r = json.load(open(f"{work}/report.json"))
s = r["summary"]
log = open(f"{work}/log.txt").read()
plan = next((l for l in log.splitlines() if l.startswith("plan:")), "")
steps = [e["t"] for e in r["events"] if e["event"] == "mark" and e["component"] == "step"]
gaps = [b - a for a, b in zip(steps, steps[1:])]
steady = statistics.median(gaps) if gaps else s["mean_step_s"]
gib = lambda b: f"{b / 2**30:.2f}"
dev = max((sum(tags.values()) for d, tags in s["peak_device_bytes"].items() if d.startswith("cuda")), default=0)
crc = f'{zlib.crc32(open(f"{work}/out.png", "rb").read()):08x}'
m = re.search(r"([0-9.]+ [KMG]iB) of ([0-9.]+ [KMG]iB) of diffusion blocks resident", plan)
units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
size = lambda t: float(t.split()[0]) * units[t.split()[1]]
samples = lambda what: [e for e in r["events"] if e["event"] == "sample" and e["device"] == what]
allocs = [e["bytes"] for e in samples("device_allocations")]
target = ""
# The resident blocks after the store measured the second step, where that changed them.
g = re.search(r"streaming: from the third step on, ([0-9.]+ [KMG]iB) of diffusion blocks resident", log)
if m and "stream" in plan:
    streamed = size(m.group(2)) - size((g or m).group(1))
    link = streamed / (h2d * 1e9)
    goal = 1.1 * max(resident_step, link)
    target = f"{streamed / 2**30:.2f} GiB/step, target {goal * 1e3:.0f} ms: {'met' if steady <= goal else 'missed'}"
    if len(allocs) > 3 and allocs[-1] > allocs[2]:
        target += f"; {allocs[-1] - allocs[2]} arena misses after step 3"
    if budget and r.get("measured_pass"):
        b = streaming_bound.lower_bound(r["measured_pass"], budget * 2**30, h2d * 1e9)
        target += f"; bound {b['step_s'] * 1e3:.0f} ms"
resident = f"{m.group(1)}{f' → {g.group(1)}' if g else ''} of {m.group(2)} resident" if m else ""
print(f"| {model} {label} | {resident} | {crc} | {gib(dev)} | {gib(s['peak_rss_anon_bytes'])} + {gib(s['peak_rss_file_bytes'])} "
      f"| {gib(s['peak_page_cache_bytes'])} | {s['load_s']:.2f} | {s['time_to_first_step_s']:.2f} | {steady * 1e3:.0f} ms | {s['total_s']:.2f} | {target} |")
if label == "eager":
    open(f"{work}/resident_step", "w").write(f"{steady}")
PY
}

# The stream budget that keeps a fraction of the UNet resident: the planner's smallest
# streaming budget (from its error for a 0.1 GiB budget, which still holds the backend's own
# workspace) plus that fraction of the UNet.
stream_budget() {
  local model=$1 size=$2 fraction=$3
  "$EBB" generate -m "$WORK/$model.safetensors" -p x -W "$size" -H "$size" --steps 1 \
    --stream-layers --max-vram 0.1 -o "$WORK/none.png" 2>&1 | tee "$WORK/probe.txt" |
    python3 -c '
import re, sys
t = sys.stdin.read(); f = float(sys.argv[1])
u = {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1}
g = lambda m: float(m.group(1)) * u[m.group(2)]
low = g(re.search(r"smallest budget that works is ([0-9.]+) ([KMG]iB)", t))
unet = g(re.search(r"diffusion model ([0-9.]+) ([KMG]iB)", t))
print(f"{low + f * unet + 0.01:.2f}")' "$fraction"
}

echo "| plan | resident UNet | PNG crc32 | device peak GiB | RSS anon + file GiB | page cache GiB | load s | first step s | steady step | total s | streaming |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for model in "${models[@]}"; do
  case $model in
    sd1) size=512 steps=${STEPS_sd1:-20} ;;
    sdxl) size=1024 steps=${STEPS_sdxl:-20} ;;
    *) echo "unknown model $model (sd1, sdxl)" >&2; exit 1 ;;
  esac
  file="$WORK/$model.safetensors"
  [ -f "$file" ] || "$SYNTH" "$model" --size full -o "$file" >/dev/null
  bytes=$(stat -c %s "$file")
  if [ "$SKIP_COLD" != 1 ]; then
    # Cold reads: dd, then Ebb reading every weight at start, the cache dropped before each.
    evict "$file"
    dd_s=$( { TIMEFORMAT=%R; time dd if="$file" of=/dev/null bs=16M 2>/dev/null; } 2>&1 | tail -1)
    echo "| $model dd (cold, buffered) | $(python3 -c "print(f'{$bytes / $dd_s / 1e9:.2f} GB/s in $dd_s s')") |"
    evict "$file"
    row "$model" "$size" 1 "cold --eager-load --direct-io (1 step)" --eager-load --direct-io
    evict "$file"
    row "$model" "$size" 1 "cold --eager-load --no-mmap (1 step)" --eager-load --no-mmap
  fi
  [ "$SKIP_WARM" = 1 ] && continue
  RESIDENT_STEP=0 row "$model" "$size" "$steps" eager --eager-load
  RESIDENT_STEP=$(cat "$WORK/resident_step" 2>/dev/null || echo 0)
  export RESIDENT_STEP
  [ "$SKIP_AUTO" = 1 ] ||
    row "$model" "$size" "$steps" "--memory auto --max-vram 4" --memory auto --max-vram 4
  for fraction in $FRACTIONS; do
    budget=$(stream_budget "$model" "$size" "$fraction")
    for depth in $DEPTHS; do
      row "$model" "$size" "$steps" "stream ${fraction} (--max-vram $budget), prefetch $depth" \
        --stream-layers --max-vram "$budget" --layer-prefetch-depth "$depth"
    done
  done
  fixed=STREAM_BUDGETS_$model
  for budget in ${!fixed:-}; do
    for depth in $DEPTHS; do
      row "$model" "$size" "$steps" "stream (--max-vram $budget), prefetch $depth" \
        --stream-layers --max-vram "$budget" --layer-prefetch-depth "$depth"
    done
  done
  if [ "$SKIP_COLD" != 1 ] && [ "$SKIP_DIRECT_STREAM" != 1 ]; then
    budget=$(stream_budget "$model" "$size" 0.25)
    evict "$file"
    row "$model" "$size" "$steps" "stream 0.25 (--max-vram $budget) --direct-io, cold" \
      --stream-layers --max-vram "$budget" --direct-io
  fi
  unset RESIDENT_STEP
done
echo "model sizes: $(for m in "${models[@]}"; do stat -c '%n %s' "$WORK/$m.safetensors"; done | tr '\n' ' ')"

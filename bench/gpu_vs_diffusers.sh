#!/usr/bin/env bash
# Ebb and diffusers side by side on one GPU, on the same full-size random-weight single files
# (made here with ebb-synth) and settings: batch 1, cfg 7, 20 steps, euler_a, the weights
# resident (Ebb --eager-load). Each tool makes 3 images in one process; images 2 and 3 count
# (model loaded). diffusers runs only where it is importable (docs/benchmarks.md, "Side by side
# with diffusers", says how to carry its wheel); its columns are empty otherwise.
#
# Usage: bench/gpu_vs_diffusers.sh [-b BIN_DIR] [-a ASSETS_DIR] [-w WORK_DIR] [WORK...]
#   WORK: sd1:512, sd1:1024, sdxl:1024 (the default: all three)
#   BIN_DIR holds ebb and ebb-synth (default: build); ASSETS_DIR Ebb's assets (default:
#   $EBB_ASSETS_DIR or assets); WORK_DIR gets the checkpoints and logs (default: /tmp/ebb-vs).
# Prints a Markdown table: seconds per image (images 2, 3), Ebb's device peak from its ledger
# (the sum of its per-tag peaks), torch's peak allocated memory for diffusers, and the peak of
# nvidia-smi's memory.used during each run (CUDA context included).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=build
assets=${EBB_ASSETS_DIR:-assets}
work=/tmp/ebb-vs
while getopts "b:a:w:" opt; do
  case $opt in
    b) bin=$OPTARG ;;
    a) assets=$OPTARG ;;
    w) work=$OPTARG ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
works=("$@")
[ ${#works[@]} -gt 0 ] || works=(sd1:512 sd1:1024 sdxl:1024)
mkdir -p "$work"
export EBB_ASSETS_DIR=$assets
prompt="a lighthouse at dusk"
have_diffusers=0
python3 -c "import diffusers" 2>/dev/null && have_diffusers=1

# Runs "$@" with its output in $1 while sampling nvidia-smi's memory.used every 100 ms; prints
# the peak in MiB.
peak_memory_used() {
  local log=$1 samples=$work/smi.$$
  shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$samples" &
  local smi=$!
  local status=0
  "$@" >"$log" 2>&1 || status=$?
  kill "$smi" 2>/dev/null
  wait "$smi" 2>/dev/null || true
  sort -n "$samples" | tail -1
  rm -f "$samples"
  return $status
}

checkpoint() {
  local arch=$1 file=$work/$1.safetensors
  [ -f "$file" ] || "$bin/ebb-synth" "$arch" --size full -o "$file" >&2
  echo "$file"
}

rows=()
for w in "${works[@]}"; do
  arch=${w%%:*} size=${w##*:}
  model=$(checkpoint "$arch")
  log=$work/ebb-$arch-$size.log
  ebb_smi=$(peak_memory_used "$log" "$bin/ebb" generate -m "$model" -p "$prompt" -W "$size" \
    -H "$size" --steps 20 --cfg-scale 7 -s 1 -b 3 -o "$work/ebb-$arch-$size.png" --overwrite \
    --eager-load) || { echo "ebb failed for $w: see $log" >&2; tail -5 "$log" >&2; exit 1; }
  # One "memory:" line per image: "... cuda0 ≤2.81 GiB (...) · ... · total 0.32 s".
  ebb_times=$(grep '^memory:' "$log" | sed -n '2,3p' | sed 's/.*total \([0-9.]*\) s.*/\1/' |
    paste -sd, | sed 's/,/, /')
  ebb_peak=$(grep '^memory:' "$log" | tail -1 | sed 's/.*cuda0 ≤\([^(]*\) (.*/\1/' | xargs)
  py_times="" py_peak="" py_smi=""
  if [ $have_diffusers = 1 ]; then
    pylog=$work/diffusers-$arch-$size.log
    if py_smi=$(peak_memory_used "$pylog" python3 "$here/diffusers_runner.py" "$arch" "$model" \
        --bpe "$assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz" --size "$size" --steps 20 \
        --cfg 7 --images 3 --prompt "$prompt"); then
      # The runner's JSON line: images 2 and 3, and torch's peak allocated memory.
      IFS='|' read -r py_times py_peak < <(grep '^{' "$pylog" | tail -1 | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(", ".join("%.2f" % t for t in r["times_s"][1:]) + "|%.2f GiB" % r["peak_allocated_gib"])')
      py_smi="$py_smi MiB"
    else
      echo "diffusers failed for $w: see $pylog" >&2
      tail -5 "$pylog" >&2
    fi
  fi
  rows+=("| ${arch^^} ${size}² | $ebb_times | ${py_times:-—} | ≤ $ebb_peak | $ebb_smi MiB | ${py_peak:-—} | ${py_smi:-—} |")
done

echo "| work | Ebb s/image | diffusers s/image | Ebb peak (ledger) | Ebb memory.used peak | diffusers peak allocated | diffusers memory.used peak |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"

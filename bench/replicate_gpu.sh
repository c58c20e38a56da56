#!/usr/bin/env bash
# Runs plw studies on a lent GPU machine (the `device` tool of this workplace; docs/replication.md,
# "GPU runs"): the machine has CUDA torch, transformers, peft, accelerate, pandas, statsmodels and no
# package index or hub, and a call carries at most 64 MiB, so what it lacks travels in git-ignored
# folders of the working tree:
#   .whl/            wheels of plw's other dependencies for its Python (trl, datasets, pydantic, gguf, ...)
#   .gpu/data/       ../shared/data/instruct/alpaca_5000.json and ../shared/data/bench/<task folders>
#   .gpu/stories260K the tiny model, for the smoke run
#   .gpu/part1, .gpu/part2   SmolLM2-135M-Instruct.Q4_1.gguf (98 MB) cut in two, one part per call
#   .gpu/code/       `git archive HEAD src configs docs/results pyproject.toml` of the commit to
#                    run: other work in the checkout, committed or not, never reaches a running study
#
#   bash bench/replicate_gpu.sh setup            # call 1: install, stage part1, smoke-run stories260K
#   bash bench/replicate_gpu.sh run BUDGET_S     # call 2: stage part2, run the studies for BUDGET_S
#
# `run` starts one `plw sweep` per study part at once (separate study directories, so no two sweeps
# share one), stops what is still running after BUDGET_S seconds (finished cells are whole: a cell
# writes result.json last), and packs each study directory's results, per-item files and logs into
# $OUT (at most 8 files come back).
set -uo pipefail
STAGE=/tmp/plwgpu
export PYTHONPATH="$STAGE/site:$STAGE/code/src" OMP_NUM_THREADS=2 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 PLW_CACHE_DIR="$STAGE/cache"
PY=python3
OUT=${OUT:-/tmp/out}
mkdir -p "$STAGE" "$OUT"

setup() {
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STAGE/site" .whl/*.whl .whl/*.tar.gz 2>&1 | tail -3
    cp -r .gpu/data .gpu/stories260K .gpu/code "$STAGE/" && cp .gpu/part1 "$STAGE/part1"
    cd "$STAGE/code" || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $PY -c "import torch, transformers, trl, datasets, pyarrow, pydantic, peft, gguf; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, 'peft', peft.__version__)"
    local t0=$SECONDS
    $PY -m plw sweep configs/studies/replicate-gpu.yaml name=smoke output_dir="$STAGE/studies/smoke" \
        models.smollm2="$STAGE/stories260K" 'factors.plw=[0,1]' 'factors.seed=[0]' datasets.short.limit=64 \
        datasets.short.path="alpaca-short@$STAGE/data/instruct/alpaca_5000.json" eval.data_dir="$STAGE/data/bench" \
        eval.limit=16 train.epochs=1 train.warmup_ratio=0 2>&1 | tail -8
    echo "smoke sweep: $((SECONDS - t0)) s"
    $PY -m plw results "$STAGE/studies/smoke" | grep -E "arc_easy,acc_norm|weight_l2|truthfulqa_mc2"
    grep -h -E "Error|Traceback" "$STAGE"/studies/smoke/cells/*/worker.log | head -5
    grep -h -o '"margin": [^,]*' "$STAGE"/studies/smoke/cells/*/eval/arc_easy.jsonl | head -2
}

# name | study file | overrides separated by ';' (a value may hold spaces)
PARTS=()
part() { PARTS+=("$1|$2|$3"); }

run() {
    local budget=$1
    cat "$STAGE/part1" .gpu/part2 > "$STAGE/SmolLM2-135M-Instruct.Q4_1.gguf" || exit 1
    cd "$STAGE/code" || exit 1
    sha256sum "$STAGE/SmolLM2-135M-Instruct.Q4_1.gguf" | cut -c1-16
    local model="$STAGE/SmolLM2-135M-Instruct.Q4_1.gguf" data="$STAGE/data"
    local common="models.smollm2=$model;eval.data_dir=$data/bench"
    local short="datasets.short.path=alpaca-short@$data/instruct/alpaca_5000.json"
    local long="datasets.long.path=$data/instruct/alpaca_5000.json"
    # REPL=1: the committed CPU replication's cells again, for their per-item results (design A and
    # B; run on 2026-12-04: a GPU does not reproduce the CPU cells exactly, docs/replication.md).
    if [ "${REPL:-0}" = 1 ]; then
        part repl-a configs/studies/replicate-cpu.yaml "$common;$short;$long"
        part repl-b configs/studies/replicate-cpu.yaml "$common;$short;name=replicate-cpu-lora;train.lora={r: 16, alpha: 32};train.learning_rate=1.0e-3;factors.plw=[0,0.1,1];factors.dataset=[short];exclude=[];datasets.short.limit=32;eval.limit=50"
    fi
    # The powered replication, one sweep per PLW level (each runs its seeds in order), so a run cut
    # short by the budget leaves every level with about as many seeds. Cells already in the committed
    # results are imported, not rerun (plw sweep --from-results).
    local done="--from-results=docs/results/replicate-gpu.csv;--from-items=docs/results/replicate-gpu-items.csv.gz"
    for level in ${LEVELS:-0 0.01 0.025 0.1 0.25 1}; do
        part "gpu-p$level" configs/studies/replicate-gpu.yaml "$common;$short;factors.plw=[$level];name=replicate-gpu-p$level;$done"
    done
    local pids=() names=()
    for p in "${PARTS[@]}"; do
        IFS='|' read -r name file overrides <<<"$p"
        IFS=';' read -r -a args <<<"$overrides"
        setsid $PY -m plw sweep "$file" "${args[@]}" output_dir="$STAGE/studies/$name" >"$STAGE/$name.log" 2>&1 &
        pids+=($!) names+=("$name")
    done
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$budget" ]; do
        sleep 10
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
        [ "$alive" -eq 0 ] && break
        echo "$((SECONDS - t0)) s: $alive sweeps running, $(ls "$STAGE"/studies/*/cells/*/result.json 2>/dev/null | wc -l) cells done"
    done
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    sleep 3
    pack
}

pack() {
    cd "$STAGE/studies" || return
    cp "$STAGE"/*.log . 2>/dev/null
    for d in */; do $PY -m plw results "${d%/}" -o "${d%/}/results.csv" >/dev/null 2>&1; done
    # At most 8 files come back: the CPU replication's parts together, one archive per other part.
    bundle logs *.log
    [ -d repl-a ] && bundle repl repl-*
    for d in gpu-p*/; do bundle "${d%/}" "${d%/}"; done
    tail -n 3 "$STAGE"/*.log
    ls -la "$OUT"
}

bundle() {
    local name=$1
    shift
    find "$@" \( -name 'result.json' -o -name 'cell.json' -o -name '*.jsonl' -o -name '*.metrics.json' \
            -o -name 'metrics.json' -o -name 'log_history.json' -o -name 'results.csv' -o -name 'worker.log' \
        -o -name 'error.txt' -o -name '*.log' -o -name 'results.sqlite' \) -not -path '*/model/*' -not -path '*/checkpoint-*' -print0 \
        2>/dev/null | tar --null -czf "$OUT/$name.tgz" --files-from=-
}

case "${1:-}" in
    setup) setup ;;
    run) run "${2:-480}" ;;
    *) echo "usage: $0 setup | run BUDGET_S" >&2; exit 2 ;;
esac

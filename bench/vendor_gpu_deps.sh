#!/usr/bin/env bash
# The packages bench/gpu.py needs that the GPU machine lacks, as one archive that travels with the
# working tree: bench/_vendor/site.tar.xz (git-ignored, at most 64 MiB).
#
# The GPU machine has CUDA torch, transformers, peft, accelerate, triton, statsmodels (so numpy,
# scipy, pandas), rich and typer, and no package index. Build the archive on a machine with a
# package index, the same CPU architecture and the same Python minor version as the GPU machine
# (the compiled wheels - pyarrow, pydantic-core, xxhash, sentencepiece - are per Python version):
#
#     bash bench/vendor_gpu_deps.sh [PYTHON]          # PYTHON defaults to .venv/bin/python
#
# then run `python bench/gpu.py` there with bench/_vendor carried along; gpu.py unpacks the archive
# into bench/_vendor/site-packages once and puts that folder first on sys.path (the name matters: see
# bench/gpu_env.py). Versions are pinned to those
# plw is tested with. Installed with --no-deps, so the list is the whole closure the benchmark
# imports, minus what the GPU machine has; pruned of what it never loads (pyarrow's Flight, S3,
# GCS, Azure and HDFS libraries, C++ headers and tests; lm-eval's task folders other than ARC and
# PIQA) to fit, and compressed with xz.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
OUT=bench/_vendor
LIMIT_MIB=64
PACKAGES=(
    # plw's own dependencies the GPU machine lacks
    trl==1.16.0 datasets==5.2.0 pyarrow==26.0.1 dill==0.4.1 multiprocess==0.70.19 xxhash==4.1.0
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    gguf==0.19.0 sentencepiece==0.2.3
    # lm-eval and what it imports for ARC-Easy and PIQA
    lm-eval==0.4.13 evaluate==0.4.6 sqlitedict==2.1.0 word2number==1.1 more-itertools==11.2.1
    sacrebleu==2.6.0 portalocker==4.4.2 tabulate==0.10.0 colorama==0.4.6 lxml==6.1.3
    requests==2.34.2 urllib3==2.8.0 charset-normalizer==3.5.3 certifi==2026.10.19.post1
    # the kernel libraries (CUDA only; the optional extra `gpu` of pyproject.toml pins the same)
    liger-kernel==0.8.5 cut-cross-entropy==25.1.1
)

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$PYTHON" -m pip install --quiet --no-deps --no-compile --prefer-binary --target "$build/site-packages" "${PACKAGES[@]}"

# Pruning: what bench/gpu.py never loads.
site=$build/site-packages
rm -rf "$site"/bin "$site"/pyarrow/{tests,include,src} "$site"/pyarrow/*.{pxd,pyx,pxi,h,cc}
rm -f "$site"/pyarrow/{libarrow_flight,libarrow_python_flight,libarrow_s3,libarrow_python_parquet_encryption}.so*
rm -f "$site"/pyarrow/_{flight,s3fs,gcsfs,azurefs,hdfs,pyarrow_cpp_tests,parquet_encryption,dataset_parquet_encryption}.*so
rm -f "$site"/pyarrow/libarrow_python.so "$site"/pyarrow/libarrow_python.so.*.*  # copies of .so.NNNN
find "$site"/lm_eval/tasks -mindepth 1 -maxdepth 1 -type d ! -name arc ! -name piqa -exec rm -rf {} +
find "$site" -name __pycache__ -type d -exec rm -rf {} +

mkdir -p "$OUT"
rm -rf "$OUT/site-packages" "$OUT/site.tar.xz"
tar -C "$build" -cJf "$OUT/site.tar.xz" site-packages
size=$(du -m "$OUT/site.tar.xz" | cut -f1)
echo "$OUT/site.tar.xz: ${size} MiB ($(du -sm "$site" | cut -f1) MiB unpacked), ${#PACKAGES[@]} packages"
if [ "$size" -gt "$LIMIT_MIB" ]; then
    echo "too big: the working tree may carry at most $LIMIT_MIB MiB" >&2
    exit 1
fi

#!/usr/bin/env bash
# make_image.sh CTX PROFILE TAG VENV MITTEN_SRC
# Builds, offline (no registry), the level-2 harness image that `pytest --mlperf-backend=nvidia
# --mlperf-image=TAG` runs NVIDIA's real checkout in: FROM scratch + a rootfs made here.
#   CTX/rootfs   Debian bookworm minbase (debootstrap, from deb.debian.org; made when absent)
#                + make, and the libraries CPython's extension modules link to
#   VENV         a venv whose python3 has NVIDIA's imports and mlcommons-loadgen; it and its base
#                interpreter are copied to the same paths in the image (the base's RUNPATH is
#                absolute). Use one whose libpython is not in /usr/lib/<arch>-linux-gnu: NVIDIA's
#                Makefile.build:38 puts that directory first on LD_LIBRARY_PATH (docs/conformance.md).
#   MITTEN_SRC   NVIDIA's mitten src/ (git archive a492833 src), on PYTHONPATH in the image
#   PROFILE      the kit's profiles/<PROFILE>.env: FAKE_* become the image's environment, and
#                FAKE_MEMTOTAL_KB the meminfo NVIDIA's code reads (site/sitecustomize.py)
# The kit (fakebin/, stubs/) comes from $PYTEST_MLPERF_REAL_KIT (default ../shared/tools/
# nvidia-real-harness beside the checkout); our fakes from this directory. Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CTX=${1:?context dir}; PROFILE=${2:?profile}; TAG=${3:?tag}; VENV=${4:?venv}; MITTEN=${5:?mitten src}
KIT=${PYTEST_MLPERF_REAL_KIT:-$HERE/../../../../shared/tools/nvidia-real-harness}
PF=$KIT/profiles/$PROFILE.env
[ -f "$PF" ] || { echo "no profile $PF; valid: $(ls "$KIT/profiles" | sed 's/\.env$//' | tr '\n' ' ')" >&2; exit 2; }
R=$CTX/rootfs
if [ ! -x "$R/usr/bin/make" ]; then
  debootstrap --variant=minbase \
    --include=make,libssl3,libffi8,libsqlite3-0,libbz2-1.0,libreadline8,libncursesw6,libuuid1,liblzma5,zlib1g,procps \
    bookworm "$R" http://deb.debian.org/debian
fi
VENV=$(cd "$VENV" && pwd)
BASE=$("$VENV/bin/python3" -c 'import sys; print(sys.base_prefix)')
mkdir -p "$R$BASE" "$R/opt/realnv"
rm -rf "$R$BASE" "$R/opt/realnv"/*
cp -a "$BASE" "$R$BASE"
cp -a "$VENV" "$R/opt/realnv/venv"
mkdir -p "$R/opt/realnv/kit" "$R/opt/realnv/l2"
cp -a "$KIT/fakebin" "$KIT/stubs" "$R/opt/realnv/kit/"
cp -a "$HERE/fakebin" "$HERE/site" "$HERE/fake_harness.py" "$R/opt/realnv/l2/"
cp -a "$MITTEN" "$R/opt/realnv/mitten"
"$HERE/fake_plugins.sh" "$R/opt/realnv/l2/plugins"
chmod -R a+rX "$R/opt/realnv" "$R$BASE"
. "$PF"
printf 'MemTotal:       %s kB\nMemFree:        %s kB\n' "$FAKE_MEMTOTAL_KB" "$FAKE_MEMTOTAL_KB" > "$R/opt/realnv/meminfo"
{
  echo "FROM scratch"
  echo "COPY rootfs/ /"
  echo "ENV PATH=/opt/realnv/l2/fakebin:/opt/realnv/kit/fakebin:/opt/realnv/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "ENV PYTHONPATH=/opt/realnv/l2/site:/opt/realnv/kit/stubs:/opt/realnv/mitten"
  echo "ENV REALNV_KIT_SITE=/opt/realnv/kit/stubs/sitecustomize.py REALNV_MEMINFO=/opt/realnv/meminfo REALNV_FAKES=1"
  echo "ENV REALNV_LG_MIN_DURATION_MS=${REALNV_LG_MIN_DURATION_MS:-1000} REALNV_LG_MAX_QPS=${REALNV_LG_MAX_QPS:-1000}"
  grep -E '^FAKE_[A-Z_]+=' "$PF" | sed 's/^/ENV /'
  echo "LABEL pytest-mlperf.level2-profile=$PROFILE"
} > "$CTX/Dockerfile"
python3 - "$CTX" "$TAG" <<'EOF'
import sys
import docker
ctx, tag = sys.argv[1], sys.argv[2]
image, _ = docker.from_env().images.build(path=ctx, tag=tag, rm=True)
print(f"built {tag} ({image.short_id})")
EOF

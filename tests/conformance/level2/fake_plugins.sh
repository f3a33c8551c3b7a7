#!/usr/bin/env bash
# fake_plugins.sh DEST: empty shared objects at DEST/<dir>/<lib>.so for the TensorRT plugins
# NVIDIA's 3d-unet code loads with ctypes.CDLL before building or running
# (code/plugin/plugin_map.py:39-41,54; `make build`'s build_plugins compiles the real ones with
# CUDA). TensorRT is a stub here, so a plugin that registers nothing is all that is needed.
set -euo pipefail
DEST=${1:?plugins dir}
for lib in pixelShuffle3DPlugin/libpixelshuffle3dplugin.so conv3D1X1X1K4Plugin/libconv3D1X1X1K4Plugin.so \
           conv3D3X3X3C1K32Plugin/libconv3D3X3X3C1K32Plugin.so; do
  mkdir -p "$DEST/$(dirname "$lib")"
  echo 'int realnv_fake_plugin;' | ${CC:-cc} -shared -fPIC -x c -o "$DEST/$lib" -
done

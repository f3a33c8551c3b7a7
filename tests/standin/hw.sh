#!/bin/sh
# Stand-in for the hardware tools the harness and pytest-mlperf query inside the container
# (`nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, `lscpu`), tests only; the
# hardware comes from /work/standin.conf (GPU_NAME, GPU_COUNT, CPU_NAME, CPU_SOCKETS).
GPU_NAME="STANDIN GPU"
GPU_COUNT=1
CPU_NAME="AMD EPYC 7V12 64-Core Processor"
CPU_SOCKETS=2
[ -f /work/standin.conf ] && . /work/standin.conf
case "${0##*/}" in
  nvidia-smi)
    i=0
    while [ "$i" -lt "$GPU_COUNT" ]; do
      echo "$i, $GPU_NAME, GPU-0000000$i, 550.127.05, 81559, 700.00, Disabled, 0x233010DE"
      i=$((i + 1))
    done ;;
  lscpu)
    echo "Architecture:                    x86_64"
    echo "Model name:                      $CPU_NAME"
    echo "Thread(s) per core:              2"
    echo "Core(s) per socket:              48"
    echo "Socket(s):                       $CPU_SOCKETS" ;;
esac

#!/usr/bin/env bash
# Rebuilds the examples' committed BPF objects (used when a build finds no
# clang). Needs clang and libbpf's headers (Debian: clang, libbpf-dev).
# DWARF stays in: bootstrap's `struct event` is only there, as upstream.
set -euo pipefail
cd "$(dirname "$0")"
for src in */*.bpf.c; do
	dir=$(dirname "$src")
	clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -fdebug-prefix-map="$PWD/$dir"=. \
		-I "$dir" -I/usr/include/x86_64-linux-gnu -c "$src" -o "${src%.c}.o"
done

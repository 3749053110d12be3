#!/usr/bin/env bash
# Builds the tools' BPF programs into bpf/obj/ (committed, so that building
# bpfkit needs no clang). `build.sh --check` rebuilds into a temporary
# directory and fails if a committed object differs from its source.
# Needs clang (14 or later) and libbpf's headers (Debian: clang libbpf-dev).
set -euo pipefail
cd "$(dirname "$0")"
out=obj
if [ "${1:-}" = "--check" ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
for src in *.bpf.c; do
	obj="$out/${src%.c}.o"
	clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -fdebug-prefix-map="$PWD"=. -I include -I/usr/include/x86_64-linux-gnu \
		-c "$src" -o "$obj"
	llvm-strip -g "$obj"
done
if [ "${1:-}" = "--check" ]; then
	status=0
	for obj in "$out"/*.o; do
		name=$(basename "$obj")
		if ! cmp -s "$obj" "obj/$name"; then
			echo "bpf/obj/$name is stale: run bpf/build.sh and commit the result" >&2
			status=1
		fi
	done
	[ $status -eq 0 ] && echo "bpf objects match their sources"
	exit $status
fi

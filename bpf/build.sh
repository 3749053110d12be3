#!/usr/bin/env bash
# Builds the tools' BPF programs, bpf/*.bpf.c, into bpf/obj/*.bpf.o (committed,
# so that building bpfkit needs no clang). DWARF is stripped; BTF and BTF.ext,
# which CO-RE and the loader need, stay. The output is deterministic: the same
# sources and compiler give the same bytes wherever the tree is checked out.
#
# `build.sh --check` rebuilds into a temporary directory and fails if a
# committed object differs from its source, or has no source.
#
# The objects are for x86-64 (__TARGET_ARCH_x86, x86-64 UAPI headers).
# Needs clang (14 or later), llvm-strip and libbpf's headers
# (Debian/Ubuntu: clang llvm libbpf-dev).
set -euo pipefail
cd "$(dirname "$0")"
out=obj
if [ "${1:-}" = "--check" ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
for src in *.bpf.c; do
	obj="$out/${src%.c}.o"
	clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 \
		-fdebug-prefix-map="$PWD"=. -I include -I/usr/include/x86_64-linux-gnu \
		-c "$src" -o "$obj"
	llvm-strip -g "$obj"
done
if [ "${1:-}" = "--check" ]; then
	status=0
	for obj in "$out"/*.o; do
		name=$(basename "$obj")
		if ! cmp -s "$obj" "obj/$name"; then
			echo "bpf/obj/$name is stale or missing: run bpf/build.sh and commit the result" >&2
			status=1
		fi
	done
	for obj in obj/*.o; do
		if [ ! -e "$out/$(basename "$obj")" ]; then
			echo "bpf/$obj has no source: delete it" >&2
			status=1
		fi
	done
	[ $status -eq 0 ] && echo "bpf objects match their sources"
	exit $status
fi

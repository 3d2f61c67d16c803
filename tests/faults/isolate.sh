#!/bin/sh
# Runs COMMAND as if on a host that shares no filesystem with the head node
# (DAS-5 nodes share little but the network). Meant to be started by
# `unshare -m` (a private mount namespace): the worker's own installation
# INSTALL is bound at /mnt/fgo-worker, every HIDE directory (the head's
# project, GOROOT, GOCACHE, stores and temp directories) is covered by an
# empty tmpfs, and /tmp is the installation's own tmp: a host of its own has
# a /tmp of its own, and the head's files there (its host token, its work
# directories) must not be seen, also when fgo runs from a checkout under
# /tmp. Each KEEP directory (the Python and fgo the worker runs from) is
# bound back where it was, with the HIDE directories inside it hidden again:
# whatever the worker needs must come through fgo's transfers.
#
# usage: unshare -m sh isolate.sh INSTALL HIDE... [--keep KEEP...] -- COMMAND...
# (paths without spaces)
set -eu
install=$1
shift
mount --make-rprivate /
mount -t tmpfs fgo-worker /mnt
mkdir /mnt/fgo-worker /mnt/fgo-keep
mount --bind "$install" /mnt/fgo-worker
hide=""
keep=0
mode=hide
while [ "$1" != "--" ]; do
	if [ "$1" = "--keep" ]; then
		mode=keep
	elif [ "$mode" = keep ]; then
		# bound before anything is hidden: a plain bind carries no later mount
		keep=$((keep + 1))
		mkdir "/mnt/fgo-keep/$keep"
		mount --bind "$1" "/mnt/fgo-keep/$keep"
		echo "$1" >"/mnt/fgo-keep/$keep.path"
	else
		hide="$hide $1"
		mount -t tmpfs fgo-hidden "$1"
	fi
	shift
done
shift
mkdir -p /mnt/fgo-worker/tmp
mount --bind /mnt/fgo-worker/tmp /tmp
i=0
while [ "$i" -lt "$keep" ]; do
	i=$((i + 1))
	dir=$(cat "/mnt/fgo-keep/$i.path")
	mkdir -p "$dir"
	mount --bind "/mnt/fgo-keep/$i" "$dir"
done
# a HIDE directory inside a KEEP one came back with it: hidden again
for dir in $hide; do
	i=0
	while [ "$i" -lt "$keep" ]; do
		i=$((i + 1))
		case "$dir" in "$(cat "/mnt/fgo-keep/$i.path")"/*)
			if [ -d "$dir" ]; then mount -t tmpfs fgo-hidden "$dir"; fi ;;
		esac
	done
done
exec "$@"

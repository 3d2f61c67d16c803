#!/bin/sh
# Runs COMMAND as if on a host that shares no filesystem with the head node
# (DAS-5 nodes share little but the network). Meant to be started by
# `unshare -m` (a private mount namespace): the worker's own installation
# INSTALL is bound at /mnt/fgo-worker, then every HIDE directory (the head's
# project, GOROOT, GOCACHE, stores and temp directories) is covered by an
# empty tmpfs, so whatever the worker needs must come through fgo's transfers.
#
# usage: unshare -m sh isolate.sh INSTALL HIDE... -- COMMAND...
set -eu
install=$1
shift
mount --make-rprivate /
mount -t tmpfs fgo-worker /mnt
mkdir /mnt/fgo-worker
mount --bind "$install" /mnt/fgo-worker
while [ "$1" != "--" ]; do
	mount -t tmpfs fgo-hidden "$1"
	shift
done
shift
exec "$@"

#!/bin/sh
# Runs out of sight when the tutorial opens: fetch the images the steps use,
# so that the first `docker run` does not wait for them.
set -e
docker pull busybox
docker pull nginx
touch /tmp/.docker-basics-ready

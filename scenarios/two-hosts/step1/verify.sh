#!/bin/sh
# Runs on node1: the step is done when node2 serves a page on port 80.
if ! curl -fsS --max-time 2 http://node2/ >/dev/null 2>&1; then
  echo "node1 gets no page from node2 on port 80 yet: run the docker run command on node2."
  exit 1
fi

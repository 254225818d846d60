#!/bin/sh
if ! grep -qi nginx ~/from-node2.html 2>/dev/null; then
  echo "~/from-node2.html on node1 does not hold node2's page yet: run the curl command above on node1."
  exit 1
fi

#!/bin/sh
if ! docker image inspect my-site >/dev/null 2>&1; then
  echo "There is no image named my-site yet: run the docker build command above."
  exit 1
fi

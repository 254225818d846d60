#!/bin/sh
if ! docker container inspect hello >/dev/null 2>&1; then
  echo "There is no container named hello yet: click the docker run command above."
  exit 1
fi
if ! docker logs hello 2>&1 | grep -q "Hello from a container"; then
  echo "The container hello did not print the greeting: remove it (docker rm hello) and run the command above."
  exit 1
fi

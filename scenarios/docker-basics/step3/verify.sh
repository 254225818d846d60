#!/bin/sh
if ! curl -fsS --max-time 2 http://localhost:80/ 2>/dev/null | grep -q "Hello from my-site"; then
  echo "Nothing answers with the site on port 80 yet: run the docker run -d command above."
  exit 1
fi

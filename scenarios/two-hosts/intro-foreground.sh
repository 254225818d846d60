#!/bin/sh
echo "This is $(hostname); its neighbour is node2 at $(getent hosts node2 | cut -d' ' -f1)."

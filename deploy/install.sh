#!/bin/sh
# alog-edge device installer (see README: Installing on a device). Being written: issue 14 step 3.
echo "error: install.sh: not implemented yet" >&2
exit 1

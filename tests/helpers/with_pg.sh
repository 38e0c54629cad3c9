#!/bin/sh
# `with_pg.sh COMMAND...`: run COMMAND (the test suite) with a throwaway PostgreSQL server (tests/helpers/pg.sh) whose
# URL is in RESNET_LAB_TEST_PG, stop the server afterwards whatever happened (failures, Ctrl-C), and exit with
# COMMAND's own status. Where no server can start (PostgreSQL not installed), COMMAND runs without one and the tests
# that need it are skipped with that reason.
here=$(dirname "$0")
dir=$(mktemp -d "${TMPDIR:-/tmp}/resnet_lab_pg.XXXXXX")
stop() { "$here/pg.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"; }
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
if url=$("$here/pg.sh" start "$dir"); then
    export RESNET_LAB_TEST_PG="$url"
    echo "PostgreSQL for the tests: $url"
else
    echo "PostgreSQL could not start (see above): its tests will be skipped" >&2
fi
"$@"
status=$?
stop
exit $status

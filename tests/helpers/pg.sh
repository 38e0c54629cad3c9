#!/bin/sh
# A throwaway PostgreSQL server for the tests: `pg.sh start DIR` runs initdb and pg_ctl in DIR (Debian's postgresql
# package, /usr/lib/postgresql/*/bin, or PG_BIN), as an unprivileged user when started as root (postgres cannot run
# as root: the package's `postgres` user, else a system user `resnetlab-pg` created once), listening on 127.0.0.1 on
# a free port and on a socket in DIR; it prints the URL (also kept in DIR/url). `pg.sh restart DIR` stops and starts
# it again (same data, same port), `pg.sh halt DIR` only stops it, `pg.sh stop DIR` stops it and deletes its files
# (nothing to stop is no error). Trust authentication on loopback only; durability off (fsync):
# a test database is thrown away.
set -eu
action=${1:-}; dir=${2:-}
if [ -z "$action" ] || [ -z "$dir" ]; then echo "usage: $0 start|restart|halt|stop DIR" >&2; exit 2; fi

bin=${PG_BIN:-}
if [ -z "$bin" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    if command -v initdb >/dev/null 2>&1; then bin=$(dirname "$(command -v initdb)"); else
        echo "pg.sh: no PostgreSQL server found (install Debian's postgresql package: make postgres)" >&2; exit 3
    fi
fi

as_user() {  # run a command as the server's user: ourselves, or (as root) an unprivileged one
    if [ "$(id -u)" = 0 ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi
}
pg_user=$(id -un)
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then pg_user=postgres; else
        id resnetlab-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin resnetlab-pg
        pg_user=resnetlab-pg
    fi
fi

case "$action" in
start)
    mkdir -p "$dir"
    chmod 755 "$dir"
    data="$dir/data"
    rm -rf "$data"
    mkdir "$data"
    [ "$(id -u)" = 0 ] && chown "$pg_user" "$data"
    chmod 700 "$data"
    as_user "$bin/initdb" -D "$data" -U lab --auth=trust --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_user "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start -o "-c listen_addresses=127.0.0.1 \
        -c port=$port -c unix_socket_directories=$data -c max_connections=300 -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off" >/dev/null \
        || { cat "$data/server.log" >&2; exit 1; }
    url="postgresql://lab@127.0.0.1:$port/postgres"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
restart)  # the same server (data, port) stopped and started again: connections to it break
    data="$dir/data"
    as_user "$bin/pg_ctl" -D "$data" -m fast -w -t 60 restart >/dev/null \
        || { cat "$data/server.log" >&2; exit 1; }
    ;;
halt)  # stopped, its files kept (`start` makes a new one; `restart` starts this one again)
    as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
stop)
    data="$dir/data"
    if [ -f "$data/postmaster.pid" ]; then
        as_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    fi
    rm -rf "$data" "$dir/url" "$dir/initdb.log"
    ;;
*)
    echo "usage: $0 start|restart|halt|stop DIR" >&2; exit 2
    ;;
esac

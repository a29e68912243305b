# Sourced by .ci/run: a throw-away PostgreSQL server on loopback for the
# multi-worker tests. Exports DEPTH_TUNER_TEST_POSTGRES; stops it on exit.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGPORT=54329
PGDATA=$(mktemp -d /tmp/depth-tuner-pg.XXXXXX)
chown postgres "$PGDATA"
su postgres -s /bin/sh -c "$PGBIN/initdb -D $PGDATA -A trust -U postgres" >/dev/null
su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDATA -w -l $PGDATA/server.log \
    -o \"-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1 -c max_connections=200\" start" >/dev/null
trap 'su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDATA -m fast stop" >/dev/null 2>&1 || true' EXIT
su postgres -s /bin/sh -c "$PGBIN/createdb -h 127.0.0.1 -p $PGPORT -U postgres depth_tuner_test"
export DEPTH_TUNER_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$PGPORT/depth_tuner_test"
echo "PostgreSQL for the tests: $DEPTH_TUNER_TEST_POSTGRES"

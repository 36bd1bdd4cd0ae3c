#!/bin/sh
# Run once by the postgres image's entrypoint, when it initialises an empty data directory
# (/docker-entrypoint-initdb.d). Creates the gateway's read-only login: `altdata_gateway`, in
# the group role `altdata_reader` that schema/0010_readonly_role.sql grants SELECT on the
# tables answers read. The password is the one in ALTDATA_READONLY_DATABASE_URL (Secret
# altdata-app). A data directory made before this script existed does not run it: run the
# two statements by hand, or delete the PersistentVolumeClaim of this dev database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$(cat /run/secrets/postgres/gateway-password)" <<'SQL'
CREATE ROLE altdata_reader NOLOGIN;
CREATE ROLE altdata_gateway LOGIN PASSWORD :'password' IN ROLE altdata_reader;
SQL

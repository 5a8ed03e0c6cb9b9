#!/usr/bin/env bash
# Run once by the postgres image, on its first start (an empty data volume): one role and one
# database per component, cxops_<component>, each owned by its role and closed to the others.
# The passwords come from the container's environment (<COMPONENT>_DB_PASSWORD, from .env).
# A later change of a password in .env is not applied here: ALTER ROLE it, or recreate the volume.
set -euo pipefail

for component in feedback routing scorecard journey gateway; do
  variable="${component^^}_DB_PASSWORD"
  password="${!variable:?${variable} is not set}"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    -v name="cxops_${component}" -v password="${password}" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
  echo "cxops: created role and database cxops_${component}"
done

# Sourced by `make test` and `make bench`: make sure a PostgreSQL server is reachable for
# throwaway test databases (start the local cluster if it is installed but stopped).
# Redis needs nothing here: tests start their own redis-server unless REDIS_URL is set.
_pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if [ -z "${DATABASE_URL:-}" ] && [ -z "${TEST_POSTGRES_ADMIN_URL:-}" ] && ! _pg_ready; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    if [ -n "$version" ]; then
      echo "==> starting PostgreSQL $version"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
      for _ in $(seq 1 50); do _pg_ready && break; sleep 0.2; done
      # Password auth over TCP for the throwaway databases (Debian's default pg_hba).
      runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 || true
    fi
  fi
fi
if [ -z "${DATABASE_URL:-}" ] && [ -z "${TEST_POSTGRES_ADMIN_URL:-}" ] && ! _pg_ready; then
  echo "PostgreSQL is not reachable on 127.0.0.1:5432; set DATABASE_URL or TEST_POSTGRES_ADMIN_URL" >&2
  return 1 2>/dev/null || exit 1
fi

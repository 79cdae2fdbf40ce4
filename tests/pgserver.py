"""A private PostgreSQL + PostGIS server for tests and benchmarks (real, not a mock).

``TempPostgres`` runs ``initdb`` in a temporary folder and starts ``postgres`` on a free
localhost port (as the ``postgres`` system user when the tests run as root, since PostgreSQL
refuses to run as root).  TCP connections need a password (scram-sha-256), so tests can check
what a wrong password gives.  Debian's ``postgresql-15-postgis-3`` provides the server and
PostGIS; ``.ci/run`` installs it when missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["TempPostgres", "postgres_bin_dir"]

USER = "geosvc"
PASSWORD = "geosvc-test-pw"
DB = "geosvc"


def postgres_bin_dir() -> Path | None:
    """Folder of ``initdb``/``pg_ctl`` (Debian keeps them out of PATH), or None."""
    found_on_path = shutil.which("initdb")
    if found_on_path:
        return Path(found_on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(found[0]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """Start with :meth:`start`, stop (and delete everything) with :meth:`stop`."""

    def __init__(self) -> None:
        bindir = postgres_bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found "
                               "(apt-get install postgresql-15-postgis-3)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="geosvc-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {res.stderr.strip()}")
        return res

    @property
    def uri(self) -> str:
        """URI without the password (tests pass it through PGPASSWORD, as users should)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DB}"

    def start(self) -> TempPostgres:
        """initdb, start the server, create the database with PostGIS (and pgRouting if present)."""
        pw = self.root / "pw"
        pw.write_text(PASSWORD + "\n", encoding="utf-8")
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(pw, "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER,
                  "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pw}",
                  "-E", "UTF8", "--locale=C")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.root / "log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")
        psql = str(self.bindir / "psql")
        self._run(psql, "-h", str(self.root), "-p", str(self.port), "-U", USER, "-d",
                  "postgres", "-c", f"CREATE DATABASE {DB}")
        self.sql("CREATE EXTENSION postgis")
        self.sql("CREATE EXTENSION IF NOT EXISTS pgrouting", check=False)
        return self

    def sql(self, statement: str, *, check: bool = True) -> str:
        """Run one statement through psql on the local socket; returns its output."""
        res = self._run(str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port),
                        "-U", USER, "-d", DB, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement,
                        check=check)
        return res.stdout

    def stop(self) -> None:
        """Stop the server immediately and delete its folder."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop",
                  check=False)
        shutil.rmtree(self.root, ignore_errors=True)

"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` from Debian's ``postgresql``
package, a cluster in a temporary folder, listening on a free loopback port only.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to an
unprivileged system user (Debian's ``postgres`` user where the package made one, else ``nobody``)
and every server command runs through ``runuser``. Authentication is ``trust`` on 127.0.0.1 only:
nothing beyond this machine can reach it, and it is deleted when the session ends.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "lorebase"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server programs are not installed here."""


def find_bin_dir() -> Path:
    """The newest installed server's bin folder (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    env = os.environ.get("LOREBASE_TEST_PG_BIN")
    if env:
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable("PostgreSQL is not installed (Debian package `postgresql`; `make system-deps` installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path
    user: str | None
    _dbs: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def _pg(self, tool: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(str(self.bin_dir / tool), *args), capture_output=True, text=True,
                              timeout=timeout, check=check, cwd=self.root)

    @classmethod
    def start(cls, durable: bool = False) -> PostgresServer:
        """``durable``: PostgreSQL's own defaults (fsync, synchronous commit), for benchmarks; the
        tests run without them, as nothing they write must survive a power cut."""
        bin_dir = find_bin_dir()
        user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="lorebase-pg-"))
        if user:
            u = pwd.getpwnam(user)
            os.chown(root, u.pw_uid, u.pw_gid)
        server = cls(root, 0, bin_dir, user)
        try:
            server._pg("initdb", "-D", str(server.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-sync")
            last = ""
            for _ in range(3):  # the free port may be taken between choosing and binding it
                server.port = _free_port()
                opts = (f"-p {server.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={server.root} "
                        "-c max_connections=400 -c shared_buffers=64MB")
                if not durable:
                    opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                r = server._pg("pg_ctl", "-D", str(server.data), "-l", str(server.root / "server.log"), "-w",
                               "-t", "60", "-o", opts, "start", check=False)
                if r.returncode == 0:
                    return server
                last = r.stdout + r.stderr + server.log_tail()
            raise RuntimeError(f"PostgreSQL did not start: {last}")
        except BaseException:
            server.stop()
            raise

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.root / "server.log").read_text()[-n:]
        except OSError:
            return ""

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self._dbs.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._dbs:
            self._dbs.remove(name)

    def stop(self) -> None:
        if self.data.exists() and (self.data / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

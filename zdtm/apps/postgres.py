"""PostgreSQL 15: the postmaster and its helpers (checkpointer, background
writer, WAL writer, autovacuum and logical replication launchers) running as
the postgres user, sharing its main shared memory (anonymous MAP_SHARED), a
SysV segment and POSIX dynamic shared memory.

Started as its users start it (pg_ctl start, which detaches the postmaster
into a session of its own; in ns the postmaster itself as pid 1, as
container images run it).  psql as postgres makes a table, rows and a
sequence; after the restore the rows are there, the sequence goes on, new
writes commit (through the WAL), and psql as another user (nobody, peer
authentication) reads and writes the rows it was granted.  SIGHUP reloads an
ALTER SYSTEM setting; SIGTERM (smart shutdown) removes postmaster.pid and the
socket with its lock file.
"""
import re
import signal
import subprocess
from pathlib import Path

from zdtm.harness.apps import App, AppCtx, free_port

BIN = Path("/usr/lib/postgresql/15/bin")
ROWS = 1000


class Postgres(App):
    daemon = True
    deps = (str(BIN / "postgres"), "psql")
    start_timeout = 60.0

    def prepare(self, ctx: AppCtx) -> None:
        self.port = 5432 if ctx.ns else free_port()
        for d in ("pgdata", "sock"):
            ctx.path(d).mkdir(mode=0o700 if d == "pgdata" else 0o755)
            subprocess.run(["chown", "postgres:postgres", str(ctx.path(d))], check=True)
        ctx.path("pg.log").touch()
        subprocess.run(["chown", "postgres:postgres", str(ctx.path("pg.log"))], check=True)
        ctx.client([str(BIN / "initdb"), "-D", str(ctx.path("pgdata")), "--auth-local=peer",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], user="postgres", timeout=120)
        with open(ctx.path("pgdata/postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = ''\nunix_socket_directories = '{ctx.path('sock')}'\n"
                    "autovacuum_naptime = 600\nshared_buffers = 16MB\n")

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        if pid1:
            return ctx.wrap([str(BIN / "postgres"), "-D", str(ctx.path("pgdata"))], user="postgres")
        return ctx.wrap([str(BIN / "pg_ctl"), "-D", str(ctx.path("pgdata")), "-l", str(ctx.path("pg.log")),
                         "-w", "start"], user="postgres")

    def pidfile(self, ctx: AppCtx) -> Path:
        return ctx.path("pgdata/postmaster.pid")

    def psql(self, ctx: AppCtx, sql: str, user: str = "postgres") -> str:
        return ctx.client(["psql", "-h", str(ctx.path("sock")), "-p", str(self.port), "-d", "postgres",
                           "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], user=user).strip()

    def ready(self, ctx: AppCtx) -> bool:
        return self.psql(ctx, "SELECT 1") == "1" and len(ctx.tree()) - len(self.backends(ctx)) >= 6

    def backends(self, ctx: AppCtx) -> list[int]:
        """The tree's client backends (titled 'postgres: USER DB [local] ...'), and those ended."""
        out = []
        for pid in ctx.tree():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"[local]" in title or not title:      # a backend, or one that exited (a zombie)
                out.append(pid)
        return out

    def settled(self, ctx: AppCtx) -> None:
        """psql's backend ends after psql does: wait for the tree to be the postmaster and its helpers."""
        ctx.wait(lambda: not self.backends(ctx), "the backends of finished psql sessions exit")

    def populate(self, ctx: AppCtx) -> None:
        self.psql(ctx, "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE SEQUENCE s; "
                       f"INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, {ROWS}) i; "
                       "SELECT nextval('s'), nextval('s'); CREATE ROLE nobody LOGIN; "
                       "GRANT SELECT, INSERT ON t TO nobody; CHECKPOINT")
        self.settled(ctx)

    def verify(self, ctx: AppCtx) -> None:
        got = self.psql(ctx, "SELECT count(*), sum(id) FROM t")
        ctx.check(got == f"{ROWS}|{ROWS * (ROWS + 1) // 2}", f"count and sum of t: {got}")
        ctx.check(self.psql(ctx, "SELECT nextval('s')") == "3", "the sequence goes on")
        self.psql(ctx, f"INSERT INTO t VALUES ({ROWS + 1}, 'after restore')")
        ctx.check(self.psql(ctx, f"SELECT v FROM t WHERE id = {ROWS + 1}", user="nobody") == "after restore",
                  "psql as nobody reads the new row")
        self.psql(ctx, f"INSERT INTO t VALUES ({ROWS + 2}, 'by nobody')", user="nobody")
        ctx.check(self.psql(ctx, "SELECT count(*) FROM t") == str(ROWS + 2), "nobody's row")

    def reload(self, ctx: AppCtx) -> None:
        self.psql(ctx, "ALTER SYSTEM SET work_mem = '7MB'")
        ctx.signal(signal.SIGHUP)
        ctx.wait(lambda: self.psql(ctx, "SHOW work_mem") == "7MB", "SIGHUP: postgresql.auto.conf re-read")

    def stale(self, ctx: AppCtx) -> list[Path]:
        sock = ctx.path(f"sock/.s.PGSQL.{self.port}")
        return [ctx.path("pgdata/postmaster.pid"), sock, Path(f"{sock}.lock")]

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("pg.log"), ctx.path("start.log")]

    def log_errors(self, text: str) -> list[str]:
        return [ln for ln in text.splitlines() if re.search(r"\b(WARNING|ERROR|FATAL|PANIC):", ln)]


APP = Postgres()

"""Python with threads + SQLite (WAL) + a child on a pipe: progs/kvserver.py.

State: 50 rows written through the server's own client (kvserver.py
--client), a held-open WAL with its -shm mapped shared, POSIX locks on the
database files (--file-locks), an unlinked spool file (--link-remap), the
child's running count.  After the restore: the rows, the counters, new
writes (seen by the sqlite3 command line tool too, through the -shm), a
client as another user (nobody); SIGHUP re-reads kv.conf; SIGTERM removes
the socket, pidfile, -wal and -shm.
"""
import json
from pathlib import Path

from zdtm.harness.apps import App, AppCtx

PROG = Path(__file__).with_name("progs") / "kvserver.py"
PYTHON = "/usr/bin/python3"
ROWS = 50


class KvServer(App):
    opts = ("--file-locks", "--link-remap")
    deps = (PYTHON, "sqlite3")

    def prepare(self, ctx: AppCtx) -> None:
        ctx.path("kv.conf").write_text(json.dumps({"greeting": "hello"}))

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        return [PYTHON, str(PROG), str(ctx.workdir)]

    def ask(self, ctx: AppCtx, *lines: str, user: str | None = None) -> list[str]:
        out = ctx.client([PYTHON, str(PROG), "--client", str(ctx.path("kv.sock"))], user=user,
                         input="".join(f"{ln}\n" for ln in lines))
        return out.splitlines()

    def ready(self, ctx: AppCtx) -> bool:
        return ctx.path("kv.pid").exists() and self.ask(ctx, "COUNT") == ["0"]

    def populate(self, ctx: AppCtx) -> None:
        answers = self.ask(ctx, *(f"PUT key{i} value{i}" for i in range(ROWS)), "CHILD one", "CHILD two")
        ctx.check(answers == ["OK"] * ROWS + ["ONE #1", "TWO #2"], f"populate: {answers[-3:]}")
        self.hits = int(self.ask(ctx, "HITS")[0])

    def verify(self, ctx: AppCtx) -> None:
        got = self.ask(ctx, "COUNT", "GET key7", f"GET key{ROWS - 1}", "HITS", "SPOOL", "CHILD three", "CONF")
        want = [str(ROWS), "value7", f"value{ROWS - 1}", str(self.hits + 4), str(ROWS), "THREE #3", "hello"]
        ctx.check(got == want, f"after restore: {got}, expected {want}")
        got = self.ask(ctx, "PUT late yes", "GET late", "COUNT", user="nobody")
        ctx.check(got == ["OK", "yes", str(ROWS + 1)], f"a client as nobody after restore: {got}")
        seen = ctx.client(["sqlite3", str(ctx.path("kv.db")), "SELECT v FROM kv WHERE k = 'late'"]).strip()
        ctx.check(seen == "yes", f"sqlite3 (another process, through the WAL) reads {seen!r}")

    def reload(self, ctx: AppCtx) -> None:
        ctx.path("kv.conf").write_text(json.dumps({"greeting": "reloaded"}))
        ctx.signal(1)
        ctx.wait(lambda: self.ask(ctx, "CONF") == ["reloaded"], "SIGHUP: kv.conf re-read")

    def stale(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path(n) for n in ("kv.sock", "kv.pid", "kv.db-wal", "kv.db-shm")]

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("kv.log"), ctx.path("start.log")]


APP = KvServer()

"""A Node.js HTTP server holding state (progs/kvhttp.js): keys, cookie
sessions, a request counter and a 50 ms interval timer, in V8's heap, with
libuv's thread pool and epoll.

After the restore: the keys and sessions are there (a session's visit count
goes on), the timer ticks again (the event loop runs: the hang of a
"successful" restore shows here), a client as nobody is served; SIGHUP
re-reads conf.json; SIGTERM closes the server and removes the pidfile.
"""
import json
import signal
from pathlib import Path

from zdtm.harness.apps import App, AppCtx, free_port

KEYS = 30


class Node(App):
    deps = ("node", "curl")

    def prepare(self, ctx: AppCtx) -> None:
        self.port = 8080 if ctx.ns else free_port()
        ctx.path("conf.json").write_text(json.dumps({"greeting": "hello"}))

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        # --no-memory-reducer: V8's memory reducer runs a full GC (Mark-Compact "reduce") on a
        # timer ~10 s after start, which releases and maps heap pages; when the dump and restore
        # take longer than that (a loaded machine) it ran between the two snapshots and the
        # comparison of the mappings failed.  The JVM's thread-count flags are there for the same
        # reason: what the harness compares must not change by the program's own clock.
        return ["node", "--no-memory-reducer", str(Path(__file__).with_name("progs") / "kvhttp.js"),
                str(ctx.workdir), str(self.port)]

    def get(self, ctx: AppCtx, path: str, user: str | None = None, jar: bool = False) -> str:
        cookies = ["-b", str(ctx.path("cookies")), "-c", str(ctx.path("cookies"))] if jar else []
        return ctx.client(["curl", "-sS", "--fail", *cookies, f"http://127.0.0.1:{self.port}{path}"],
                          user=user).strip()

    def stats(self, ctx: AppCtx) -> dict:
        return json.loads(self.get(ctx, "/stats"))

    def ready(self, ctx: AppCtx) -> bool:
        return ctx.path("node.pid").exists() and self.stats(ctx)["keys"] == 0

    def populate(self, ctx: AppCtx) -> None:
        for i in range(KEYS):
            ctx.check(self.get(ctx, f"/set?k=k{i}&v=v{i}") == "OK", "GET /set")
        for n in (1, 2, 3):
            got = self.get(ctx, "/session", jar=True)
            ctx.check(got == f"visit {n}", f"session: {got}")
        self.before = self.stats(ctx)

    def verify(self, ctx: AppCtx) -> None:
        ctx.check(self.get(ctx, "/get?k=k17") == "v17", "GET /get?k=k17")
        ctx.check(self.get(ctx, "/session", jar=True) == "visit 4", "the session's next visit")
        now = self.stats(ctx)
        want = {**self.before, "requests": self.before["requests"] + 3}
        ctx.check({**now, "ticks": 0} == {**want, "ticks": 0}, f"stats {now}, expected {want} (ticks aside)")
        ctx.wait(lambda: self.stats(ctx)["ticks"] > now["ticks"] + 2, "the interval timer ticks after restore")
        ctx.check(self.get(ctx, "/get?k=k3", user="nobody") == "v3", "GET as nobody")

    def reload(self, ctx: AppCtx) -> None:
        ctx.path("conf.json").write_text(json.dumps({"greeting": "reloaded"}))
        ctx.signal(signal.SIGHUP)
        ctx.wait(lambda: self.stats(ctx)["greeting"] == "reloaded", "SIGHUP: conf.json re-read")

    def stale(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("node.pid")]

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("node.log"), ctx.path("start.log")]


APP = Node()

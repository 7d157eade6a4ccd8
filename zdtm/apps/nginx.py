"""nginx: a master and two workers (as www-data) sharing the stub_status
counters in shared memory.

Started as its users start it (nginx -c CONF, which daemonizes; in ns with
daemon off as pid 1).  Before the dump, N requests through curl; after the
restore stub_status counts exactly N + 2 requests (the two status requests),
the pages are served to curl as nobody, the access log has every request.
SIGHUP reloads a changed configuration (new workers serve a new location);
SIGTERM removes the pidfile.
"""
import re
import signal
from pathlib import Path

from zdtm.harness.apps import App, AppCtx, free_port

REQUESTS = 20
CONF = """\
user www-data;
worker_processes 2;
pid {wd}/nginx.pid;
error_log {wd}/error.log notice;
daemon {daemon};
events {{ worker_connections 64; }}
http {{
    access_log {wd}/access.log;
    client_body_temp_path {wd}/tmp/body;
    proxy_temp_path {wd}/tmp/proxy;
    fastcgi_temp_path {wd}/tmp/fastcgi;
    uwsgi_temp_path {wd}/tmp/uwsgi;
    scgi_temp_path {wd}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {wd}/www;
        location /status {{ stub_status; }}
        {extra}
    }}
}}
"""


class Nginx(App):
    daemon = True
    deps = ("nginx", "curl")

    def write_conf(self, ctx: AppCtx, extra: str = "") -> None:
        ctx.path("nginx.conf").write_text(CONF.format(wd=ctx.workdir, port=self.port, extra=extra,
                                                      daemon="off" if ctx.ns else "on"))

    def prepare(self, ctx: AppCtx) -> None:
        self.port = 8080 if ctx.ns else free_port()
        (ctx.path("www")).mkdir()
        ctx.path("www/index.html").write_text("hello from nginx\n")
        ctx.path("tmp").mkdir()
        self.write_conf(ctx, 'location = /version { return 200 "first\\n"; }')

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        return ["nginx", "-e", str(ctx.path("error.log")), "-c", str(ctx.path("nginx.conf"))]

    def pidfile(self, ctx: AppCtx) -> Path:
        return ctx.path("nginx.pid")

    def get(self, ctx: AppCtx, path: str, user: str | None = None) -> str:
        return ctx.client(["curl", "-sS", "--fail", f"http://127.0.0.1:{self.port}{path}"], user=user)

    def requests(self, ctx: AppCtx) -> int:
        m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", self.get(ctx, "/status"), re.M)
        if m is None:
            ctx.fail("stub_status: no counters")
        return int(m.group(3))  # type: ignore[union-attr]

    def ready(self, ctx: AppCtx) -> bool:
        return len(ctx.tree()) == 3 and self.get(ctx, "/index.html") == "hello from nginx\n"

    def populate(self, ctx: AppCtx) -> None:
        for _ in range(REQUESTS):
            ctx.check(self.get(ctx, "/index.html") == "hello from nginx\n", "GET /index.html")
        self.counted = self.requests(ctx)

    def verify(self, ctx: AppCtx) -> None:
        got = self.requests(ctx)
        ctx.check(got == self.counted + 1, f"stub_status counts {got} requests, expected {self.counted + 1}")
        ctx.check(self.get(ctx, "/index.html", user="nobody") == "hello from nginx\n", "GET as nobody")
        # A worker writes the access-log line after the response (log phase), so
        # curl can be gone before the last line is there: wait for it, then count.
        ctx.wait(lambda: self.logged(ctx) >= REQUESTS + 2, f"access.log: {REQUESTS + 2} GET /index.html", 10.0)
        logged = self.logged(ctx)
        ctx.check(logged == REQUESTS + 2, f"access.log has {logged} GET /index.html, expected {REQUESTS + 2}")

    def logged(self, ctx: AppCtx) -> int:
        return ctx.path("access.log").read_text().count('"GET /index.html')

    def reload(self, ctx: AppCtx) -> None:
        workers = set(ctx.tree()[1:])
        self.write_conf(ctx, 'location = /version { return 200 "reloaded\\n"; }')
        ctx.signal(signal.SIGHUP)
        ctx.wait(lambda: self.get(ctx, "/version") == "reloaded\n", "SIGHUP: the new configuration served")
        ctx.wait(lambda: not workers & set(ctx.tree()), "SIGHUP: the old workers exited")

    def stale(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("nginx.pid")]

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("error.log")]

    def log_errors(self, text: str) -> list[str]:
        return [ln for ln in text.splitlines() if re.search(r"\[(error|crit|alert|emerg)\]", ln)]


APP = Nginx()

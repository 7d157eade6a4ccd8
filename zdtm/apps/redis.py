"""redis-server: keys of every kind, a TCP client connection held across the
dump (--tcp-established) in the middle of a MULTI transaction.

Started as its users start it (redis-server redis.conf, daemonize yes; in ns
in the foreground as pid 1).  After the restore: the keys and a TTL that
still runs, the held connection's name and its queued transaction (EXEC on
the same connection), redis-cli as nobody over TCP.  Redis ignores SIGHUP
(it must go on serving), its own reload is CONFIG SET; on SIGTERM it saves
dump.rdb (a save point is configured) and removes its pidfile and socket.
"""
import re
import signal
import socket
from pathlib import Path

from zdtm.harness.apps import App, AppCtx, free_port

SHUTDOWN = re.compile(r" # (User requested shutdown\.\.\.|Redis is now ready to exit, bye bye\.\.\.)$")


def resp(*words: str) -> bytes:
    return b"".join([f"*{len(words)}\r\n".encode()] + [f"${len(w)}\r\n{w}\r\n".encode() for w in words])


def read_reply(f) -> object:  # type: ignore[no-untyped-def]
    line = f.readline().rstrip(b"\r\n").decode()
    kind, rest = line[:1], line[1:]
    if kind in "+-:":
        return line
    if kind == "$":
        return None if rest == "-1" else f.read(int(rest) + 2)[:-2].decode()
    if kind == "*":
        return [read_reply(f) for _ in range(int(rest))]
    raise ValueError(f"not a RESP reply: {line!r}")


class Redis(App):
    daemon = True
    opts = ("--tcp-established",)
    deps = ("redis-server", "redis-cli")

    def prepare(self, ctx: AppCtx) -> None:
        self.port = 6379 if ctx.ns else free_port()
        ctx.path("redis.conf").write_text("\n".join([
            "bind 127.0.0.1", f"port {self.port}",
            f"unixsocket {ctx.path('redis.sock')}", "unixsocketperm 777",
            f"dir {ctx.workdir}", f"pidfile {ctx.path('redis.pid')}", f"logfile {ctx.path('redis.log')}",
            f"daemonize {'no' if ctx.ns else 'yes'}", 'save "3600 1"', "appendonly no", "",
        ]))

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        return ["redis-server", str(ctx.path("redis.conf"))]

    def pidfile(self, ctx: AppCtx) -> Path:
        return ctx.path("redis.pid")

    def cli(self, ctx: AppCtx, *args: str, user: str | None = None) -> str:
        where = ["-h", "127.0.0.1", "-p", str(self.port)] if user else ["-s", str(ctx.path("redis.sock"))]
        return ctx.client(["redis-cli", *where, *args], user=user).strip()

    def ready(self, ctx: AppCtx) -> bool:
        return self.cli(ctx, "PING") == "PONG"

    def hold(self, *words: str) -> object:
        self.held.sendall(resp(*words))
        return read_reply(self.held_f)

    def populate(self, ctx: AppCtx) -> None:
        for i in range(100):
            self.cli(ctx, "SET", f"s{i}", f"v{i}")
        self.cli(ctx, "RPUSH", "list", "a", "b", "c")
        self.cli(ctx, "HSET", "hash", "f1", "x", "f2", "y")
        self.cli(ctx, "SADD", "set", "m1", "m2", "m3")
        self.cli(ctx, "SET", "ttl", "t", "EX", "1000")
        self.held = None
        if ctx.ns:          # its peer would be left in the dumped net namespace, not the restored one
            return
        self.held = ctx.connect(socket.AF_INET, ("127.0.0.1", self.port))
        self.held_f = self.held.makefile("rb")
        ctx.check(self.hold("CLIENT", "SETNAME", "holder") == "+OK", "CLIENT SETNAME")
        ctx.check(self.hold("MULTI") == "+OK", "MULTI")
        ctx.check(self.hold("INCR", "counter") == "+QUEUED", "INCR in MULTI")

    def verify(self, ctx: AppCtx) -> None:
        ctx.check(self.cli(ctx, "DBSIZE") == "104", f"DBSIZE {self.cli(ctx, 'DBSIZE')}")
        ctx.check(self.cli(ctx, "GET", "s42") == "v42", "GET s42")
        ctx.check(self.cli(ctx, "LRANGE", "list", "0", "-1").split() == ["a", "b", "c"], "LRANGE list")
        ctx.check(self.cli(ctx, "HGET", "hash", "f2") == "y", "HGET hash f2")
        ctx.check(self.cli(ctx, "SCARD", "set") == "3", "SCARD set")
        ttl = int(self.cli(ctx, "TTL", "ttl"))
        ctx.check(900 < ttl <= 1000, f"TTL of ttl is {ttl}")
        if self.held is not None:
            ctx.check(self.hold("INCR", "counter") == "+QUEUED", "the held connection after restore")
            got = self.hold("EXEC")
            ctx.check(got == [":1", ":2"], f"EXEC on the held connection: {got}")
            ctx.check(self.hold("CLIENT", "GETNAME") == "holder", "the held connection's name")
            self.held.close()
        ctx.check(self.cli(ctx, "SET", "late", "yes", user="nobody") == "OK", "redis-cli as nobody: SET")
        ctx.check(self.cli(ctx, "INCR", "counter", user="nobody") == ("3" if self.held else "1"),
                  "redis-cli as nobody: INCR counter")

    def reload(self, ctx: AppCtx) -> None:
        ctx.signal(signal.SIGHUP)            # ignored by redis: it goes on serving
        ctx.check(self.cli(ctx, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == "OK", "CONFIG SET")
        ctx.check(self.cli(ctx, "CONFIG", "GET", "maxmemory-policy").split()[-1] == "allkeys-lru", "CONFIG GET")

    def shutdown(self, ctx: AppCtx) -> None:
        super().shutdown(ctx)
        ctx.check(ctx.path("dump.rdb").exists(), "no dump.rdb saved on SIGTERM")
        ctx.check("DB saved on disk" in ctx.path("redis.log").read_text(), "no 'DB saved on disk' in redis.log")

    def stale(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("redis.pid"), ctx.path("redis.sock")]

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("redis.log")]

    def log_errors(self, text: str) -> list[str]:
        # redis marks warnings with '#' after the time ("PID:M 02 Dec 2026 14:50:00.000 # ..."),
        # its shutdown's two notices too
        return [ln for ln in text.splitlines() if " # " in ln and not SHUTDOWN.search(ln)]


APP = Redis()

"""tmux: its server, a session whose pane runs a program on a pty (a shell
loop that counts the lines typed to it), the pane's history in the server.

Started as its users start it (tmux new-session -d, which forks the server
as a daemon; in ns the server in the foreground, tmux -D, as pid 1, and the
session made by a client).  After the restore: capture-pane shows the lines
before the dump, keys sent reach the program through the pty and its answer
comes back counting on, also from a client of another user (nobody, let in
with server-access before the dump); a new window can be made.  tmux's own signal is
SIGUSR1 (make the socket again); SIGTERM ends the server and its panes.
"""
import signal
from pathlib import Path

from zdtm.harness.apps import App, AppCtx

LOOP = 'n=0; while read -r line; do n=$((n+1)); echo "got $n: $line"; done'


class Tmux(App):
    daemon = True
    group = "terminals"         # host ptys are one shared index space (see plugin.py)
    deps = ("tmux",)

    def tmux(self, ctx: AppCtx, *args: str, user: str | None = None) -> str:
        return ctx.client(["tmux", "-S", str(ctx.path("tmux.sock")), "-f", "/dev/null", *args],
                          env={"TERM": "xterm"}, user=user)

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        base = ["tmux", "-S", str(ctx.path("tmux.sock")), "-f", "/dev/null"]
        return [*base, "-D"] if pid1 else [*base, "new-session", "-d", "-s", "main", "-x", "80", "-y", "24", LOOP]

    def root_pid(self, ctx: AppCtx) -> int | None:
        out = self.tmux(ctx, "display-message", "-p", "-t", "main", "#{pid}").strip()
        return int(out) if out.isdigit() else None

    def ready(self, ctx: AppCtx) -> bool:
        if ctx.ns and "main" not in self.tmux(ctx, "list-sessions", "-F", "#{session_name}"):
            self.tmux(ctx, "new-session", "-d", "-s", "main", "-x", "80", "-y", "24", LOOP)
        return len(ctx.tree()) == 2

    def pane(self, ctx: AppCtx) -> list[str]:
        return [ln for ln in self.tmux(ctx, "capture-pane", "-p", "-t", "main:0").splitlines() if ln.strip()]

    def type(self, ctx: AppCtx, line: str, answer: str) -> None:
        self.tmux(ctx, "send-keys", "-t", "main:0", line, "Enter")
        ctx.wait(lambda: answer in self.pane(ctx), f"the pane shows {answer!r}")

    def populate(self, ctx: AppCtx) -> None:
        for n, word in enumerate(("alpha", "beta", "gamma"), 1):
            self.type(ctx, word, f"got {n}: {word}")
        self.before = self.pane(ctx)
        self.tmux(ctx, "server-access", "-a", "-w", "nobody")   # another user may drive the session
        ctx.path("tmux.sock").chmod(0o777)

    def verify(self, ctx: AppCtx) -> None:
        ctx.check(self.pane(ctx) == self.before, f"the pane after restore: {self.pane(ctx)}")
        self.type(ctx, "delta", "got 4: delta")
        self.tmux(ctx, "send-keys", "-t", "main:0", "from nobody", "Enter", user="nobody")
        ctx.wait(lambda: "got 5: from nobody" in self.pane(ctx), "keys sent by nobody's client")
        self.tmux(ctx, "new-window", "-t", "main", "sleep 1000")
        ctx.check(len(self.tmux(ctx, "list-windows", "-t", "main").splitlines()) == 2, "a new window")

    def reload(self, ctx: AppCtx) -> None:
        ctx.path("tmux.sock").unlink()
        ctx.signal(signal.SIGUSR1)              # tmux makes its socket again
        ctx.wait(lambda: ctx.path("tmux.sock").exists(), "SIGUSR1: the socket made again")
        self.type(ctx, "epsilon", "got 6: epsilon")

    def stale(self, ctx: AppCtx) -> list[Path]:
        return []

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("start.log")]


APP = Tmux()

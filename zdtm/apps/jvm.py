"""A JVM (OpenJDK 17) running a multi-threaded program with a large heap
(progs/HeapServer.java: 256 MiB live in a 768 MiB heap, four hashing
threads, an HTTP server on a pool of four threads), with its JIT compiler
threads, G1's GC threads and its signal handlers.

Before the dump, keys through curl.  After the restore: the keys, every heap
block hashes as at start, System.gc() and jcmd GC.run leave it intact (GC
threads work), a method first called after the restore gets compiled by the
JIT (jcmd Compiler.codelist), jcmd answers (the attach listener: SIGQUIT and
a socket), SIGQUIT prints a thread dump, the hashing threads go on; curl as
nobody is served.  SIGHUP (sun.misc.Signal) re-reads conf; SIGTERM runs the
shutdown hook (pidfile removed), and the JVM removes its attach socket.
"""
import re
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

from zdtm.harness import snapshot
from zdtm.harness.apps import App, AppCtx, free_port

SOURCE = Path(__file__).with_name("progs") / "HeapServer.java"
# PerfDisableSharedMem: the perf data lives in anonymous memory, not in /tmp/hsperfdata_USER/PID,
# which any JVM starting on the host deletes while the dumped one is gone (its pid looks dead),
# so the restore found its mapped file missing; CRaC's users run with it for that reason.
# Fixed numbers of compiler and GC threads: the harness compares the thread list.
JAVA_OPTS = ["-Xms768m", "-Xmx768m", "-XX:+UseG1GC", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1",
             "-XX:-UseDynamicNumberOfCompilerThreads", "-XX:-UseDynamicNumberOfGCThreads",
             "-XX:+PerfDisableSharedMem"]
KEYS = 20


def reserved_spans(state: snapshot.TreeState) -> snapshot.TreeState:
    """The JVM reserves address space PROT_NONE and commits it piecemeal as it
    runs (metaspace for the JIT's profiles, code cache): an anonymous private
    area and the reserved (---p) remainder after it are one span here, so a
    commit the running program makes is not a change; the span, its start
    and everything else are still compared."""
    tasks = []
    for t in state.tasks:
        out: list[snapshot.Vma] = []
        for v in t.vmas:
            prev = out[-1] if out else None
            if (prev is not None and prev.end == v.start and not v.path and not prev.path and not v.inode
                    and not prev.inode and prev.perms in ("rw-p", "---p") and v.perms == "---p"):
                out[-1] = replace(prev, end=v.end, perms="rw-p/---p", vmflags="")
            else:
                out.append(v)
        tasks.append(replace(t, vmas=tuple(out)))
    return snapshot.TreeState(tuple(tasks))


class Jvm(App):
    deps = ("java", "javac", "jcmd", "curl")
    start_timeout = 60.0

    def prepare(self, ctx: AppCtx) -> None:
        self.port = 8080 if ctx.ns else free_port()
        ctx.path("conf").write_text("hello\n")
        ctx.path("classes").mkdir()
        subprocess.run(["javac", "-nowarn", "-XDignore.symbol.file", "-d", str(ctx.path("classes")), str(SOURCE)],
                       check=True, capture_output=True, timeout=120)

    def command(self, ctx: AppCtx, pid1: bool) -> list[str]:
        return ["java", *JAVA_OPTS, "-cp", str(ctx.path("classes")), "HeapServer", str(ctx.workdir), str(self.port)]

    def get(self, ctx: AppCtx, path: str, user: str | None = None) -> str:
        return ctx.client(["curl", "-sS", "--fail", f"http://127.0.0.1:{self.port}{path}"], user=user,
                          timeout=60).strip()

    def jcmd(self, ctx: AppCtx, *args: str) -> str:
        pid = str(ctx.pid) if not ctx.ns else "1"
        argv = ["jcmd", pid, *args]
        if ctx.ns:        # attach from inside its pid and mount namespaces (the socket is in its /tmp)
            argv = ["nsenter", f"--target={ctx.pid}", "--pid", "--mount", "--", *argv]
        return ctx.client(argv, timeout=60)

    def stats(self, ctx: AppCtx) -> dict[str, str]:
        return dict(w.split("=", 1) for w in self.get(ctx, "/stats").split())

    def ready(self, ctx: AppCtx) -> bool:
        return ctx.path("jvm.pid").exists() and self.get(ctx, "/check") == "OK"

    def populate(self, ctx: AppCtx) -> None:
        for i in range(KEYS):
            ctx.check(self.get(ctx, f"/put?k=k{i}&v=v{i}") == "OK", "/put")
        self.before = self.stats(ctx)
        self.compiled = -1
        ctx.wait(lambda: self.jit_quiet(ctx), "the JIT settles (nothing queued, nothing new compiled)", timeout=90)

    def jit_quiet(self, ctx: AppCtx) -> bool:
        """The JIT's profiling and compiling allocate metadata (metaspace) and code
        cache as the hot loops warm up: the state to compare is the one after."""
        queued = [ln for ln in self.jcmd(ctx, "Compiler.queue").splitlines() if re.match(r"\s*\d+\s", ln)]
        compiled = len(self.jcmd(ctx, "Compiler.codelist").splitlines())
        quiet, self.compiled = not queued and compiled == self.compiled, compiled
        return quiet

    def verify(self, ctx: AppCtx) -> None:
        ctx.check(self.get(ctx, "/get?k=k11") == "v11", "/get?k=k11")
        ctx.check(self.get(ctx, "/check") == "OK", "the heap blocks after restore")
        ctx.check(self.get(ctx, "/gc") == "OK", "the heap blocks after System.gc()")
        ctx.check("Command executed successfully" in self.jcmd(ctx, "GC.run"), "jcmd GC.run")
        ctx.check(self.get(ctx, "/check") == "OK", "the heap blocks after jcmd GC.run")
        for _ in range(40):
            self.get(ctx, "/hot?n=200000")
        ctx.wait(lambda: "HeapServer.hot(J)J" in self.jcmd(ctx, "Compiler.codelist"),
                 "the JIT compiles a method first called after the restore", timeout=60)
        hashed = int(self.stats(ctx)["hashed"])
        ctx.wait(lambda: int(self.stats(ctx)["hashed"]) > hashed + 8, "the hashing threads go on")
        log = ctx.path("start.log")
        mark = log.stat().st_size
        ctx.signal(signal.SIGQUIT)
        ctx.wait(lambda: "Full thread dump" in log.read_text()[mark:], "SIGQUIT: a thread dump")
        ctx.check(self.get(ctx, "/get?k=k3", user="nobody") == "v3", "curl as nobody")
        now = self.stats(ctx)
        ctx.check(now["keys"] == self.before["keys"], f"keys: {now['keys']}")

    def reload(self, ctx: AppCtx) -> None:
        ctx.path("conf").write_text("reloaded\n")
        ctx.signal(signal.SIGHUP)
        ctx.wait(lambda: self.stats(ctx)["greeting"] == "reloaded", "SIGHUP: conf re-read")

    def normalise(self, state: snapshot.TreeState) -> snapshot.TreeState:
        return reserved_spans(state)

    def shutdown(self, ctx: AppCtx) -> None:
        # the attach listener's socket, made at jcmd's first attach; its /tmp is the host's
        # (the ns flavor's mount namespace is a copy)
        self.attach = Path(f"/tmp/.java_pid{1 if ctx.ns else ctx.pid}")
        ctx.check(self.attach.exists(), f"no {self.attach} while the JVM runs")
        super().shutdown(ctx)

    def stale(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("jvm.pid"), self.attach]

    def logs(self, ctx: AppCtx) -> list[Path]:
        return [ctx.path("jvm.log"), ctx.path("start.log")]

    def log_errors(self, text: str) -> list[str]:
        return [ln for ln in text.splitlines() if re.search(r"\b(error|Exception|SIGSEGV|hs_err)\b", ln)]


APP = Jvm()

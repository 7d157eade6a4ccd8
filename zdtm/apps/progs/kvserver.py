#!/usr/bin/python3
"""A small threaded key-value server on SQLite (WAL), the program of zdtm/apps/pysqlite.py.

    kvserver.py DIR            serve: DIR/kv.sock, DIR/kv.db, DIR/kv.conf, DIR/kv.log, DIR/kv.pid
    kvserver.py --client SOCK  send each line of stdin, print each answer

Threads: the main one accepts (and reacts to signals), one per client, one
writer that owns the write connection (each client thread reads through its
own connection, as WAL allows).  A child process on a pair of pipes echoes
lines back upper-cased with its running count.  A spool of every PUT is kept
in an unlinked temporary file.  SIGHUP re-reads kv.conf; SIGTERM closes the
database (the last close checkpoints the WAL and removes -wal and -shm), lets
the child end, removes the socket and the pidfile.
"""
import json
import os
import queue
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading

CHILD = r"""
import sys
n = 0
for line in sys.stdin:
    n += 1
    sys.stdout.write(f"{line.strip().upper()} #{n}\n")
    sys.stdout.flush()
"""


class Server:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.log_file = open(os.path.join(d, "kv.log"), "a", buffering=1)
        self.conf = {}
        self.read_conf()
        self.db_path = os.path.join(d, "kv.db")
        self.writes: queue.Queue = queue.Queue()
        self.hits = 0
        self.lock = threading.Lock()
        self.spool = tempfile.TemporaryFile(dir=d)
        db = sqlite3.connect(self.db_path, check_same_thread=False)   # the writer thread's, closed by main
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
        db.commit()
        self.writer_db = db
        self.child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, bufsize=1)
        self.child_lock = threading.Lock()
        threading.Thread(target=self.writer, name="writer", daemon=True).start()

    def log(self, msg: str) -> None:
        self.log_file.write(f"kvserver[{os.getpid()}]: {msg}\n")

    def read_conf(self) -> None:
        try:
            with open(os.path.join(self.dir, "kv.conf")) as f:
                self.conf = json.load(f)
        except (OSError, ValueError) as e:
            self.log(f"error: kv.conf: {e}")

    def writer(self) -> None:
        while True:
            k, v, done = self.writes.get()
            self.writer_db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, v))
            self.writer_db.commit()
            done.set()

    def answer(self, line: str, db: sqlite3.Connection) -> str:
        cmd, _, rest = line.partition(" ")
        with self.lock:
            self.hits += 1
        if cmd == "PUT":
            k, _, v = rest.partition(" ")
            done = threading.Event()
            self.writes.put((k, v, done))
            done.wait()
            self.spool.write(f"{k}={v}\n".encode())
            self.spool.flush()
            return "OK"
        if cmd == "GET":
            row = db.execute("SELECT v FROM kv WHERE k = ?", (rest,)).fetchone()
            return row[0] if row else "NONE"
        if cmd == "COUNT":
            return str(db.execute("SELECT count(*) FROM kv").fetchone()[0])
        if cmd == "CHILD":
            with self.child_lock:
                self.child.stdin.write(rest + "\n")
                self.child.stdin.flush()
                return self.child.stdout.readline().strip()
        if cmd == "HITS":
            return str(self.hits)
        if cmd == "CONF":
            return str(self.conf.get("greeting"))
        if cmd == "SPOOL":
            self.spool.seek(0)
            data = self.spool.read()
            return str(data.count(b"\n"))
        if cmd == "THREADS":
            return str(threading.active_count())
        return "ERR unknown command"

    def client(self, conn: socket.socket) -> None:
        db = sqlite3.connect(self.db_path)
        with conn, conn.makefile("rw", buffering=1) as f:
            for line in f:
                f.write(self.answer(line.strip(), db) + "\n")
                f.flush()
        db.close()

    def serve(self) -> None:
        sock_path = os.path.join(self.dir, "kv.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(sock_path)
        os.chmod(sock_path, 0o666)        # other users are clients too
        lsock.listen(16)
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        flags = {"hup": False, "term": False}
        signal.signal(signal.SIGHUP, lambda *_: flags.update(hup=True))
        signal.signal(signal.SIGTERM, lambda *_: flags.update(term=True))
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ)
        sel.register(wake_r, selectors.EVENT_READ)
        with open(os.path.join(self.dir, "kv.pid.tmp"), "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(os.path.join(self.dir, "kv.pid.tmp"), os.path.join(self.dir, "kv.pid"))
        self.log("ready")
        while not flags["term"]:
            for key, _ in sel.select():
                if key.fileobj is lsock:
                    conn, _ = lsock.accept()
                    threading.Thread(target=self.client, args=(conn,), name="client", daemon=True).start()
                else:
                    wake_r.recv(64)
            if flags["hup"]:
                flags["hup"] = False
                self.read_conf()
                self.log(f"reloaded kv.conf: greeting {self.conf.get('greeting')!r}")
        self.log("shutting down")
        self.writer_db.close()
        self.child.stdin.close()
        self.child.wait()
        os.unlink(sock_path)
        os.unlink(os.path.join(self.dir, "kv.pid"))
        self.log("clean shutdown")


def client(path: str) -> int:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rw", buffering=1)
    for line in sys.stdin:
        f.write(line.strip() + "\n")
        f.flush()
        print(f.readline().strip(), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--client":
        sys.exit(client(sys.argv[2]))
    Server(sys.argv[1]).serve()

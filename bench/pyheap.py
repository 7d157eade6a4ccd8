"""A Python interpreter with a heap of MIB MiB, for bench/dump_restore.py.

    python -I -S bench/pyheap.py DIR MIB

The same protocol as bench/workload.c: sets up, creates DIR/ready, then
SIGUSR1 rewrites 1% of the blobs (and creates DIR/changed-G), SIGUSR2
checks every object and writes "OK" or "FAIL <why>" to DIR/verdict.
Half the heap is bytes blobs of 4 KiB, half an object graph (a dict of
small tuples of ints and strings): what a real interpreter's heap holds.
"""
import os
import signal
import sys

BLOB = 4096


def blob(i: int, gen: int) -> bytes:
    return i.to_bytes(8, "little") + bytes([(i + gen) & 0xFF]) * (BLOB - 8)


def main() -> None:
    wdir, mib = sys.argv[1], int(sys.argv[2])
    nblobs = (mib << 20) // 2 // BLOB
    blobs = [blob(i, 0) for i in range(nblobs)]
    gens = [0] * nblobs
    # a tuple of 2 ints and a short str, with its dict slot: ~220 bytes in RSS
    nobjs = (mib << 20) // 2 // 220
    graph = {i: (i, i * 3, str(i)) for i in range(nobjs)}
    state = {"gen": 0, "change": False, "verify": False}

    def touch(name: str) -> None:
        tmp = os.path.join(wdir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(state.get("text", ""))
        os.rename(tmp, os.path.join(wdir, name))

    def check() -> str | None:
        for i, b in enumerate(blobs):
            if b != blob(i, gens[i]):
                return f"blob {i} is wrong"
        if len(graph) != nobjs:
            return f"{len(graph)} objects, not {nobjs}"
        for i, v in graph.items():
            if v != (i, i * 3, str(i)):
                return f"object {i} is wrong"
        return None

    signal.signal(signal.SIGUSR1, lambda s, f: state.update(change=True))
    signal.signal(signal.SIGUSR2, lambda s, f: state.update(verify=True))
    touch("ready")
    while True:
        signal.pause()
        if state["change"]:
            state["change"] = False
            state["gen"] += 1
            for i in range(0, nblobs, 100):
                gens[i] = state["gen"]
                blobs[i] = blob(i, gens[i])
            touch(f"changed-{state['gen']}")
        if state["verify"]:
            state["verify"] = False
            why = check()
            state["text"] = f"FAIL {why}\n" if why else "OK\n"
            touch("verdict")


if __name__ == "__main__":
    main()

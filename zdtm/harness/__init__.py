"""The zdtm harness: a pytest plugin of small parts.

    layout    where things live (repo, scenarios, work dirs)
    desc      a scenario and its NAME.desc
    flavors   the environments a scenario runs in (h, ns, uns)
    nslaunch  the launcher script: a scenario as pid 1 of new namespaces
    features  kernel feature probes behind a desc's ``feature`` key
    build     ``make -C zdtm`` and ``make -C plugins`` once per process, under a file lock
    external  --zdtm-static=DIR: another directory's tests (CRIU's library or refcr's)
    procs     subreaper, waiting, reaping and killing processes
    snapshot  the visible state of a process tree, normalised, and its diff
    ownfiles  the test's own output file's offset out of the comparison
    runner    one scenario: start -> dump -> restore -> verify, step by step
    peers     peer daemons outside the dumped tree (.desc ``peer``, ``peer_netns``)
    cropts    run-time options, inherited fds and refusals (WORKDIR/cr-opts.json)
    shelljob  a shell's job on a pexpect pty, restored onto a new one (flag ``shell_job``)
    report    log tails for failure reports, the required-scenarios check
    plugin    the pytest nodes and hooks (wired in by zdtm/conftest.py)

Parallel runs (``pytest -n auto zdtm``).  Every item has its own work dir
(``work/FLAVOR/NAME``, locked across sessions) and every pytest-xdist worker is
its own child subreaper that only waits for pids it started, so items never
see each other's files or children.  In ``ns``/``uns`` the tree has its own
PID namespace: its inner pids cannot collide with anything.  In ``h`` the
restore needs the original pids back, and they are only free between the
dump's kill and the restore's clone3 (about a second).  Linux hands out pids in
increasing order and wraps around only at pid_max (32768 here, 4194304 on big
machines), so another item (or anything else on the machine) can be given one
of those pids only if the counter wraps all the way round within that second,
i.e. tens of thousands of forks per second; a concurrent restore cannot ask for
them either, because two items never held the same pid without such a wrap
in between.  Should it happen anyway, clone3 fails with EEXIST and the item
fails at its 'restore' step with refcr's message; a collision never yields a
wrong restore.
"""

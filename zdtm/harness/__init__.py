"""The zdtm harness: a pytest plugin of small parts.

    layout    where things live (repo, scenarios, work dirs)
    desc      a scenario and its NAME.desc
    flavors   the environments a scenario runs in (h, later ns/uns)
    features  kernel feature probes behind a desc's ``feature`` key
    build     ``make -C zdtm`` once per process, under a file lock
    procs     subreaper, waiting, reaping and killing processes
    snapshot  the visible state of a process tree, normalised, and its diff
    runner    one scenario: start -> dump -> restore -> verify, step by step
    report    log tails for failure reports, the required-scenarios check
    plugin    the pytest nodes and hooks (wired in by zdtm/conftest.py)
"""

"""The sizes of an aio ring, as the kernel makes it (fs/aio.c aio_setup_ring):
shared by the image checker and mm/aio.py, which dumps and restores the
rings.  A ring is a header the size of one event, then 32-byte io_events,
in whole pages."""
from __future__ import annotations

PAGE = 4096
EVENT_SIZE = 32                         # struct io_event: data obj res res2
EVENTS_PER_PAGE = PAGE // EVENT_SIZE    # the header takes the room of one event


def ring_nr(length: int) -> int:
    """Events a ring of `length` bytes holds (the kernel's nr_events)."""
    return length // EVENT_SIZE - 1


def ring_pages(nr_req: int, cpus: int = 0) -> int:
    """Pages of the ring io_setup(nr_req) makes with `cpus` possible CPUs."""
    return -(-EVENT_SIZE * (2 * max(nr_req, 4 * cpus) + 3) // PAGE)


def nr_req_for(length: int) -> int:
    """The smallest io_setup() argument whose ring is `length` bytes long."""
    pages = length // PAGE
    return max(1, (EVENTS_PER_PAGE * (pages - 1) - 3) // 2 + 1)

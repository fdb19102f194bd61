"""Telemetry ring buffer: fixed records in one preallocated buffer, single producer, single consumer.

The buffer is a header then ``capacity`` records (``RECORD``); it may be ordinary memory or
``multiprocessing.shared_memory``, so a second process can drain it. Kernels take the whole buffer as float64 words
(``RING_TYPE``) and open it with ``open_ring`` (magic, record size, a power-of-two capacity whose records fill the
buffer exactly); anything else gets BAD_STATE (``-BAD_STATE`` from a drain) and is left untouched. The header keeps the
producer's counters (``head``: records written, ``dropped``) and the consumer's (``tail``: records read, ``overrun``) on
separate cache lines; each side writes only its own.

Record ``n`` goes to slot ``n & (capacity - 1)``. Its ``seq`` is ``2n + 1`` while the producer writes it and ``2n + 2``
once written; the producer publishes ``head = n + 1`` after that. The consumer reads ``seq``, the fields, then ``seq``
again: unless both equal ``2n + 2`` the record was overwritten under it, and it is counted lost, never returned.

Policies, chosen at creation: ``OVERWRITE`` (the producer never waits; records the consumer did not read in time are
overwritten and the consumer counts them in ``overrun``) and ``DROP_NEWEST`` (a push into a full ring is refused and
counted in ``dropped``). Either way ``written == read + dropped + overrun + (records still in the ring)``.
"""

import numba
import numpy as np
from numba import types as t

from ._jit import acquire_fence, borrow, kernel, release_fence, view_at
from ._status import BAD_STATE, DROPPED, OK

OVERWRITE = 0
DROP_NEWEST = 1


# record flags (the ``flags`` field); bits 16 and up are free for the caller
SAMPLE = 0  # a measured value
DRIFT_EVENT = 1 << 0  # a drift detector fired on ``metric``; ``value`` is the detector's statistic
REOPENED_EVENT = 1 << 1  # a tuner re-opened exploration after drift on ``metric``

RECORD = np.dtype([
    ("seq", np.uint64),  # 2n + 2 once record n is complete (see module docstring)
    ("step", np.int64),  # the caller's step or timestamp
    ("value", np.float64),
    ("generation", np.int64),  # config generation the value was measured under
    ("metric", np.int32),
    ("variant", np.int32),
    ("flags", np.int64),
], align=True)
RECORD_WORDS = RECORD.itemsize // 8  # every ring record type: this many 8-byte words, ``seq`` first

MAGIC = 0x6172716F6E5F5231  # "arqon_R1"

RING_HEADER = np.dtype({
    "names": ["magic", "capacity", "policy", "record_bytes", "head", "dropped", "tail", "overrun", "torn"],
    "formats": [np.int64] * 9,
    # producer line at 64, consumer line at 128: neither side's writes invalidate the other's line
    "offsets": [0, 8, 16, 24, 64, 72, 128, 136, 144],
    "itemsize": 192,
}, align=True)
RING_HEADER_BYTES = RING_HEADER.itemsize
RING_HEADER_WORDS = RING_HEADER_BYTES // 8
MAX_CAPACITY = 1 << 40
RING_TYPE = numba.float64[::1]  # a ring as the kernels take it: the whole buffer, header and records, as words
RING_HEADER_TYPE = numba.from_dtype(RING_HEADER)[::1]  # its header, as the helpers take it once the ring is open
RECORDS_TYPE = numba.from_dtype(RECORD)[::1]


def ring_bytes(capacity):
    """Size in bytes of a ring holding ``capacity`` records."""
    return RING_HEADER_BYTES + capacity * RECORD.itemsize


def init_ring(buffer, capacity, policy):
    """Lay a ring of ``capacity`` records (a power of two) over ``buffer`` (a writable, zeroed, 8-byte aligned uint8
    array of ``ring_bytes(capacity)`` bytes). Returns: the ring, the whole buffer as float64 words."""
    ring = buffer[:ring_bytes(capacity)].view(np.float64)
    h = ring[:RING_HEADER_WORDS].view(RING_HEADER)[0]
    h["capacity"], h["policy"], h["record_bytes"], h["magic"] = capacity, policy, RECORD.itemsize, MAGIC
    return ring


def attach_ring(buffer):
    """The ring already laid over ``buffer`` (as ``init_ring`` returns it), or None if ``buffer`` holds no ring."""
    if buffer.nbytes < RING_HEADER_BYTES:
        return None
    capacity = int(buffer[:RING_HEADER_BYTES].view(RING_HEADER)[0]["capacity"])
    if not 1 <= capacity <= MAX_CAPACITY or buffer.nbytes < ring_bytes(capacity):
        return None
    ring = buffer[:ring_bytes(capacity)].view(np.float64)
    return ring if open_ring(ring) == OK else None


def ring_header(ring):
    """The header record of ``ring`` (its counters), for Python readers."""
    return ring[:RING_HEADER_WORDS].view(RING_HEADER)


@kernel(t.int64(RING_TYPE), inline=True)
def open_ring(ring):
    """OK when ``ring`` is a whole ring: magic, record size, a power-of-two capacity whose records fill the buffer;
    else BAD_STATE. Reads: the header. Allocates: nothing."""
    n = ring.shape[0]
    if n < RING_HEADER_WORDS:
        return BAD_STATE
    g = view_at(ring.ctypes.data, 1, RING_HEADER)[0]
    capacity = g["capacity"]
    bad = (g["magic"] != MAGIC) | (g["record_bytes"] != RECORD_WORDS * 8) | (capacity < 1)
    bad |= (capacity > MAX_CAPACITY) | ((capacity & (capacity - 1)) != 0)
    if bad or RING_HEADER_WORDS + capacity * RECORD_WORDS != n:
        return BAD_STATE
    return OK


@numba.njit(inline="always")
def ring_header_of(ring):
    """The header of an opened ring, not reference-counted."""
    return view_at(ring.ctypes.data, 1, RING_HEADER)


@numba.njit(inline="always")
def slots(ring, dtype):
    """The ring's records viewed as ``dtype`` (RECORD, or another record type of RECORD_WORDS words with ``seq``
    first), in slot order, not reference-counted."""
    return view_at(ring.ctypes.data + RING_HEADER_BYTES, ring[0]["capacity"], dtype)


@numba.njit(inline="always")
def _words(address, n):
    """n records at ``address`` as (n, RECORD_WORDS) uint64 words, whatever their field names."""
    return view_at(address, (n, RECORD_WORDS), np.uint64)


@kernel(t.int64(RING_HEADER_TYPE), inline=True)
def begin_record(ring):
    """Claim the slot of the next record and mark it being written (seq odd): the first half of every push.
    Returns: the slot, or -1 when DROP_NEWEST refuses (counted in ``dropped``). Allocates: nothing."""
    g = borrow(ring)[0]
    n = g["head"]
    if g["policy"] == DROP_NEWEST and n - g["tail"] >= g["capacity"]:
        g["dropped"] += 1
        return -1
    slot = n & (g["capacity"] - 1)
    _words(ring.ctypes.data + RING_HEADER_BYTES, g["capacity"])[slot, 0] = np.uint64(2 * n + 1)
    release_fence()
    return slot


@kernel(t.void(RING_HEADER_TYPE, t.int64), inline=True)
def end_record(ring, slot):
    """Publish the record written into ``slot`` (seq even, then head): the second half of every push."""
    g = borrow(ring)[0]
    n = g["head"]
    release_fence()
    _words(ring.ctypes.data + RING_HEADER_BYTES, g["capacity"])[slot, 0] = np.uint64(2 * n + 2)
    release_fence()
    g["head"] = n + 1


@kernel(t.int64(RING_HEADER_TYPE, t.int64, t.int64, t.float64, t.int64, t.int64, t.int64), inline=True)
def push_record(ring, step, metric, value, generation, variant, flags):
    """``ring_push`` on the header of a ring its caller opened (``open_ring``), so a kernel that pushes several
    records checks the ring once. Mutates: one slot, head (or dropped). Allocates: nothing. Returns: OK or DROPPED."""
    slot = begin_record(ring)
    if slot < 0:
        return DROPPED
    r = slots(ring, RECORD)
    r[slot]["step"] = step
    r[slot]["value"] = value
    r[slot]["generation"] = generation
    r[slot]["metric"] = np.int32(metric)
    r[slot]["variant"] = np.int32(variant)
    r[slot]["flags"] = flags
    end_record(ring, slot)
    return OK


@kernel(t.int64(RING_TYPE, t.int64, t.int64, t.float64, t.int64, t.int64, t.int64), inline=True)
def ring_push(ring, step, metric, value, generation, variant, flags):
    """Append one telemetry record. Mutates: one slot, head (or dropped). Allocates: nothing.
    Returns: OK, DROPPED when the ring is full under DROP_NEWEST (nothing written), or BAD_STATE (nothing touched)
    for a buffer ``open_ring`` refuses."""
    if open_ring(ring) != OK:
        return BAD_STATE
    return push_record(ring_header_of(ring), step, metric, value, generation, variant, flags)


def _drain(ring, out):
    """Move up to ``len(out)`` unread records, oldest first, into ``out``. Records overwritten before or while they
    were read are skipped and counted in ``overrun`` (those caught mid-read also in ``torn``). Copies words, so it
    serves every record type of RECORD_WORDS words with ``seq`` first. ``ring`` is what the reader mapped: a header
    whose magic, record size or capacity no longer fit it (e.g. another process overwrote it) is refused.
    Mutates: out, tail, overrun, torn. Allocates: nothing.
    Returns: the number of records written to ``out``, or -BAD_STATE (nothing read or written)."""
    if open_ring(ring) != OK:
        return -BAD_STATE
    h = ring_header_of(ring)
    g = h[0]
    capacity = g["capacity"]
    head = g["head"]
    acquire_fence()
    tail = g["tail"]
    if head - tail > capacity:  # lapped: the oldest unread records are gone
        g["overrun"] += head - tail - capacity
        tail = head - capacity
    r = _words(h.ctypes.data + RING_HEADER_BYTES, capacity)
    o = _words(out.ctypes.data, out.shape[0])
    count = 0
    while tail < head and count < o.shape[0]:
        slot = tail & (capacity - 1)
        expected = np.uint64(2 * tail + 2)
        first = r[slot, 0]
        acquire_fence()
        for w in range(1, RECORD_WORDS):
            o[count, w] = r[slot, w]
        acquire_fence()
        second = r[slot, 0]
        if first == expected and second == expected:
            o[count, 0] = expected
            count += 1
        else:
            g["overrun"] += 1
            g["torn"] += 1
        tail += 1
    release_fence()
    g["tail"] = tail
    return count


ring_drain = kernel(t.int64(RING_TYPE, RECORDS_TYPE))(_drain)
ring_drain.__doc__ = _drain.__doc__

"""Ring buffer: a model-based property test of push/drain and the counters, and a cross-process test through
shared memory that checks every record read is whole and every record written is read or counted lost."""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arqon
from arqon.kernels import ring

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@given(capacity_log=st.integers(1, 6), policy=st.sampled_from(["overwrite", "drop_newest"]),
       ops=st.lists(st.tuples(st.booleans(), st.integers(0, 80)), max_size=60))
@settings(max_examples=300, deadline=None)
def test_push_and_drain_follow_the_model(capacity_log, policy, ops):
    capacity = 1 << capacity_log
    r = arqon.Ring(capacity, policy)
    written, model_tail, model_lost, model_dropped, accepted = 0, 0, 0, 0, []  # accepted: steps in the ring's order
    for is_push, k in ops:
        if is_push:
            for _ in range(k):
                step = written + model_dropped
                status = r.push(3, step * 0.5, step=step, generation=step // 7, variant=step % 5, flags=1 << 16)
                if policy == "drop_newest" and written - model_tail >= capacity:
                    assert status == arqon.Status.DROPPED
                    model_dropped += 1
                else:
                    assert status == arqon.Status.OK
                    accepted.append(step)
                    written += 1
        else:
            out = np.zeros(k, ring.RECORD)
            got = r.drain(out)
            if written - model_tail > capacity:
                model_lost += written - model_tail - capacity
                model_tail = written - capacity
            expected = accepted[model_tail:model_tail + k]
            model_tail += len(expected)
            assert got["step"].tolist() == expected
            assert got["value"].tolist() == [s * 0.5 for s in expected]
            assert got["generation"].tolist() == [s // 7 for s in expected]
            assert got["variant"].tolist() == [s % 5 for s in expected]
            assert set(got["metric"].tolist()) <= {3} and set(got["flags"].tolist()) <= {1 << 16}
    c = r.counters()
    assert c["written"] == written and c["dropped"] == model_dropped
    assert c["read"] + c["overrun"] + c["pending"] == written
    assert c["overrun"] >= model_lost and c["torn"] == 0


def test_attach_rejects_what_is_not_a_ring():
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        with pytest.raises(ValueError, match="does not hold an arqon ring"):
            arqon.Ring.attach(shm.name)
    finally:
        shm.close()
        shm.unlink()
    with pytest.raises(ValueError, match="no shared-memory ring"):
        arqon.Ring.attach("arqon-no-such-ring")


@pytest.mark.parametrize("capacity,policy", [(3, "overwrite"), (0, "overwrite"), (1024, "newest")])
def test_bad_ring_options_are_clear_errors(capacity, policy):
    with pytest.raises(arqon.ConfigError, match="capacity|policy"):
        arqon.Ring(capacity, policy)


_WRITER = """
    import sys, numba, numpy as np
    import arqon
    from arqon.kernels.ring import ring_push

    @numba.njit
    def write(header, start, stop, pace):
        work = 0.0
        for i in range(start, stop):
            for _ in range(pace):  # a little work per record (a chain of dependent multiply-adds), like a producer's
                work = work * 0.999 + 1.0
            ring_push(header, i, i % 7, i * 0.5 + 1.0, i >> 10, i % 3, i & 0xFFFF)
        return work

    r = arqon.Ring.attach(sys.argv[1])
    write(r.state, 0, 1000, 0)  # compile before the reader starts counting: these 1000 are part of the stream too
    print("ready", flush=True)
    sys.stdin.readline()
    write(r.state, 1000, int(sys.argv[2]), int(sys.argv[3]))
    r.close()
"""


@numba.njit
def _check(records, n, next_step):
    """Check the n records: whole (fields agree with their step), in order. Returns (torn, next expected step or
    the first out-of-order step)."""
    torn = 0
    for k in range(n):
        s = records[k]["step"]
        if s < next_step:
            return torn, -1 - s  # out of order or repeated
        if (records[k]["value"] != s * 0.5 + 1.0 or records[k]["metric"] != s % 7 or records[k]["generation"] != s >> 10
                or records[k]["variant"] != s % 3 or records[k]["flags"] != (s & 0xFFFF)):
            torn += 1
        next_step = s + 1
    return torn, next_step


@pytest.mark.parametrize("policy,pace", [("overwrite", 0), ("overwrite", 3), ("drop_newest", 3)])
def test_cross_process_stream_through_shared_memory(policy, pace, capsys):
    total = 10_000_000
    with arqon.Ring(1 << 14, policy, shared=True) as r:
        with subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), r.name, str(total), str(pace)],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as writer:
            assert writer.stdout.readline().strip() == "ready"
            out = np.zeros(1 << 14, ring.RECORD)
            received, torn, next_step = 0, 0, 0
            writer.stdin.write("go\n")
            writer.stdin.flush()
            while True:
                done = writer.poll() is not None  # read once more after the writer ended: nothing is left behind
                got = r.drain(out)
                bad, next_step = _check(got, len(got), next_step)
                assert next_step >= 0, f"record {-1 - next_step} out of order"
                torn += bad
                received += len(got)
                if done and len(got) == 0:
                    break
            assert writer.returncode == 0
        c = r.counters()
    assert torn == 0
    assert c["written"] + c["dropped"] == total
    assert received == c["read"] and received + c["overrun"] + c["dropped"] == total and c["pending"] == 0
    with capsys.disabled():
        print(f"\n  {policy}, pace {pace}: {total:,} records; read {received:,}, dropped {c['dropped']:,}, "
              f"overwritten {c['overrun']:,} (caught mid-read {c['torn']:,}), torn records returned {torn}")


def test_a_shared_ring_cannot_be_closed_under_its_telemetry():
    """Closing a ring a Telemetry writes to raises and leaves it mapped (the next emit would otherwise write into
    unmapped memory); once the Telemetry and its emit are gone, it closes and unlinks."""
    from multiprocessing import shared_memory

    t = arqon.Telemetry({"metrics": [{"name": "lat"}]}, ring=arqon.Ring(1024, shared=True))
    emit, name = t.emit, t.ring.name
    with pytest.raises(RuntimeError, match="still in use"):
        t.ring.close()
    emit("lat", 2.5)
    got = t.ring.drain()
    assert len(got) == 1 and got[0]["value"] == 2.5
    ring_ = t.ring
    with pytest.raises(RuntimeError, match="still in use"):
        ring_.close()  # the emit builtin alone still holds it
    del t
    with pytest.raises(RuntimeError, match="still in use"):
        ring_.close()
    del emit
    ring_.close()
    assert ring_.name is None
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


@pytest.mark.parametrize("field,value", [("capacity", 1 << 20), ("capacity", 0), ("capacity", 1000),
                                         ("magic", 0), ("record_bytes", 8)])
def test_an_attached_reader_refuses_a_header_that_changed_under_it(field, value):
    """A reader checks the header against what it mapped before every drain: an overwritten magic, record size or
    capacity (one larger than the mapping would read past it) gets a clear error and nothing is read or written."""
    with arqon.Ring(1024, shared=True) as writer:
        reader = arqon.Ring.attach(writer.name)
        writer.push(3, 1.5, step=7)
        h = writer.header[0]
        saved, h[field] = int(h[field]), value
        before = reader.header.tobytes()  # raw bytes: a structured copy need not keep the padding
        with pytest.raises(ValueError, match="no longer describes a ring of 1024 records"):
            reader.drain()
        assert reader.header.tobytes() == before
        h[field] = saved
        got = reader.drain()
        assert [(r["metric"], r["value"], r["step"]) for r in got] == [(3, 1.5, 7)]
        reader.close()
        del h  # a view of the header: the ring would refuse to close under it


def test_ring_kernels_refuse_a_buffer_the_header_does_not_fill():
    """A ring is the whole buffer: a truncated or longer one, a header alone, or one whose capacity was overwritten is
    refused by push and drain (-BAD_STATE), touching nothing; the whole buffer drains."""
    r = arqon.Ring(64)
    r.push(1, 1.0)
    out = np.full(8, 7, ring.RECORD)
    whole = r.state
    grown = whole.copy()
    ring.ring_header(grown)[0]["capacity"] = 128
    for what, buf in {"truncated by a record": whole[:-ring.RECORD_WORDS], "header alone": whole[:24].copy(),
                      "one word longer": np.append(whole, 0.0), "capacity overwritten": grown,
                      "a tuner state": arqon.Tuner({"params": [{"name": "a", "min": 0, "max": 1}]}).state}.items():
        before = (buf.tobytes(), whole.tobytes(), out.tobytes())
        assert ring.ring_drain(buf, out) == -arqon.kernels.BAD_STATE, what
        assert ring.ring_push(buf, 0, 1, 2.0, 0, 0, 0) == arqon.kernels.BAD_STATE, what
        assert (buf.tobytes(), whole.tobytes(), out.tobytes()) == before, what
    assert ring.ring_drain(whole, out) == 1 and out[0]["value"] == 1.0
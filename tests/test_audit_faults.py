"""The audit log under faults: a SIGKILL at every write boundary of opening a segment (the first and each rotation),
and frame and segment mutations (swaps, duplicates, deletions, moves, flips, cuts) of a finished log. Each case has
its own expectation; none may be read back as a whole, identical run."""

import os
import random
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import arqon
from arqon.audit import FRAME_MAGIC, AuditLog, LogCorrupt, read_log, replay, segment_path
from tests.conftest import ROOT

_BOUNDARY_ZYGOTE = """
    import os, signal, sys, threading
    import numpy as np
    import arqon
    from arqon import audit
    config = {"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(4)]}
    WRAPPED = ("open", "write", "fsync", "link", "unlink", "close")
    print("ready", flush=True)
    for line in sys.stdin:
        path, segment, kill_at = line.split()
        segment, kill_at = int(segment), int(kill_at)
        pid = os.fork()
        if pid == 0:  # the worker: SIGKILLs itself before call number kill_at while it opens segment `segment`
            armed = {"thread": None, "calls": 0}

            def crash_here():
                if armed["calls"] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # this process, by its own id

            def counting(real):
                def call(*args, **kwargs):
                    if armed["thread"] == threading.get_ident():
                        crash_here()
                        armed["calls"] += 1
                    return real(*args, **kwargs)
                return call

            for name in WRAPPED:
                setattr(os, name, counting(getattr(os, name)))
            open_segment = audit.AuditLog._open_segment

            def watched(self):
                if self._segment != segment:
                    return open_segment(self)
                armed["thread"] = threading.get_ident()
                open_segment(self)
                crash_here()  # the boundary after the last call
                armed["thread"] = None
                print(f"calls {armed['calls']}", flush=True)

            audit.AuditLog._open_segment = watched
            tuner = arqon.Tuner({**config, "seed": segment})
            print(f"pid {os.getpid()}", flush=True)
            log = audit.AuditLog(path, tuner, fsync="record", rotate_bytes=4096)
            x, acked = log.ask(), 0
            for _ in range(400):  # about six segments of 4 KiB
                x = log.step(float(np.sum((x - 1.0) ** 2)))
                log.flush()
                if log.durable != acked:
                    acked = log.durable
                    print(f"ack {acked}", flush=True)
            log.close()
            print("survived", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("\\nreaped", flush=True)  # on a line of its own even when the kill cut a line short
"""


def test_a_kill_at_every_write_boundary_of_a_segment_loses_nothing(tmp_path, capsys):
    """For the first segment and three rotations, a SIGKILL before each file-system call of opening the segment and
    after the last: every acknowledged record is read back, the log is never unreadable, the survivor replays
    identical and is reported incomplete. The number of calls is counted by the worker, not assumed."""
    zygote = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_BOUNDARY_ZYGOTE)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    kills, no_log, leftovers, calls_per_segment = 0, 0, 0, {}
    with zygote:
        assert zygote.stdout.readline().strip() == "ready"
        for segment in range(4):
            for kill_at in range(64):
                path = tmp_path / f"s{segment}k{kill_at}.arqlog"
                zygote.stdin.write(f"{path} {segment} {kill_at}\n")
                zygote.stdin.flush()
                acked, calls, survived = 0, None, False
                while (line := zygote.stdout.readline().split()) != ["reaped"]:
                    if len(line) == 2 and line[0] == "ack":
                        acked = int(line[1])
                    elif len(line) == 2 and line[0] == "calls":
                        calls = int(line[1])
                    survived |= line == ["survived"]
                if survived:  # kill_at is past the last call: every boundary of this segment was tried
                    calls_per_segment[segment] = calls
                    assert calls == kill_at - 1
                    break
                kills += 1
                leftovers += any(p.name.endswith(".tmp") for p in tmp_path.glob(path.name + "*"))
                if not path.exists():  # killed before the first segment was linked into place
                    assert segment == 0 and acked == 0, (segment, kill_at)
                    no_log += 1
                    continue
                log = read_log(path, repair=True)  # never LogCorrupt
                assert len(log.records) >= acked, (segment, kill_at, acked, len(log.records))
                assert segment == 0 or acked > 0
                result = replay(path)
                assert result.identical and result.missing, (segment, kill_at)
            else:
                pytest.fail(f"segment {segment}: the worker was still making calls after 64")
        zygote.stdin.close()
    assert set(calls_per_segment) == {0, 1, 2, 3} and min(calls_per_segment.values()) >= 8
    assert kills == sum(calls + 1 for calls in calls_per_segment.values())
    with capsys.disabled():
        print(f"\n  {kills} SIGKILLs, one at each boundary between file-system calls while opening segments 0-3 "
              f"(calls per segment {calls_per_segment}): acknowledged records lost 0, unreadable logs 0, no log yet "
              f"{no_log} (all before segment 0 was linked), a leftover .tmp ignored {leftovers}")


def _frames(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Where the header ends and each frame's (start, end), in one segment's bytes."""
    length = struct.unpack_from("<8sII", data)[2]
    offset, frames = 16 + length + 4, []
    header_end = offset
    while offset < len(data):
        magic, size = struct.unpack_from("<II", data, offset)
        assert magic == FRAME_MAGIC
        frames.append((offset, offset + 28 + size))
        offset += 28 + size
    return header_end, frames


def _mutations(files: list[bytes], rng: random.Random):
    """Yield (kind, contents) mutations of a log's segments; ``None`` deletes a segment, a longer list adds one."""
    parsed = [_frames(data) for data in files]

    def cut_frames(i, j, k):
        (a, b), (c, d) = parsed[i][1][j], parsed[i][1][k]
        return a, b, c, d

    kinds = ["swap frames", "duplicate frame", "delete frame", "move frame", "swap segments", "duplicate segment",
             "delete segment", "flip bit", "cut"]
    while True:
        kind = rng.choice(kinds)
        contents = list(files)
        i = rng.randrange(len(files))
        data, frames = files[i], parsed[i][1]
        if kind == "swap frames" and len(frames) >= 2:
            j, k = sorted(rng.sample(range(len(frames)), 2))
            a, b, c, d = cut_frames(i, j, k)
            contents[i] = data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]
        elif kind == "duplicate frame":
            a, b = frames[rng.randrange(len(frames))]
            at = rng.choice([a, b] + [f[0] for f in frames])
            contents[i] = data[:at] + data[a:b] + data[at:]
        elif kind == "delete frame":
            a, b = frames[rng.randrange(len(frames))]
            contents[i] = data[:a] + data[b:]
        elif kind == "move frame" and len(files) >= 2:
            a, b = frames[rng.randrange(len(frames))]
            other = rng.choice([n for n in range(len(files)) if n != i])
            at = rng.choice([parsed[other][0]] + [f[1] for f in parsed[other][1]])
            contents[i] = data[:a] + data[b:]
            contents[other] = files[other][:at] + data[a:b] + files[other][at:]
        elif kind == "swap segments" and len(files) >= 2:
            j = rng.choice([n for n in range(len(files)) if n != i])
            contents[i], contents[j] = files[j], files[i]
        elif kind == "duplicate segment":
            at = rng.randrange(len(files) + 1)
            contents = files[:at] + [data] + files[at:]
        elif kind == "delete segment":
            contents[i] = None
        elif kind == "flip bit":
            flipped = bytearray(data)
            flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            contents[i] = bytes(flipped)
        elif kind == "cut":
            contents[i] = data[:rng.randrange(len(data))]
        else:
            continue
        if contents != files:
            yield kind, contents


def test_a_thousand_mutations_are_each_detected_or_reported_incomplete(tmp_path, capsys):
    """Swaps, duplicates, deletions and moves of frames and segments, bit flips and cuts of a closed multi-segment
    log: each is unreadable (LogCorrupt naming a file and offset), a divergence, or a prefix reported incomplete;
    none is called identical and complete. Every mutated log's records are also checked against the original's: what
    is read back is the original's prefix or the reading says why not."""
    path = tmp_path / "run.arqlog"
    tuner = arqon.Tuner({"params": [{"name": f"x{i}", "min": -5, "max": 5} for i in range(3)], "seed": 4})
    with AuditLog(path, tuner, rotate_bytes=4096) as log:
        x = log.ask()
        for burst in range(40):
            for _ in range(6):
                x = log.step(float(np.sum((x - 1.0) ** 2)))
            log.flush()  # several frames per segment
    original = read_log(path)
    files = [Path(f).read_bytes() for f in original.segments]
    assert len(files) >= 4 and min(len(_frames(f)[1]) for f in files[:-1]) >= 2 and replay(path).identical

    def write(contents):
        shutil.rmtree(tmp_path / "m", ignore_errors=True)
        (tmp_path / "m").mkdir()
        target = tmp_path / "m" / "run.arqlog"
        for index, data in enumerate(contents):
            if data is not None:
                segment_path(target, index).write_bytes(data)
        return target

    rng = random.Random(11)
    outcomes, kinds = {"unreadable": 0, "diverged": 0, "incomplete": 0}, {}
    mutations = _mutations(files, rng)
    for trial in range(1000):
        kind, contents = next(mutations)
        kinds[kind] = kinds.get(kind, 0) + 1
        target = write(contents)
        try:
            log = read_log(target)
        except LogCorrupt as e:
            assert "offset" in str(e), e
            outcomes["unreadable"] += 1
            continue
        except FileNotFoundError:  # segment 0 deleted: there is no log at this path
            assert contents[0] is None
            outcomes["unreadable"] += 1
            continue
        assert log.records.tobytes() == original.records[:len(log.records)].tobytes(), (trial, kind)
        result = replay(target)
        assert not (result.identical and not result.missing), (trial, kind)
        outcomes["incomplete" if result.identical else "diverged"] += 1
    assert sum(outcomes.values()) == 1000 and len(kinds) == 9
    with capsys.disabled():
        print(f"\n  1000 mutations of a {len(files)}-segment closed log, by kind {dict(sorted(kinds.items()))}: "
              f"{outcomes}; called identical and complete: 0")


def test_a_leftover_segment_or_temp_file_is_handled_at_open(tmp_path):
    """A later segment from an earlier run is refused when the log is opened, not at its first rotation; a crashed
    writer's LOG.N.tmp is removed and never read."""
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}], "seed": 0})
    path = tmp_path / "run.arqlog"
    segment_path(path, 1).write_bytes(b"old")
    with pytest.raises(FileExistsError, match="run.arqlog.1 exists"):
        AuditLog(path, tuner)
    os.unlink(segment_path(path, 1))
    (tmp_path / "run.arqlog.tmp").write_bytes(b"half a header")
    with AuditLog(path, tuner, rotate_bytes=4096) as log:
        x = log.ask()
        for _ in range(200):
            x = log.step(float(x[0]))
    assert not list(tmp_path.glob("*.tmp"))
    log = read_log(path)
    assert log.closed and len(log.segments) > 1 and replay(path).identical


def test_a_writer_failure_is_raised_by_the_next_recording_call(tmp_path, monkeypatch):
    """The disk fills: the writer stops, and the next ask / step / tell (and an executor's next decision) raise its
    error naming the log, instead of returning normally while records stop reaching the file."""
    tuner = arqon.Tuner({"params": [{"name": "x", "min": 0, "max": 1}], "seed": 0})
    ex = arqon.Executor({"params": {"x": {}}, "metrics": ["lat"]}, tuner)
    log = AuditLog(tmp_path / "run.arqlog", tuner, executor=ex)
    x = log.ask()
    for _ in range(10):
        x = log.step(float(x[0]))
    log.flush()

    def disk_full(payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log, "_write_frame", disk_full)
    log.tell(0.5)  # a record the writer fails on
    for _ in range(10_000):  # until the writer has met it (bounded: it drains every 0.2 ms)
        if log._error is not None:
            break
        time.sleep(0.001)
    for call in (log.ask, lambda: log.step(0.5), lambda: log.tell(0.5),
                 lambda: ex.step(tuner, {"lat": 1.0}, 0.5, 99)):
        with pytest.raises(RuntimeError, match=r"audit writer for .*run\.arqlog failed: .*No space left on device"):
            call()
    with pytest.raises(RuntimeError, match="No space left on device"):
        log.close()

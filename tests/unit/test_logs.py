"""Bounded logging: a flood of similar records becomes a few lines and one summary."""

from __future__ import annotations

import io
import logging

import pytest

from yrd_hazmat import logs
from yrd_hazmat.logs import RateLimitFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def out(clock) -> Collect:
    handler = Collect()
    handler.addFilter(RateLimitFilter(handler, burst=5, window_s=30, clock=clock))
    return handler


def record(msg: str = "Unable connect to node with id %s: %s", args=(1, "[Errno 111] refused"),
           name: str = "aiokafka", level: int = logging.ERROR, exc: BaseException | None = None):
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, level, "client.py", 435, msg, args, exc_info)


def test_a_flood_of_one_kind_gives_the_burst_then_one_summary_at_the_window_end(out, clock):
    for i in range(2000):
        clock.now += 0.01  # 2,000 records in 20 s
        out.handle(record(args=(1, f"[Errno 111] attempt {i}")))
    assert len(out.records) == 5
    out.filters[0].sweep()  # the window has not ended yet: nothing to say
    assert len(out.records) == 5

    clock.now += 10.5
    out.filters[0].sweep()
    assert out.lines[5] == ("[aiokafka] suppressed 1995 similar messages in the last 30 s: "
                            "'Unable connect to node with id %s: %s'")
    summary = out.records[5]
    assert (summary.name, summary.levelno) == ("aiokafka", logging.ERROR)
    out.filters[0].sweep()
    assert len(out.records) == 6  # said once


def test_the_summary_comes_before_the_next_window_s_first_record(out, clock):
    for _ in range(8):
        out.handle(record())
    clock.now += 31
    out.handle(record())
    assert out.lines[5].startswith("[aiokafka] suppressed 3 similar messages")
    assert out.lines[6] == "Unable connect to node with id 1: [Errno 111] refused"
    for _ in range(4):
        out.handle(record())
    assert len(out.records) == 11  # a fresh burst of 5 in the new window


def test_kinds_are_logger_level_template_and_exception_type(out, clock):
    for _ in range(10):
        out.handle(record())
        out.handle(record(name="aiokafka.consumer.fetcher"))
        out.handle(record(level=logging.WARNING))
        out.handle(record("Unable to update metadata from %s", ([1],)))
        out.handle(record("processing %s failed", ("沪A1",), name="agents", exc=ValueError("x")))
        out.handle(record("processing %s failed", ("沪A1",), name="agents", exc=KeyError("y")))
    assert len(out.records) == 6 * 5


def test_messages_formatted_before_logging_differ_only_in_digits_are_one_kind(out, clock):
    for offset in range(50):
        out.handle(record(f"partition 3 offset {offset} is beyond the end", ()))
    assert len(out.records) == 5
    clock.now += 30
    out.filters[0].sweep()
    assert "suppressed 45 similar messages" in out.lines[-1]


def test_only_the_first_traceback_of_a_window_is_kept(out, clock):
    try:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    except ConnectionError as exc:
        error = exc
    for _ in range(20):
        out.handle(record("Redis read model update failed", (), name="agents.processor", exc=error))
    first, second = out.records[0], out.records[1]
    assert first.exc_info is not None and second.exc_info is None
    assert second.getMessage() == "Redis read model update failed (traceback as above)"
    assert len(out.records) == 5
    clock.now += 30
    out.filters[0].sweep()
    assert out.lines[-1] == ("[agents.processor] suppressed 15 similar messages in the last 30 s: "
                             "'Redis read model update failed'")


def test_other_records_pass_untouched_during_a_flood(out, clock):
    for i in range(100):
        out.handle(record())
        out.handle(record("ticked %d silent vehicles", (i,), name="agents.pings", level=logging.INFO)
                   if i == 50 else record())
    assert "ticked 50 silent vehicles" in out.lines
    assert len(out.records) == 6


def test_flush_says_what_was_suppressed_in_windows_not_yet_ended(out, clock):
    for _ in range(12):
        out.handle(record())
    clock.now += 4
    out.filters[0].flush()
    assert out.lines[-1] == ("[aiokafka] suppressed 7 similar messages in the last 4 s: "
                             "'Unable connect to node with id %s: %s'")


def test_windows_of_kinds_that_stopped_are_forgotten(out, clock):
    limiter = out.filters[0]
    for i in range(1000):
        out.handle(record(f"one-off message {chr(0x4e00 + i)}", ()))
    assert len(limiter._windows) == 1000
    clock.now += 31
    out.handle(record())
    assert len(limiter._windows) == 1


def test_a_simulated_broker_outage_logs_a_bounded_number_of_lines(out, clock):
    """The kinds seen when the worker's broker is stopped for 30 s (aiokafka's client,
    fetcher, group coordinator), at the rate seen: thousands of records -> tens of lines."""
    kinds = [
        ("aiokafka", "Unable connect to node with id %s: %s", (1, "[Errno 111] Connect call failed")),
        ("aiokafka", "Unable to update metadata from %s", ([1],)),
        ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s", (1, "NodeNotReadyError")),
        ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s",
         ("NodeNotReadyError",)),
    ]
    for step in range(3500):  # 35 s at 100 records/s
        clock.now += 0.01
        name, msg, args = kinds[step % len(kinds)]
        out.handle(record(msg, args, name=name))
    clock.now += 30
    out.filters[0].sweep()
    assert len(out.records) <= len(kinds) * (5 + 1) * 2
    assert sum("suppressed" in line for line in out.lines) >= len(kinds)


@pytest.fixture
def root_handler():
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler, stream
    root.removeHandler(handler)
    root.setLevel(level)
    logs._installed[:] = [f for f in logs._installed if f.handler is not handler]


def test_install_filters_every_root_handler_once(root_handler):
    handler, stream = root_handler
    logs.install()
    logs.install()  # idempotent
    assert sum(isinstance(f, RateLimitFilter) for f in handler.filters) == 1
    for _ in range(500):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, "refused")
    logging.getLogger("agents.pings").info("back to work")
    lines = stream.getvalue().splitlines()
    assert lines == ["ERROR aiokafka: Unable connect to node with id 1: refused"] * 5 + [
        "INFO agents.pings: back to work"]
    [limiter] = [f for f in handler.filters if isinstance(f, RateLimitFilter)]
    limiter.flush()
    assert stream.getvalue().splitlines()[-1] == (
        "ERROR aiokafka: [aiokafka] suppressed 495 similar messages in the last 1 s: "
        "'Unable connect to node with id %s: %s'")


def test_install_reaches_handlers_added_later(root_handler):
    handler, _ = root_handler
    logs.install()
    later = Collect()
    logging.getLogger().addHandler(later)
    try:
        logs.install()
        assert sum(isinstance(f, RateLimitFilter) for f in later.filters) == 1
        assert sum(isinstance(f, RateLimitFilter) for f in handler.filters) == 1
    finally:
        logging.getLogger().removeHandler(later)
        logs._installed[:] = [f for f in logs._installed if f.handler is not later]

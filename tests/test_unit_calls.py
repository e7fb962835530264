"""Unit tests of the model-call plumbing that needs no model: the budget ledger shared by processes,
prices, the shared rate limit, the response cache and its recovery from damage, Retry-After and the
classification of provider refusals."""

import asyncio
import itertools
import json
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from types import SimpleNamespace

import pytest

from synthkit.calls.cost import Price, price_of
from synthkit.calls.providers.base import (
    Completion,
    ProviderRefused,
    RowRefused,
    refusal,
    retry_after,
)
from synthkit.calls.providers.openai_http import chat_body
from synthkit.calls.stores import cache as cache_module
from synthkit.calls.stores.base import BudgetBusy, BudgetExhausted
from synthkit.calls.stores.budget_file import Budget
from synthkit.calls.stores.cache import CACHE_FILE, ResponseCache, cache_dir, call_key, request_key
from synthkit.calls.stores.limits import SharedRate
from synthkit.core.config import LLMConfig
from synthkit.errors import UserError

# Budget: 10 prompt tokens and up to 50 answer tokens reserve 0.11; an answer of 20 tokens costs 0.05.
PRICE = Price(0.001, 0.002)
ESTIMATE, COST = 0.11, 0.05


def _spend_until_exhausted(ledger, cap, results, barrier):
    budget = Budget(PRICE, cap, ledger)
    barrier.wait()  # both spend from the start: on a loaded machine one could otherwise spend it all alone
    settled = 0
    for _ in range(1000):
        try:
            reserved = budget.reserve(10, 50)
        except BudgetBusy:  # the other's reservation leaves no room: it settles soon
            time.sleep(0.001)
            continue
        except BudgetExhausted:
            break
        time.sleep(0.001)  # a request in flight, so the other process sees the reservation
        budget.settle(reserved, 10, 20)
        settled += 1
    results.put(settled)


def test_two_processes_never_spend_beyond_the_cap(tmp_path):
    ledger, cap = tmp_path / "synthkit-spent.json", 2.0
    context = multiprocessing.get_context("fork")
    results, barrier = context.Queue(), context.Barrier(2)
    workers = [context.Process(target=_spend_until_exhausted, args=(ledger, cap, results, barrier)) for _ in range(2)]
    for w in workers:
        w.start()
    settled = [results.get(timeout=30), results.get(timeout=30)]
    for w in workers:
        w.join(timeout=30)
    spent = Budget(PRICE, cap, ledger).spent
    assert spent == pytest.approx(sum(settled) * COST)
    assert spent <= cap + COST + 1e-9  # each request reserved what it cost, but the last: what was left
    assert spent >= cap  # and they stopped only once the cap was spent
    assert all(n > 0 for n in settled)
    assert json.loads(ledger.read_text())["reserved"] == {}  # every reservation settled


def test_without_a_cap_spending_is_written_in_batches_and_all_of_it_by_the_end(tmp_path, monkeypatch):
    """No cap: nothing is reserved, and what is spent (for a later capped run into the dir) is written every
    RECORD_EVERY_S, not once per answer; closing the stores writes the rest."""
    from synthkit.calls.stores import budget_file
    from synthkit.calls.stores.local import LocalBudget, LocalStores

    ledger = tmp_path / "synthkit-spent.json"
    budget = Budget(PRICE, None, ledger)
    for _ in range(20):
        assert budget.settle(budget.reserve(10, 20), 10, 20) == pytest.approx(COST)
    assert not ledger.exists()  # within the half second: not written yet
    monkeypatch.setattr(budget_file, "RECORD_EVERY_S", 0.0)
    budget.settle(budget.reserve(10, 20), 10, 20)
    assert json.loads(ledger.read_text())["spent"] == pytest.approx(21 * COST)
    monkeypatch.setattr(budget_file, "RECORD_EVERY_S", 60.0)
    budget.settle(0.0, 10, 20)
    LocalStores(None, SimpleNamespace(), LocalBudget(budget)).close()
    assert json.loads(ledger.read_text())["spent"] == pytest.approx(22 * COST)
    assert Budget(PRICE, 1.0, ledger).spent == pytest.approx(22 * COST)  # what a capped resume reads


def test_the_first_request_may_cross_a_tiny_cap_but_no_second(tmp_path):
    budget = Budget(PRICE, 0.05, tmp_path / "spent.json")
    reserved = budget.reserve(10, 50)  # 0.11 > 0.05, but nothing is spent yet: one request's estimate of slack
    budget.settle(reserved, 10, 50)
    with pytest.raises(BudgetExhausted, match="max_cost_usd=0.05 reached"):
        budget.reserve(1, 1)
    assert budget.spent == pytest.approx(ESTIMATE)


def test_spending_persists_across_budget_objects(tmp_path):
    ledger = tmp_path / "spent.json"
    first = Budget(PRICE, None, ledger)
    first.settle(first.reserve(10, 50), 10, 20)
    first.settle(0.0, 100, 0)  # an answer from a run without a cap still counts
    assert Budget(PRICE, 10.0, ledger).spent == pytest.approx(COST + 0.1)


def test_a_request_that_does_not_fit_waits_then_goes_with_what_is_left(tmp_path):
    budget = Budget(PRICE, 0.3, tmp_path / "spent.json")
    first, second = budget.reserve(10, 50), budget.reserve(10, 50)  # 0.22 of 0.3 reserved
    with pytest.raises(BudgetBusy, match=r"\$0.0000 spent and \$0.2200 reserved by requests in flight") as busy:
        budget.reserve(10, 50)
    assert (busy.value.spent, busy.value.reserved, busy.value.estimate) == (0.0, pytest.approx(0.22), ESTIMATE)
    budget.settle(first, 10, 20)
    budget.settle(second, 10, 20)  # each costs 0.05 of its 0.11
    budget.settle(budget.reserve(10, 50), 10, 20)
    budget.settle(budget.reserve(10, 50), 10, 20)  # 0.20 spent
    last = budget.reserve(10, 50)
    assert last == pytest.approx(0.10)  # 0.11 does not fit, but nothing else is in flight: what is left
    with pytest.raises(BudgetBusy):
        budget.reserve(1, 1)
    budget.settle(last, 10, 50)  # it cost its whole estimate: the cap is passed by less than one request
    with pytest.raises(BudgetExhausted, match=r"max_cost_usd=0.3 reached \(\$0.3100 spent, \$0.0000 reserved"):
        budget.reserve(1, 1)
    assert budget.spent == pytest.approx(0.31)


def test_a_failed_request_releases_its_reservation(tmp_path):
    budget = Budget(PRICE, 0.2, tmp_path / "spent.json")
    budget.release(budget.reserve(10, 50))
    budget.release(budget.reserve(10, 50))  # would not fit if the first were still reserved
    assert budget.spent == 0.0


def _dead_pid() -> int:
    for pid in range(32767, 300, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    pytest.skip("no free pid")


def test_a_dead_process_reservation_is_dropped(tmp_path):
    ledger = tmp_path / "spent.json"
    host = socket.gethostname()
    dead, alive, elsewhere = f"{host}:{_dead_pid()}", f"{host}:{os.getppid()}", "other-host:12345"
    ledger.write_text(json.dumps({"spent": 0.5, "reserved": {dead: 100.0, alive: 0.2, elsewhere: 0.1}}))
    budget = Budget(PRICE, 1.0, ledger)
    reserved = budget.reserve(10, 50)  # 0.5 + 0.2 + 0.1 + 0.11 fits; with the dead 100.0 it would not
    state = json.loads(ledger.read_text())
    assert dead not in state["reserved"]
    assert state["reserved"][alive] == 0.2 and state["reserved"][elsewhere] == 0.1  # not known to be dead
    budget.settle(reserved, 10, 20)
    assert budget.spent == pytest.approx(0.5 + COST)


@pytest.mark.parametrize("content,spent", [("0.75", 0.75), ("3", 3.0), ("", 0.0), ("not json", 0.0), ("[1]", 0.0)])
def test_old_and_odd_ledger_files_read(tmp_path, content, spent):
    ledger = tmp_path / "spent.json"
    ledger.write_text(content)
    assert Budget(PRICE, None, ledger).spent == spent


def test_an_unpriced_model_costs_none(tmp_path):
    budget = Budget(None, 1.0, tmp_path / "spent.json")
    assert budget.reserve(10, 50) == 0.0
    assert budget.settle(0.0, 10, 50) is None


def test_price_of_gpt_4o_mini_from_litellms_map_without_importing_litellm():
    code = (
        "import sys\n"
        "from synthkit.calls.cost import price_of\n"
        "from synthkit.core.config import LLMConfig\n"
        "p = price_of(LLMConfig(provider='openai', model='gpt-4o-mini'))\n"
        "q = price_of(LLMConfig(provider='openai', model='openai/gpt-4o-mini'))\n"
        "print(p.input, p.output, q == p, 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    inp, outp, same, imported = out.stdout.split()
    # OpenAI's list price for gpt-4o-mini: $0.15 in / $0.60 out per 1M tokens.
    assert float(inp) == pytest.approx(0.15e-6) and float(outp) == pytest.approx(0.60e-6)
    assert same == "True" and imported == "False"


def test_price_from_the_config_wins():
    price = price_of(LLMConfig(provider="x", model="gpt-4o-mini", input_cost_per_mtok=1.0, output_cost_per_mtok=None))
    assert price == Price(1e-6, 0.0)
    assert price_of(LLMConfig(provider="x", model="no-such-model-anywhere")) is None


# SharedRate.


def test_shared_rate_spaces_starts(tmp_path):
    rate = SharedRate(tmp_path / "state" / "x.rpm", 600)  # one request per 0.1 s

    async def main():
        starts = []

        async def one():
            slot = await rate.take()
            starts.append((slot, time.time()))

        await asyncio.gather(*(one() for _ in range(4)))
        return sorted(starts)

    began = time.time()
    starts = asyncio.run(main())
    slots = [slot for slot, _ in starts]
    # The schedule's slots, not wake-up times (which a loaded machine delays): exactly 0.1 s apart, from now.
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([0.1] * 3, abs=1e-5)
    assert began <= slots[0] < began + 0.1
    assert all(woke >= slot - 0.005 for slot, woke in starts)  # no request goes before its slot


def test_shared_rate_is_shared_through_its_file(tmp_path):
    first, second = SharedRate(tmp_path / "x.rpm", 600), SharedRate(tmp_path / "x.rpm", 600)

    async def main():
        await first.take()
        t = time.time()
        await second.take()  # another process's limiter on the same file waits its turn
        return time.time() - t

    assert asyncio.run(main()) >= 0.09


# Response cache.


def test_cache_round_trip(tmp_path):
    cache = ResponseCache(tmp_path)
    assert cache.get("k") is None
    cache.put("k", Completion("answer é", 12, 34, "length"))
    cache.put("j", Completion("other"))
    assert cache.get("k") == Completion("answer é", 12, 34, "length")
    cache.close()
    again = ResponseCache(tmp_path)  # another run, or process
    assert again.get("k").finish_reason == "length" and again.get("j") == Completion("other", 0, 0, "stop")
    again.close()


def _open_cache_at_once(directory, barrier, results):
    barrier.wait()
    try:
        ResponseCache(directory).close()
        results.put("opened")
    except UserError as e:
        results.put(str(e))


def test_processes_opening_a_new_cache_at_once_all_open_it(tmp_path):
    # Without the open lock about one process in twenty failed here ("locked"): each held a shared
    # lock on the new file and wanted an exclusive one to switch it to WAL.
    context = multiprocessing.get_context("fork")
    results, outcomes = context.Queue(), []
    for attempt in range(8):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        barrier = context.Barrier(6)
        workers = [context.Process(target=_open_cache_at_once, args=(directory, barrier, results)) for _ in range(6)]
        for w in workers:
            w.start()
        outcomes += [results.get(timeout=30) for _ in workers]
        for w in workers:
            w.join(timeout=30)
    assert outcomes == ["opened"] * 48


def test_request_key():
    a = request_key(model="m", messages=[{"role": "user", "content": "x"}], row="0::1")
    assert a == request_key(row="0::1", messages=[{"role": "user", "content": "x"}], model="m")
    assert a != request_key(model="m", messages=[{"role": "user", "content": "x"}], row="0::2")


def test_a_calls_own_max_tokens_is_part_of_its_key_and_no_override_keeps_the_keys_of_earlier_releases():
    llm = LLMConfig(provider="vllm", model="openai/m", api_base="http://127.0.0.1:1/v1")
    messages, schema = [{"role": "user", "content": "x"}], {"type": "object"}
    key = call_key(llm, messages, schema, "0::1")
    assert key == "3bf96605384fe12f2accd440da0b4db7ca85039c4b5291d955346a2e75e4133e"  # as cached before the override
    assert call_key(llm, messages, schema, "0::1", llm.max_tokens) == key  # the same request
    assert call_key(llm, messages, schema, "0::1", 256) != key
    body = chat_body(llm, messages, schema, "rating", True, max_tokens=256)
    assert body["max_tokens"] == 256 and chat_body(llm, messages, schema, "rating", True)["max_tokens"] == 2048


def test_a_cache_written_before_finish_reasons_is_upgraded(tmp_path):
    db = sqlite3.connect(tmp_path / CACHE_FILE)
    db.execute(
        "CREATE TABLE responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,"
        " completion_tokens INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO responses VALUES ('k', 'old', 1, 2)")
    db.commit()
    db.close()
    cache = ResponseCache(tmp_path)
    assert cache.get("k") == Completion("old", 1, 2, "stop")
    assert not list(tmp_path.glob("*.damaged-*"))  # an old cache is not damage
    cache.close()


def _damage_random(path):
    path.write_bytes(os.urandom(8192))


def _damage_truncated(path):
    cache = ResponseCache(path.parent)
    for i in range(500):
        cache.put(f"k{i}", Completion("x" * 300, 1, 2))
    cache.close()
    data = path.read_bytes()
    assert len(data) > 100_000
    path.write_bytes(data[: len(data) // 2])


def _damage_schema(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE responses(x)")
    db.execute("INSERT INTO responses VALUES (1)")
    db.commit()
    db.close()


def _damage_directory(path):
    path.mkdir()
    (path / "something").write_text("x")


@pytest.mark.parametrize("damage", [_damage_random, _damage_truncated, _damage_schema, _damage_directory])
def test_a_damaged_cache_is_set_aside_and_rebuilt(tmp_path, capsys, damage):
    path = tmp_path / CACHE_FILE
    damage(path)
    cache = ResponseCache(tmp_path)
    cache.put("new", Completion("fresh", 1, 1))
    assert cache.get("new") == Completion("fresh", 1, 1)
    assert cache.get("k1") is None
    cache.close()
    (aside,) = tmp_path.glob(f"{CACHE_FILE}.damaged-*")  # moved, never deleted
    assert aside.exists()
    warning = capsys.readouterr().err
    assert warning.startswith("synthkit: warning: the response cache") and "moved to" in warning
    assert warning.count("\n") == 1


def test_two_damaged_caches_in_one_second_are_both_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(strftime=lambda fmt: "20260101-000000"))
    path = tmp_path / CACHE_FILE
    path.write_bytes(b"first damaged cache " * 100)
    ResponseCache(tmp_path).close()
    path.write_bytes(b"second damaged cache " * 100)
    ResponseCache(tmp_path).close()
    kept = b"".join(p.read_bytes() for p in tmp_path.glob(f"{CACHE_FILE}.damaged-*"))
    assert b"first damaged cache" in kept and b"second damaged cache" in kept


def test_cache_dir_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "cachefile"
    target.write_text("x")
    with pytest.raises(UserError, match=f"^cache_dir={target} is a file: choose a directory .*cache=off"):
        cache_dir(str(target))
    made = cache_dir(str(tmp_path / "a" / "b"))
    assert made.is_dir() and not list(made.iterdir())  # made, and its write probe removed


# Provider answers.


def test_retry_after_seconds_and_milliseconds():
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "-3"}) == 0.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({}) is None


def test_retry_after_http_date():
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 27 <= retry_after({"retry-after": format_datetime(later, usegmt=True)}) <= 31
    earlier = datetime.now(timezone.utc) - timedelta(seconds=30)
    assert retry_after({"retry-after": format_datetime(earlier, usegmt=True)}) == 0.0


@pytest.mark.parametrize("headers", [{"retry-after": "soon"}, {"retry-after-ms": "x"}, {"retry-after": ""}, None])
def test_retry_after_garbage_is_none(headers):
    assert retry_after(headers) is None


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_ends_the_run_naming_the_key_variable(status):
    error = refusal(status, "Incorrect API key provided", "OPENAI_API_KEY", "openai", "gpt-4o-mini")
    assert isinstance(error, ProviderRefused) and isinstance(error, UserError)
    assert "OPENAI_API_KEY" in str(error) and "gpt-4o-mini" in str(error)


@pytest.mark.parametrize(
    "status,message",
    [
        (404, "Not Found"),
        (400, "The model `gpt-5-mega` does not exist"),
        (400, "Model not found: foo"),
        (None, "litellm.BadRequestError: LLM Provider NOT provided. Pass in the LLM provider you are trying to call"),
    ],
)
def test_an_unknown_model_or_endpoint_ends_the_run(status, message):
    error = refusal(status, message, None, "openai", "gpt-5-mega")
    assert isinstance(error, ProviderRefused)
    assert "llm.model" in str(error) and "llm.api_base" in str(error)


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    ],
)
def test_a_refusal_of_one_prompt_rejects_only_that_row(message):
    error = refusal(400, message, "OPENAI_API_KEY", "openai", "gpt-4o-mini")
    assert isinstance(error, RowRefused) and not isinstance(error, UserError)
    assert message in str(error)

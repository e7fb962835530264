"""The Redis store (synthkit.calls.stores.redis_store) against a real redis-server on 127.0.0.1: rate
schedules and a budget shared by several processes, the cache read across processes, a server
restarted mid-run, and the start-up mistakes. Plus the network filesystem check on fake mount tables."""

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from redis_server import NO_SERVER, REDIS_SERVER, RedisServer, free_port

from synthkit.calls.stores.fs_check import network_filesystem
from synthkit.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip(NO_SERVER)
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def run_workers(count: int, code: str, *args) -> list:
    """Run `code` in `count` processes at once; each prints one JSON value, returned in a list."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(i), *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(count)
    ]
    for proc in procs:  # every worker has imported and connected: now all begin together
        assert proc.stdout.readline().strip() == "ready", proc.communicate()[1]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


WORKER_PRELUDE = """
import asyncio, json, sys, time
from synthkit.calls.stores.redis_store import RedisStore
index, url = int(sys.argv[1]), sys.argv[2]
store = RedisStore(url)
print("ready", flush=True)
sys.stdin.readline()
"""


SHARED_WORKER = (
    WORKER_PRELUDE
    + """
import random
async def main():
    from synthkit.calls.stores.redis_store import RATE_TTL_S
    limits = store.rate_limits("endpoint-a", rpm=600, tpm=None)
    started = []
    for _ in range(6):
        # The slot the server's schedule gave: its clock (this machine's) when the script ran, plus the wait.
        keys, units = limits.slots(0)
        before = time.time()
        wait = float(await store.script("rate", keys, [1, RATE_TTL_S, *units]))
        started.append([before + wait, time.time() + wait])
    from synthkit.calls.stores.base import BudgetBusy, BudgetExhausted
    budget = store.budget("sweep-1", max_cost_usd=1.0)
    paid = 0.0
    while True:
        try:
            token = await budget.reserve(0.10)
        except BudgetBusy:  # another process's reservations leave no room: they settle soon
            await asyncio.sleep(0.01)
            continue
        except BudgetExhausted:
            break
        await asyncio.sleep(0.05)
        cost = random.uniform(0.05, 0.15)
        await budget.settle(token, cost)
        paid += cost
    from synthkit.calls.providers.base import Completion
    await store.cache.put(f"key-{index}", Completion('{"query": "naïve café"}', index, 34))
    await store.aclose()
    return {"started": started, "paid": paid}
print(json.dumps(asyncio.run(main())))
"""
)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """3 processes at once, each: 6 requests under one rpm=600 schedule (one per 0.1 s, together),
    then requests of $0.10 estimated, $0.05-$0.15 actual, against one $1 budget until refused,
    then one answer into the cache."""
    if REDIS_SERVER is None:
        pytest.skip(NO_SERVER)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server, run_workers(3, SHARED_WORKER, server.url)
    finally:
        server.stop()


def test_rpm_is_shared_by_processes(shared_run):
    """No two of the 18 slots the schedule gave (whichever process took them) are closer than one interval. A
    slot is known between the script's send and its answer, plus the wait it returned: in server time, so a
    loaded machine's late wake-ups cannot make the test fail, and it still fails when two slots coincide."""
    _, results = shared_run
    slots = sorted((low, high) for worker in results for low, high in worker["started"])
    assert len(slots) == 18
    for i, (low_a, high_a) in enumerate(slots):
        for low_b, high_b in slots[i + 1 :]:
            assert max(high_b - low_a, high_a - low_b) >= 0.1 - 1e-3, slots
    assert slots[-1][0] - slots[0][1] < 17 * 0.1 + 0.5  # spaced, not stalled


def test_budget_is_shared_by_processes(shared_run):
    """The total passes the cap at most by what the requests in flight (one per process) cost beyond their
    reservations (the last of them reserved only what was left), and every payment is in the ledger."""
    from synthkit.calls.stores.redis_store import RedisStore

    server, results = shared_run
    paid = [worker["paid"] for worker in results]

    async def ledger():
        store = RedisStore(server.url)
        spent = await store.budget("sweep-1", 1.0).spent()
        await store.aclose()
        return spent

    spent = asyncio.run(ledger())
    assert spent == pytest.approx(sum(paid))
    assert sum(p > 0 for p in paid) >= 2  # they shared it (a process that starts last may find it spent)
    assert 1.0 <= spent <= 1.0 + 3 * 0.15 + 1e-9  # they stopped only once the cap was spent


def test_cache_written_by_one_process_is_read_by_another(shared_run):
    from synthkit.calls.providers.base import Completion
    from synthkit.calls.stores.redis_store import RedisStore

    server, _ = shared_run

    async def main():
        store = RedisStore(server.url)
        found = [await store.cache.get(f"key-{i}") for i in range(4)]
        await store.aclose()
        return found

    expected = [Completion('{"query": "naïve café"}', i, 34) for i in range(3)]
    assert asyncio.run(main()) == [*expected, None]


def test_tokens_correction_moves_the_schedule(redis_server):
    from synthkit.calls.stores.redis_store import RedisStore

    async def main():
        store = RedisStore(redis_server.url)
        rate = store.rate_limits("endpoint-b", rpm=None, tpm=6000)  # 100 tokens per second
        await rate.acquire(10)  # free: reserves 0.1 s
        await rate.settle(10, 40)  # used 30 more: the next slot moves 0.3 s further
        started = time.monotonic()
        await rate.acquire(1)
        await store.aclose()
        return time.monotonic() - started

    assert 0.3 <= asyncio.run(main()) < 1.5  # the lower bound is the point; a loaded machine adds to it


def test_budget_settles_once_and_releases(redis_server):
    from synthkit.calls.stores.base import BudgetBusy, BudgetExhausted
    from synthkit.calls.stores.redis_store import RedisStore

    async def main():
        store = RedisStore(redis_server.url)
        budget = store.budget("sweep-2", max_cost_usd=0.3)
        first = await budget.reserve(0.2)
        with pytest.raises(BudgetBusy, match=r"\$0.2000 reserved"):  # 0.2 reserved + 0.2 > 0.3: wait for it
            await budget.reserve(0.2)
        await budget.settle(first, 0.05)
        await budget.settle(first, 0.05)  # a retried settle is not charged twice
        assert await budget.spent() == pytest.approx(0.05)
        third = await budget.reserve(0.2)
        await budget.release(third)  # a failed request frees its reservation, costs nothing
        fourth = await budget.reserve(0.2)
        assert await budget.spent() == pytest.approx(0.05)
        await budget.settle(fourth, 0.2)
        last = await budget.reserve(0.2)  # 0.25 spent: alone, it reserves the 0.05 left
        assert float(await store.client.get(budget.keys[1])) == pytest.approx(0.05)
        await budget.settle(last, 0.2)
        with pytest.raises(BudgetExhausted, match=r"max_cost_usd=0.3 reached \(\$0.4500 spent"):
            await budget.reserve(0.01)
        await store.aclose()

    asyncio.run(main())


async def _script_runs(store) -> int:
    """Scripts the server ran (a first call of a script is refused NOSCRIPT, loaded and sent again)."""
    stats = (await store.client.info("commandstats")).get("cmdstat_evalsha", {"calls": 0})
    return stats["calls"] - stats.get("failed_calls", 0) - stats.get("rejected_calls", 0)


def test_a_request_admits_and_finishes_in_one_script_each(redis_server):
    """Before a request, one script answers from the cache or reserves and takes the rate slots; after it, one
    script settles, caches and corrects the tpm schedule. A retried finish is not charged twice."""
    from synthkit.calls.cost import Price
    from synthkit.calls.providers.base import Completion
    from synthkit.calls.stores.base import BudgetBusy
    from synthkit.calls.stores.redis_store import RedisStore
    from synthkit.calls.stores.shared import RedisStores, SharedBudget

    async def main():
        store = RedisStore(redis_server.url)
        ledger = store.budget("sweep-3", max_cost_usd=0.5)
        limits = store.rate_limits("endpoint-d", rpm=None, tpm=6000)  # 100 tokens per second

        async def schedule() -> float:  # when the tpm schedule's next token is free
            return float(await store.client.get(limits.tokens.name) or 0)

        stores = RedisStores(store.cache, limits, SharedBudget(Price(1e-3, 1e-3), 0.5, ledger), store)
        scripts = await _script_runs(store)
        cached, token, wait = await stores.admit("k", 100, 200, slot_tokens=10)  # estimate $0.30
        assert cached is None and token is not None and wait is not None and wait < 0.05  # a fresh schedule
        assert await _script_runs(store) == scripts + 1  # reserved and took its 10 tokens' slot at once
        first = await schedule()
        with pytest.raises(BudgetBusy):  # 0.30 reserved + 0.30 > 0.5: it waits for the first
            await stores.admit("j", 100, 200, slot_tokens=10)
        assert await schedule() == first  # a refused request takes no slot
        answer = Completion('{"query": "naïve"}', 20, 30)
        scripts = await _script_runs(store)
        assert await stores.finish("k", token, answer, 10) == pytest.approx(0.05)
        assert await _script_runs(store) == scripts + 1  # settled, cached, the schedule moved by 40 tokens more
        assert await schedule() == pytest.approx(first + 0.4)
        await ledger.finish(token, 0.05, "k", answer)  # the same finish again, as after a lost reply
        assert await ledger.spent() == pytest.approx(0.05)
        assert await stores.admit("k", 100, 200, slot_tokens=10) == (answer, None, None)  # a hit takes nothing
        assert await schedule() == pytest.approx(first + 0.4)
        cached, again, _ = await stores.admit("j", 100, 200)  # 0.05 spent + 0.30 fits now; its slots come later
        assert cached is None and again is not None and await schedule() == pytest.approx(first + 0.4)
        started = time.monotonic()
        await limits.acquire(1)  # waits out the 10 reserved and 40 corrected tokens
        waited = time.monotonic() - started
        await store.aclose()
        return waited

    assert 0.3 <= asyncio.run(main()) < 1.5  # the lower bound is the point; a loaded machine adds to it


@pytest.mark.parametrize(
    "raw",
    ["not json", "[1, 2]", '{"text": "x"}', '{"text": 1, "prompt_tokens": 1, "completion_tokens": 1}',
     '{"text": "x", "prompt_tokens": -1, "completion_tokens": 1}', '{"text": "x", "prompt_tokens": true, '
     '"completion_tokens": 1}'],
)  # fmt: skip
def test_a_cached_value_that_is_no_answer_is_a_miss(redis_server, raw):
    """Another writer's or a damaged value under a cache key: asked of the model again (and reserved), no traceback."""
    from synthkit.calls.cost import Price
    from synthkit.calls.stores.redis_store import RedisStore
    from synthkit.calls.stores.shared import RedisStores, SharedBudget

    async def main():
        store = RedisStore(redis_server.url)
        ledger = store.budget("sweep-4", max_cost_usd=1.0)
        stores = RedisStores(
            store.cache, store.rate_limits("e", None, None), SharedBudget(Price(1e-3, 1e-3), 1.0, ledger), store
        )
        await store.client.set(store.cache.key("k"), raw)
        got = await store.cache.get("k")
        cached, token, _ = await stores.admit("k", 100, 200)
        reserved = float(await store.client.get(ledger.keys[1]))
        await store.aclose()
        return got, cached, token, reserved

    got, cached, token, reserved = asyncio.run(main())
    assert got is None and cached is None and token is not None and reserved == pytest.approx(0.3)


def test_server_restart_mid_run_loses_nothing(redis_server, capsys):
    """The server stops after 10 of 30 steps and comes back a second later on the same port: the
    steps in between wait, one warning is printed, and every write is there at the end."""
    from synthkit.calls.providers.base import Completion
    from synthkit.calls.stores.redis_store import RedisStore

    store = RedisStore(redis_server.url, outage_s=20)
    restarted = threading.Event()

    def restart():
        redis_server.stop()
        time.sleep(1.0)
        redis_server.start()
        restarted.set()

    async def main():
        budget = store.budget("sweep-3", max_cost_usd=100.0)
        limits = store.rate_limits("endpoint-c", rpm=60000, tpm=None)
        for i in range(30):
            if i == 10:
                threading.Thread(target=restart).start()
                await asyncio.sleep(0.2)  # the server is down now
            await limits.acquire(0)
            token = await budget.reserve(0.5)
            await store.cache.put(f"k{i}", Completion(f"answer {i}", i, i))
            await budget.settle(token, 0.25)
        found = [await store.cache.get(f"k{i}") for i in range(30)]
        spent = await budget.spent()
        await store.aclose()
        return found, spent

    found, spent = asyncio.run(main())
    assert restarted.is_set()
    assert found == [Completion(f"answer {i}", i, i) for i in range(30)]
    assert spent == pytest.approx(30 * 0.25)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("synthkit: warning: the store at redis://"), warnings


def test_server_gone_for_good_stops_the_run(redis_server, capsys):
    from synthkit.calls.stores.base import StoreUnavailable
    from synthkit.calls.stores.redis_store import RedisStore

    store = RedisStore(redis_server.url, outage_s=0.5)
    redis_server.stop()

    async def main():
        try:
            await store.cache.get("k")
        finally:
            await store.aclose()

    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unreachable for 0.5 s"):
        asyncio.run(main())
    assert time.monotonic() - started < 3
    redis_server.start()  # for the fixture's stop


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis://:hunter2@127.0.0.1:6379/0", "must not contain a password.*SYNTHKIT_REDIS_PASSWORD"),
        ("redis://default:hunter2@127.0.0.1:6379/0", "must not contain a password"),
        ("redis://127.0.0.1:6379/0?password=hunter2", "must not contain a password"),
        ("http://127.0.0.1:6379/0", "only redis://"),
        ("redis://127.0.0.1:port/0", "not a valid URL"),
        ("redis://127.0.0.1:6379/zero", "database after the port must be a number"),
        ("redis:///0", "names no host"),
    ],
)
def test_url_mistakes_are_one_line_user_errors(url, message):
    from synthkit.calls.stores.redis_store import RedisStore

    with pytest.raises(UserError, match=message) as error:
        RedisStore(url, password_env="SYNTHKIT_REDIS_PASSWORD")
    assert "\n" not in str(error.value) and "hunter2" not in str(error.value)


def test_unreachable_server_and_missing_db_are_user_errors(redis_server):
    from synthkit.calls.stores.redis_store import RedisStore

    with pytest.raises(UserError, match="cannot reach the store at redis://127.0.0.1:.*Connection refused"):
        RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(UserError, match="DB index is out of range"):
        RedisStore(f"redis://127.0.0.1:{redis_server.port}/999")


def test_password_comes_from_the_environment(tmp_path, monkeypatch):
    if REDIS_SERVER is None:
        pytest.skip(NO_SERVER)
    from synthkit.calls.stores.redis_store import RedisStore

    server = RedisServer(tmp_path, password="s3cret-pw")
    try:
        monkeypatch.delenv("SYNTHKIT_REDIS_PASSWORD", raising=False)
        with pytest.raises(UserError, match="refused the login.*set SYNTHKIT_REDIS_PASSWORD"):
            RedisStore(server.url, password_env="SYNTHKIT_REDIS_PASSWORD")
        monkeypatch.setenv("SYNTHKIT_REDIS_PASSWORD", "wrong")
        with pytest.raises(UserError, match="refused the login.*check SYNTHKIT_REDIS_PASSWORD") as error:
            RedisStore(server.url, password_env="SYNTHKIT_REDIS_PASSWORD")
        assert "wrong" not in str(error.value).replace("wrongpass", "")
        monkeypatch.setenv("SYNTHKIT_REDIS_PASSWORD", "s3cret-pw")
        store = RedisStore(server.url, password_env="SYNTHKIT_REDIS_PASSWORD")

        async def main():
            try:
                return await store.cache.get("absent")
            finally:
                await store.aclose()

        assert asyncio.run(main()) is None
    finally:
        server.stop()


MOUNTINFO = textwrap.dedent(r"""
    22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
    30 22 0:40 / /mnt/shared rw,relatime shared:12 - nfs4 fs1:/export rw,vers=4.2
    31 30 8:2 / /mnt/shared/local rw,relatime shared:13 - ext4 /dev/sdb1 rw
    32 22 0:41 / /mnt/my\040share rw,relatime - cifs //nas/share rw
    33 22 0:42 / /scratch rw - lustre 10.0.0.1@tcp:/scratch rw
    34 22 0:43 / /scratch rw - tmpfs tmpfs rw
    35 22 0:44 / /home/u/remote rw,nosuid - fuse.sshfs u@host: rw
    36 22 0:45 / /gpfs rw master:3 propagate_from:1 - gpfs gpfs0 rw
""")


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/mnt/shared/cache", "nfs4"),
        ("/mnt/shared", "nfs4"),
        ("/mnt/shared/local/cache", None),  # a local disk mounted inside the NFS tree
        ("/mnt/sharedstuff/cache", None),  # a prefix of the name is not a parent directory
        ("/mnt/my share/x", "cifs"),  # spaces are octal escapes in the table
        ("/scratch/cache", None),  # mounted over: the later line wins
        ("/home/u/remote/c", "fuse.sshfs"),
        ("/gpfs/proj", "gpfs"),
        ("/home/u/.cache/synthkit", None),
    ],
)
def test_network_filesystem_from_the_mount_table(path, expected):
    assert network_filesystem(path, mountinfo=MOUNTINFO) == expected


def test_network_filesystem_of_this_machine_reads_the_real_table(tmp_path):
    # The test directory is local here (tmpfs or a disk); a garbled table reads as local too.
    assert network_filesystem(tmp_path) is None
    assert network_filesystem("/mnt/x", mountinfo="garbage\n1 2 3\n") is None

"""The off-chain index on a real embedded ledger, on SQLite and on a real PostgreSQL.

The ledger story: KZ issues three sealed AEO certificates and UZ one, KZ and UZ sign an
MRA, the KZ-KHORGOS operator anchors two consignments. Every filter of every list is
queried on both databases; a suspension is picked up by catch-up; a rebuild from block 0
gives identical rows; a block that cannot be indexed leaves nothing of itself behind.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from chaincode.timeutil import parse_time
from node.embedded.ledger import EmbeddedLedger
from node.index import BadQuery, Index, IndexFeedError, IndexUnavailable
from node.index import index as index_module
from node.index.tables import METADATA
from node.ledger import TxChanges
from tests.chaincode.conftest import aeo_record, aeo_write
from tests.chaincode.test_mra import ACT, proposal
from tests.chaincode.test_trace import event_hash
from tests.node.conftest import CHANNEL, Signers, genesis_arg, propose
from tests.node.test_scenario import Clock

SEZ = "KZ-KHORGOS"
REF_A = "26KZ0000042-KHG"
REF_B = "26KZ0000043-KHG"
MRA_ID = "MRA-KZ-UZ-2026"
STEPS = ["arriving", "inspecting", "storing", "loading", "departing"]


# ------------------------------------------------------------------ databases
@pytest.fixture
def open_index(index_url: Callable[[], str]) -> Iterator[Callable[..., Index]]:
    opened: list[Index] = []

    def make(**options: Any) -> Index:
        index = Index(index_url(), **options)
        opened.append(index)
        return index

    yield make
    for index in opened:
        index.close()


# ------------------------------------------------------------------ the ledger story
def trail(ref: str, first: int, start_hour: int, aeo_id: str | None) -> list[dict[str, Any]]:
    return [
        {
            "event_hash": event_hash(first + i),
            "consignment_ref": ref,
            "event_type": "TransactionEvent" if step == "departing" else "ObjectEvent",
            "biz_step": step,
            "disposition": "in_progress",
            "event_time": f"2026-11-24T{start_hour + i:02d}:00:00+05:00",
            "location": "urn:epc:id:sgln:4870001.00001.0",
            **({"aeo_id": aeo_id} if aeo_id else {}),
        }
        for i, step in enumerate(STEPS)
    ]


@dataclasses.dataclass
class Story:
    ledger: EmbeddedLedger
    clock: Clock
    signers: Signers
    aeos: dict[str, dict[str, Any]]

    def ok(self, who: str, function: str, arg: Any) -> Any:
        receipt = self.ledger.submit(
            propose(self.signers[who], function, arg, ts=self.clock.tick())
        )
        assert receipt.code == "VALID", (function, receipt)
        return receipt


def new_ledger(path: Path, signers: Signers, clock: Clock) -> EmbeddedLedger:
    genesis = propose(
        signers["kz-admin"],
        "InitLedger",
        genesis_arg(signers.pkis, "KZ", "UZ", "KG"),
        ts=clock.tick(),
    )
    return EmbeddedLedger.create(path, CHANNEL, genesis, signers["kz-node"], clock=clock)


def holder(name: str, tin: str, city: str, cc: str = "KZ") -> dict[str, Any]:
    address = {"street": "1 Dostyk", "city": city, "postcode": "041300", "country": cc}
    return {"tin": tin, "name": name, "address": address}


def tell_story(ledger: EmbeddedLedger, clock: Clock, signers: Signers) -> Story:
    story = Story(ledger, clock, signers, {})
    kz, uz = signers.pkis["KZ"], signers.pkis["UZ"]
    altyn = "ТОО «Алтын Жол»"  # noqa: RUF001 (Cyrillic on purpose)
    specs = [
        (
            "KZ-AEO-2026-000001",
            "AEOF",
            holder("Khorgos Logistics LLP", "KZ100000000001", "Zharkent"),
        ),
        ("KZ-AEO-2026-000002", "AEOC", holder(altyn, "KZ100000000002", "Almaty")),
        ("KZ-AEO-2026-000003", "AEOS", holder("Aktau Port Services", "KZ100000000003", "Aktau")),
    ]
    for aeo_id, aeo_type, who in specs:
        story.aeos[aeo_id] = aeo_record(clock, aeo_id, aeo_type=aeo_type, holder=who)
        story.ok("kz-officer", "IssueAeo", aeo_write(kz, story.aeos[aeo_id]))
    uz_aeo = aeo_record(
        clock, "UZ-AEO-2026-000001", holder=holder("Navoi Cargo", "UZ200000000001", "Navoi", "UZ")
    )
    story.aeos[uz_aeo["aeo_id"]] = uz_aeo
    story.ok("uz-officer", "IssueAeo", aeo_write(uz, uz_aeo))
    story.ok("uz-admin", "ProposeMra", proposal(clock))
    story.ok("uz-admin", "SignMra", {"mra_id": MRA_ID, **ACT})
    story.ok("kz-admin", "SignMra", {"mra_id": MRA_ID, **ACT})
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    story.ok(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": SEZ, "name": "Khorgos - Eastern Gate", "operator_subject": subject},
    )
    events = trail(REF_A, 1, 1, "KZ-AEO-2026-000001") + trail(REF_B, 100, 3, None)
    story.ok("kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": events[:7]})
    story.ok("kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": events[7:]})
    return story


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, signers: Signers) -> Iterator[Story]:
    clock = Clock()
    ledger = new_ledger(tmp_path_factory.mktemp("index") / "ledger.db", signers, clock)
    yield tell_story(ledger, clock, signers)
    ledger.close()


def at(clock: Clock, offset_s: int = 0) -> Callable[[], int]:
    """An index clock fixed at the story's time plus ``offset_s``."""
    frozen = (clock.clock + offset_s) * 10**6
    return lambda: frozen


def valid_txs(ledger: EmbeddedLedger) -> int:
    return sum(1 for _ in ledger.changes(0))


# ------------------------------------------------------------------ queries
def test_every_filter(story: Story, open_index: Callable[..., Index]) -> None:
    index = open_index(clock=at(story.clock, 3600))
    assert index.checkpoint().block == -1
    assert index.catch_up(story.ledger) == valid_txs(story.ledger) == story.ledger.height
    assert index.checkpoint().block == story.ledger.height - 1
    assert index.catch_up(story.ledger) == 0

    members = index.members().items
    assert [(m.msp_id, m.country) for m in members] == [
        ("KG-CUSTOMS", "KG"),
        ("KZ-CUSTOMS", "KZ"),
        ("UZ-CUSTOMS", "UZ"),
    ]
    assert {m.block for m in members} == {0}
    (sez,) = index.sezs().items
    assert (sez.sez, sez.msp_id, sez.operators) == (SEZ, "KZ-CUSTOMS", 1)

    def aeo_ids(**filters: Any) -> list[str]:
        return [a.aeo_id for a in index.aeos(**filters).items]

    kz_ids = ["KZ-AEO-2026-000001", "KZ-AEO-2026-000002", "KZ-AEO-2026-000003"]
    assert aeo_ids(country="KZ") == kz_ids
    assert aeo_ids(country="UZ") == ["UZ-AEO-2026-000001"]
    assert aeo_ids(country="KG") == []
    assert aeo_ids(country="KZ", status="valid") == kz_ids
    assert aeo_ids(status="suspended") == aeo_ids(status="expired") == []
    assert aeo_ids(holder="LOGISTICS") == ["KZ-AEO-2026-000001"]
    assert aeo_ids(holder="алтын жол") == ["KZ-AEO-2026-000002"]  # Cyrillic, any case
    assert aeo_ids(holder="  port ") == ["KZ-AEO-2026-000003"]
    assert aeo_ids(holder="%") == aeo_ids(holder="_") == []  # LIKE wildcards are literal
    assert aeo_ids(tin="KZ100000000002") == ["KZ-AEO-2026-000002"]
    assert aeo_ids(issuer="UZ-CUSTOMS") == ["UZ-AEO-2026-000001"]
    assert aeo_ids(issuer="KZ-CUSTOMS", holder="aktau", country="KZ") == ["KZ-AEO-2026-000003"]
    (entry,) = index.aeos(tin="KZ100000000001").items
    record = story.aeos[entry.aeo_id]
    assert (entry.holder_name, entry.holder_city, entry.aeo_type, entry.version) == (
        "Khorgos Logistics LLP",
        "Zharkent",
        "AEOF",
        1,
    )
    assert parse_time(entry.valid_until) == parse_time(record["valid_until"])
    assert entry.status == "valid" and entry.mra_sharing_consent is True

    (mra,) = index.mras(party="KZ-CUSTOMS").items
    assert (mra.mra_id, mra.parties, mra.state) == (
        MRA_ID,
        ["KZ-CUSTOMS", "UZ-CUSTOMS"],
        "in_force",
    )
    assert index.mras(party="KG-CUSTOMS").items == []
    assert [m.mra_id for m in index.mras(state="in_force").items] == [MRA_ID]
    assert index.mras(state="negotiating").items == index.mras(state="terminated").items == []

    def steps(**filters: Any) -> list[tuple[str, int, str]]:
        return [(e.consignment_ref, e.seq, e.biz_step) for e in index.events(**filters).items]

    trail_a = steps(consignment_ref=REF_A)
    assert trail_a == [(REF_A, i + 1, s) for i, s in enumerate(STEPS)]
    assert len(steps(sez=SEZ)) == 10
    # A at 01..05h, B at 03..07h (+05:00): 22:00Z and 23:00Z hold A3, B1, A4, B2
    window = steps(sez=SEZ, since="2026-11-23T22:00:00Z", until="2026-11-24T00:00:00Z")
    assert [w[1:] for w in window[:2]] != [w[1:] for w in window[2:]]
    assert sorted(window[:2]) == [(REF_A, 3, "storing"), (REF_B, 1, "arriving")]
    assert sorted(window[2:]) == [(REF_A, 4, "loading"), (REF_B, 2, "inspecting")]
    assert steps(event_type="TransactionEvent") == [
        (REF_A, 5, "departing"),
        (REF_B, 5, "departing"),
    ]
    assert steps(aeo_id="KZ-AEO-2026-000001") == trail_a
    assert steps(since="2026-11-25") == []
    (last,) = index.events(consignment_ref=REF_B, since="2026-11-24T07:00:00+05:00").items
    assert (last.seq, last.prev_event_hash, last.corrects) == (5, event_hash(103), [])
    assert last.event_time == "2026-11-24T02:00:00Z" and last.aeo_id is None


def test_derived_states_follow_the_index_clock(
    story: Story, open_index: Callable[..., Index]
) -> None:
    """expired = valid past valid_until; signed before effective_from, in force after."""
    later = open_index(clock=at(story.clock, 10 * 365 * 86400))
    later.catch_up(story.ledger)
    assert [a.status for a in later.aeos(country="KZ").items] == ["expired"] * 3
    assert later.aeos(status="valid").items == []
    assert len(later.aeos(status="expired").items) == 4
    mra = story.ledger.evaluate("GetMra", [json.dumps({"mra_id": MRA_ID})])
    effective = json.loads(mra.payload)["effective_from_us"] // 10**6
    before = open_index(clock=at(story.clock, effective - story.clock.clock - 1))
    before.catch_up(story.ledger)
    assert [m.state for m in before.mras(state="signed").items] == ["signed"]
    assert before.mras(state="in_force").items == []


def test_pages_walk_every_row_once(story: Story, open_index: Callable[..., Index]) -> None:
    index = open_index(clock=at(story.clock))
    index.catch_up(story.ledger)
    for query in (index.aeos, index.events, index.members):
        everything = query(limit=500).items
        seen: list[Any] = []
        cursor = None
        while True:
            page = query(limit=3, cursor=cursor)
            seen += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == everything and len(everything) >= 3
    trail = index.events(consignment_ref=REF_A, limit=2)
    rest = index.events(consignment_ref=REF_A, limit=500, cursor=trail.next_cursor)
    assert [e.seq for e in trail.items + rest.items] == [1, 2, 3, 4, 5]
    assert rest.next_cursor is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ix: ix.aeos(status="bogus"), "status must be one of valid, suspended"),
        (lambda ix: ix.aeos(country="kz"), "country 'kz' is not an ISO 3166 code"),
        (lambda ix: ix.aeos(tin="not a tin"), "tin 'not a tin' is not a TIN"),
        (lambda ix: ix.aeos(holder="   "), "holder must not be blank"),
        (lambda ix: ix.aeos(holder="x" * 201), "holder is longer than 200 characters"),
        (lambda ix: ix.aeos(limit=0), "limit must be an integer from 1 to 500"),
        (lambda ix: ix.aeos(limit=501), "limit must be an integer from 1 to 500"),
        (lambda ix: ix.aeos(cursor="!!"), "cursor is not one this list returned"),
        (lambda ix: ix.mras(state="active"), "state must be one of negotiating"),
        (lambda ix: ix.mras(party="KZ CUSTOMS"), "party 'KZ CUSTOMS' is not an MSP id"),
        (lambda ix: ix.events(since="yesterday"), "since 'yesterday' is not an RFC 3339"),
        (lambda ix: ix.events(until="2026-02-30"), "until '2026-02-30' is not a valid date"),
        (lambda ix: ix.events(since="2026-11-02", until="2026-11-01"), "since must be before"),
        (lambda ix: ix.events(event_type="Object"), "event_type must be one of ObjectEvent"),
        (lambda ix: ix.events(sez="khorgos"), "sez 'khorgos' is not an SEZ code"),
    ],
)
def test_bad_filters_are_400(call: Callable[[Index], Any], message: str, tmp_path: Path) -> None:
    with Index(f"sqlite:///{tmp_path / 'index.db'}") as index, pytest.raises(BadQuery) as caught:
        call(index)
    assert caught.value.status == 400 and caught.value.code == "BAD_QUERY"
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_cursor_of_another_list_is_refused(story: Story, tmp_path: Path) -> None:
    with Index(f"sqlite:///{tmp_path / 'index.db'}") as index:
        index.catch_up(story.ledger)
        cursor = index.members(limit=1).next_cursor
        assert cursor is not None
        with pytest.raises(BadQuery, match="cursor is not one this list returned"):
            index.aeos(cursor=cursor)
        with pytest.raises(BadQuery, match="cursor is not one this list returned"):
            index.events(consignment_ref=REF_A, cursor=index.events(limit=1).next_cursor)


def test_unusable_urls_are_named_errors(tmp_path: Path) -> None:
    for url, message in [
        ("not a url", "the index URL is not a database URL"),
        ("mysql://x@localhost/db", "the index URL mysql://x@localhost/db is neither SQLite"),
        (f"sqlite:///{tmp_path}/missing/dir/index.db", "the index database cannot be opened"),
    ]:
        with pytest.raises(IndexUnavailable) as caught:
            Index(url)
        assert str(caught.value).startswith(message) and caught.value.status == 503


def test_postgresql_down_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # a port nothing listens on (bound, never listening)
        url = f"postgresql://caravan@127.0.0.1:{s.getsockname()[1]}/caravan?connect_timeout=2"
        with pytest.raises(IndexUnavailable, match="the index database cannot be opened"):
            Index(url)


# ------------------------------------------------------------------ feeding
def test_two_feeders_on_one_database(story: Story, index_url: Callable[[], str]) -> None:
    url = index_url()
    with Index(url) as first, Index(url) as second:
        assert first.catch_up(story.ledger) == story.ledger.height
        assert second.catch_up(story.ledger) == 0  # the checkpoint is in the database
        assert second.dump() == first.dump()
        assert second.checkpoint() == first.checkpoint()


def test_catch_up_follows_changes_and_rebuild_gives_the_same_rows(
    tmp_path: Path, signers: Signers, open_index: Callable[..., Index]
) -> None:
    clock = Clock()
    ledger = new_ledger(tmp_path / "ledger.db", signers, clock)
    try:
        index = open_index(clock=at(clock))
        story = tell_story(ledger, clock, signers)
        index.catch_up(ledger)
        aeo = story.aeos["KZ-AEO-2026-000001"]
        suspended = {
            **aeo,
            "status": "suspended",
            "status_reason": "audit findings",
            "status_effective_at": clock.iso(1),
        }
        clock.clock += 60  # the MRA is in force
        receipt = story.ok("kz-officer", "SuspendAeo", aeo_write(signers.pkis["KZ"], suspended))
        story.ok("uz-admin", "SuspendMra", {"mra_id": MRA_ID, **ACT, "reason": "review"})
        assert index.catch_up(ledger) == 2
        (row,) = index.aeos(status="suspended").items
        assert (row.aeo_id, row.version, row.tx_id, row.block) == (
            aeo["aeo_id"],
            2,
            receipt.tx_id,
            receipt.block,
        )
        assert [a.aeo_id for a in index.aeos(country="KZ", status="valid").items] == [
            "KZ-AEO-2026-000002",
            "KZ-AEO-2026-000003",
        ]
        assert [m.state for m in index.mras(party="UZ-CUSTOMS").items] == ["suspended"]
        assert index.checkpoint().block == ledger.height - 1

        incremental = index.dump()
        assert index.catch_up(ledger) == 0 and index.dump() == incremental
        assert index.rebuild(ledger) == valid_txs(ledger)
        assert index.dump() == incremental
        fresh = open_index()  # another database, indexed in one go
        fresh.catch_up(ledger)
        assert fresh.dump() == incremental
        assert len(incremental["events"]) == 10 and len(incremental["mra_party"]) == 2
    finally:
        ledger.close()


class Corrupting:
    """The ledger's real changes, with one write's value replaced (a value the index
    cannot map): what a crash in the middle of a block looks like to the database."""

    def __init__(self, ledger: EmbeddedLedger, tx_id: str) -> None:
        self.ledger, self.tx_id = ledger, tx_id

    @property
    def height(self) -> int:
        return self.ledger.height

    def changes(self, from_block: int = 0) -> Iterator[TxChanges]:
        for change in self.ledger.changes(from_block):
            if change.tx_id == self.tx_id:
                writes = tuple(
                    (k, b'{"aeo_id": 1}' if k.startswith("\x00aeo\x00") else v)
                    for k, v in change.writes
                )
                change = dataclasses.replace(change, writes=writes)
            yield change


def test_a_block_is_indexed_whole_or_not_at_all(
    tmp_path: Path, signers: Signers, open_index: Callable[..., Index]
) -> None:
    clock = Clock()
    ledger = new_ledger(tmp_path / "ledger.db", signers, clock)
    try:
        kz = signers.pkis["KZ"]
        records = [aeo_record(clock, f"KZ-AEO-2026-00010{n}") for n in range(3)]
        first = ledger.submit(
            propose(signers["kz-officer"], "IssueAeo", aeo_write(kz, records[0]), ts=clock.tick())
        )
        pair = ledger.submit_many(
            [
                propose(signers["kz-officer"], "IssueAeo", aeo_write(kz, r), ts=clock.tick())
                for r in records[1:]
            ]
        )
        assert [r.code for r in pair] == ["VALID", "VALID"] and first.block is not None
        assert pair[0].block == pair[1].block == first.block + 1 == ledger.height - 1

        index = open_index(clock=at(clock))
        with pytest.raises(IndexFeedError) as caught:
            index.catch_up(Corrupting(ledger, pair[1].tx_id))
        assert f"block {pair[1].block} tx {pair[1].tx_id}" in str(caught.value)
        assert caught.value.status == 500
        # the block before is in; nothing of the failed block, not even its first tx
        cp = index.checkpoint()
        assert (cp.block, cp.tx_id) == (first.block, first.tx_id)
        assert [a.aeo_id for a in index.aeos().items] == [records[0]["aeo_id"]]
        # the real ledger then completes the index exactly as a rebuild does
        assert index.catch_up(ledger) == 2
        assert index.checkpoint().block == ledger.height - 1
        done = index.dump()
        index.rebuild(ledger)
        assert index.dump() == done
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def ten_thousand_events(
    tmp_path_factory: pytest.TempPathFactory, signers: Signers
) -> Iterator[tuple[EmbeddedLedger, Clock]]:
    """A ledger with 10,000 anchored events in 10 transactions of 1,000 (one block)."""
    clock = Clock()
    ledger = new_ledger(tmp_path_factory.mktemp("big") / "ledger.db", signers, clock)
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    Story(ledger, clock, signers, {}).ok(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": SEZ, "name": "Khorgos - Eastern Gate", "operator_subject": subject},
    )
    batches = []
    for b in range(10):
        events = [
            {
                "event_hash": event_hash(100_000 + b * 1000 + i),
                "consignment_ref": f"26KZ{b * 1000 + i:07d}-KHG",
                "event_type": "ObjectEvent",
                "biz_step": "arriving",
                "disposition": "in_transit",
                "event_time": f"2026-11-24T{b:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "location": "urn:epc:id:sgln:4870001.00001.0",
            }
            for i in range(1000)
        ]
        batches.append(
            propose(
                signers["kz-khorgos"],
                "AnchorEvents",
                {"sez": SEZ, "events": events},
                ts=clock.tick(),
            )
        )
    assert all(r.valid for r in ledger.submit_many(batches))
    yield ledger, clock
    ledger.close()


def test_ten_thousand_events_index_in_seconds(
    ten_thousand_events: tuple[EmbeddedLedger, Clock],
    open_index: Callable[..., Index],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bulk inserts per block; the rate is printed (not asserted: no timed assertions)."""
    ledger, clock = ten_thousand_events
    index = open_index(clock=at(clock))
    started = time.perf_counter()
    index.catch_up(ledger)
    elapsed = time.perf_counter() - started
    assert len(index.events(sez=SEZ, limit=500).items) == 500
    assert len(index.dump()["events"]) == 10_000
    with capsys.disabled():
        kind = index.engine.dialect.name
        print(f"\nindexed 10,000 events on {kind} in {elapsed:.2f} s ({10_000 / elapsed:,.0f}/s)")


def test_an_index_being_created_by_another_process_is_waited_for_and_used(
    index_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node and its index feeder may open a new index at the same moment. An opener
    finds the other one's schema and checkpoint row: on SQLite it waits for the write
    lock and then sees them (no collision), on PostgreSQL its CREATE collides with the
    other's committed one and the second look finds them."""
    url = index_url()
    collisions: list[bool] = []
    check = index_module._created_meanwhile
    monkeypatch.setattr(
        index_module, "_created_meanwhile", lambda exc: collisions.append(check(exc)) or True
    )
    other = create_engine(url)
    opened: list[Index] = []
    try:
        with other.connect() as conn:  # the other process, mid-creation
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            METADATA.create_all(conn)
            checkpoint = METADATA.tables["checkpoint"]
            conn.execute(insert(checkpoint).values(id=1, block=41, tx_index=0, tx_id="t"))
            opener = threading.Thread(target=lambda: opened.append(Index(url)))
            opener.start()
            time.sleep(0.3)
            assert opener.is_alive() and not opened  # held up by the other's creation
            conn.commit()
        opener.join(10)
        assert [index.checkpoint().block for index in opened] == [41]
        if other.dialect.name == "sqlite":
            assert collisions == []
        else:
            assert collisions and all(collisions)  # each one a "created meanwhile"
    finally:
        for index in opened:
            index.close()
        other.dispose()

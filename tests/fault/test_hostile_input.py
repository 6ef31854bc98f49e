"""Hostile input into every input topic of every registered worker (issue 8).

At least 10,000 hypothesis-generated records go into each input topic of each worker in
``workers.registry.WORKERS`` (its binding's ``inputs`` and its ``repartition`` topic; a topic two workers
read, such as received, gets them once and both judge them): invalid JSON and UTF-8, wrong types, huge and
empty fields, nesting thousands deep, control characters and NULs, unknown enum values, CloudEvent types
that are objects, lists or numbers, unknown and known-but-wrong event types, replayed and out-of-order
valid records, records near and over the 1 MiB limit, with valid records mixed in. The run itself is the
package fixture ``hostile_run`` (conftest.py); these tests check that

* every record is accounted for, by every worker that reads it: one that the worker's pure decoder
  rejects is on the dead-letter topic under that worker's stage with its source topic, partition and
  offset and a reason of the kind the decoder gives, and its size and SHA-256 (truncated or not); one that
  decodes has its effect (re-keyed byte for byte, received, classified, a case opened) and no dead letter,
  except that a stage with rules (the lifecycle) may refuse it: then its one dead letter says ``refused``
  and names one of the rules the stage has (an update about a complaint it never saw is parked for the
  grace and then refused as ``unknown_complaint`` by its timer). What the workers wrote onto each
  other's input topics is held to the same (intake's received complaints, classify's classifications, the
  lifecycle's outcomes and links);
* no worker crashed: same process, still running, ``/healthz`` answers, no traceback in its log;
* no valid record was lost.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import pytest

from complaint_stream.domain.intake import complaint_id_for
from complaint_stream.domain.lifecycle.stage import MAX_PARKED_BYTES
from complaint_stream.schemas import (
    REGISTRY,
    CaseChange,
    CaseUpdated,
    ChannelSubmission,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    DeadLetterKind,
    DecodeError,
    PreviousHandler,
    SlaEvent,
    TeamWork,
    TicketStatus,
    decode,
)
from complaint_stream.topics import ASSIGN_LINKS, ASSIGN_WORK, ASSIGNED, CASES, CLASSIFIED, RECEIVED, SLA_EVENTS
from complaint_stream.workers.registry import WORKERS
from tests.fault.conftest import PER_TOPIC
from tests.fault.hostile import (
    expected_dead_letter_fields,
    parked_copy_sha256,
    refusal_rules,
    refused_rule,
    sha256,
    sources,
)
from tests.support import reliability

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.timeout(900)]

VALID_KINDS = {"valid", "replay", "out_of_order"}


def show(problems: list[str], limit: int = 25, run=None) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problems:\n" + "\n".join(problems[:limit]) + more + rebalances(run)


def rebalances(run) -> str:
    """How often each worker's group was assigned partitions during the run (once when nothing disturbed it):
    after a rebalance the records acknowledged but not yet committed are handled again (at-least-once)."""
    if run is None:
        return ""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, int | str] = {}
    for name, state in sorted(run.states.items()):
        values = [s.value for family in text_string_to_metric_families(state.metrics)
                  for s in family.samples if s.name == "complaints_rebalances_total"]
        counts[name] = int(sum(values)) if values else "?"
    return f"\npartition assignments per worker during the run: {counts}"


def describe(rec) -> str:
    head = (rec.value or b"")[:120]
    return f"{rec.kind} record {rec.topic}[{rec.partition}]@{rec.offset} ({rec.size} bytes, key {rec.key!r:.40}): {head!r}"


def opens_cases(e) -> bool:
    """The reader keeps case records: a received and a classified complaint open a case there."""
    return CASES in e.input.stage.produces


# -- what the workers wrote, indexed -------------------------------------------------------------

def sent_coords(run) -> set[tuple[str, int | None, int | None]]:
    return {r.coords for r in run.recs}


def produced(run, topic: str) -> list:
    """Records the workers wrote to ``topic`` during the run (not the ones the test published there)."""
    ours = sent_coords(run)
    return [raw for raw in run.out.get(topic, []) if (raw.topic, raw.partition, raw.offset) not in ours]


def decoded(raws, payload):
    out = []
    for raw in raws:
        try:
            out.append((raw, decode(raw.value, [payload]).data))
        except DecodeError:
            pass
    return out


@pytest.fixture(scope="module")
def effects(hostile_run):
    """Outputs of the run: intake's received complaints, classified ids, re-keyed copies, cases opened."""
    run = hostile_run
    received = decoded(produced(run, RECEIVED.name), ComplaintReceived)
    classified = Counter(c.complaint_id for _raw, c in decoded(produced(run, CLASSIFIED.name), ComplaintClassified))
    rekeyed: dict[tuple[str, bytes | None, str], list] = defaultdict(list)
    for t in run.inputs:
        if t.binding.repartition is not None:
            for raw in produced(run, t.binding.repartition.name):
                rekeyed[(raw.topic, raw.key, sha256(raw.value))].append(raw)
    changes = [c for _raw, c in decoded(produced(run, CASES.name), CaseUpdated)]
    opened = Counter(c.complaint_id for c in changes if c.change is CaseChange.OPENED)
    offered = {w.complaint_id for _raw, w in decoded(produced(run, ASSIGN_WORK.name), TeamWork) if w.kind == "offer"}
    assigned = {a.complaint_id for _raw, a in decoded(produced(run, ASSIGNED.name), ComplaintAssigned)}
    answered = {(h.complaint_id, h.other_id) for _raw, h in decoded(produced(run, ASSIGN_LINKS.name), PreviousHandler)
                if h.kind == "answer"}
    clocked = {e.complaint_id for _raw, e in decoded(produced(run, SLA_EVENTS.name), SlaEvent)}
    return {"received": received, "classified": classified, "rekeyed": rekeyed, "opened": opened,
            "changes": Counter(c.change.value for c in changes), "offered": offered, "assigned": assigned,
            "answered": answered, "clocked": clocked}


def everything(run) -> list:
    """Every record a worker read, with its reader: the test's records and what workers wrote to each other."""
    return [*run.expected, *run.fed]


# -- the summary ---------------------------------------------------------------------------------

def test_summary_and_every_input_topic_of_every_registered_worker_got_its_records(hostile_run, effects):
    run = hostile_run
    per_topic = Counter(r.topic for r in run.recs)
    for name, entry in WORKERS.items():
        binding = entry.load().binding(run.settings)
        wanted = [t.name for t in binding.inputs] + ([binding.repartition.name] if binding.repartition else [])
        for topic in wanted:
            assert per_topic[topic] >= PER_TOPIC, f"{name} input {topic} got only {per_topic[topic]} records"
    assert all(r.offset is not None for r in run.recs)
    letters = [x.letter for xs in (*run.letters.values(), *run.parked_letters.values()) for x in xs]
    kinds = Counter(f"{x.stage}:{x.error.type}" for x in letters)
    rules = Counter(refused_rule(x.error.message) for x in letters if x.error.type == DeadLetterKind.REFUSED)
    valid = sum(1 for e in run.expected if e.error is None)
    line = (f"fault run: {len(run.recs)} records ({', '.join(f'{t} {n}' for t, n in sorted(per_topic.items()))});"
            f" {valid} of {len(run.expected)} (record, reader) pairs decode; {len(run.fed)} records workers wrote"
            f" for each other; dead letters by stage and kind: {dict(sorted(kinds.items()))}"
            f" ({sum(map(len, run.parked_letters.values()))} of them from parked updates);"
            f" refused by rule: {dict(rules.most_common())}; case changes: {dict(effects['changes'].most_common())};"
            f" {len(run.world.phones)} phone numbers; read back: {sum(n for n, _b in run.volume.values())} records,"
            f" {sum(b for _n, b in run.volume.values()) / 1e6:.0f} MB; seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items()))
    reliability.summary(line)


def test_records_over_the_size_limit_never_reach_the_topic(hostile_run):
    """The producer refuses a record over its max_request_size; one allowed larger requests is refused by
    the broker (message.max.bytes). Neither reaches a topic, so no worker ever sees it."""
    for topic, errors in hostile_run.over_limit.items():
        assert errors == ["MessageSizeTooLargeError", "MessageSizeTooLargeError"], (topic, errors)
    near = [r for r in hostile_run.recs if r.kind == "near_limit"]
    assert len(near) >= 6 * len(sources(hostile_run.inputs)) and all(r.offset is not None for r in near)


# -- (a) every record accounted for ----------------------------------------------------------------

def test_every_record_that_does_not_decode_is_dead_lettered_with_the_decoders_reason(hostile_run):
    run = hostile_run
    problems = []
    checked = 0
    for e in everything(run):
        if e.error is None:
            continue
        checked += 1
        stage = e.input.stage.name
        letters = run.letters_of(e)
        if len(letters) != 1:
            others = [x.letter.stage for x in run.letters.get(e.rec.coords, [])]
            problems.append(f"{len(letters)} dead letters of {stage} for {describe(e.rec)} (expected one,"
                            f" {e.error.kind}; letters of all stages: {others})")
            continue
        dl = letters[0].letter
        if dl.error.type != e.error.kind:
            problems.append(f"{stage}'s dead letter says {dl.error.type} ({dl.error.message[:200]}) but the"
                            f" decoder says {e.error.kind} ({e.error.message[:200]}) for {describe(e.rec)}")
        want = expected_dead_letter_fields(e.rec)
        if e.rec.kind == "produced":
            want.pop("truncated")  # the workers' own headers are not known here
        got = {k: getattr(dl, k) for k in want}
        if got != want:
            diff = {k: (str(got[k])[:80], str(want[k])[:80]) for k in want if got[k] != want[k]}
            problems.append(f"dead letter of {describe(e.rec)} differs (got, want): {diff}")
        if not dl.error.message:
            problems.append(f"dead letter without a reason: {describe(e.rec)}")
    assert checked > 0
    assert not problems, show(problems, run=run)


def refusals(e, letters, rules) -> list[str]:
    """What is wrong with the dead letters of a decodable record: any at all where the stage refuses nothing;
    else any that is not ``refused``, names a rule the stage does not have, or comes twice."""
    if not rules:
        return [f"{x.letter.error.type}: {x.letter.error.message[:300]}" for x in letters]
    wrong = [f"{x.letter.error.type}: {x.letter.error.message[:300]}" for x in letters
             if x.letter.error.type != DeadLetterKind.REFUSED or refused_rule(x.letter.error.message) not in rules]
    direct = [x for x in letters if x.letter.source_offset is not None]
    if len(direct) > 1:
        wrong.append(f"{len(direct)} refusals of one record: {[x.letter.error.message[:80] for x in direct]}")
    return wrong


def test_every_record_that_decodes_has_its_effect_and_no_dead_letter_but_a_refusal(hostile_run, effects):
    run = hostile_run
    problems = []
    rekeyed = {k: list(v) for k, v in effects["rekeyed"].items()}
    submissions: dict[str, list] = defaultdict(list)
    rules = {t.stage.name: refusal_rules(t.stage) for t in run.inputs}
    ended_cases = {e.envelope.data.complaint_id for e in everything(run)
                   if e.error is None and isinstance(e.envelope.data, CaseUpdated)
                   and e.envelope.data.status in (TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.REJECTED)}
    for e in everything(run):
        if e.error is not None:
            continue
        env, rec, topic = e.envelope, e.rec, e.input
        problems += [f"decodable {describe(rec)} was dead-lettered by {topic.stage.name}: {why}"
                     for why in refusals(e, run.letters_of(e), rules[topic.stage.name])]
        repartition = topic.binding.repartition
        if repartition is not None and rec.topic != repartition.name:
            key = str(topic.stage.state_key(env)).encode()
            copies = rekeyed.get((repartition.name, key, sha256(rec.value)))
            if not copies:
                problems.append(f"decodable {describe(rec)} was not re-keyed to {repartition.name}")
                continue
            copy = copies.pop()
            for letter in run.letters.get((copy.topic, copy.partition, copy.offset), []):
                problems.append(f"re-keyed copy of {describe(rec)} was dead-lettered: {letter.letter.error.type}:"
                                f" {letter.letter.error.message[:300]}")
        data = env.data
        if opens_cases(e):
            continue  # refusals above; the cases it opens: test_every_received_and_classified_complaint_...
        if isinstance(data, ChannelSubmission):
            submissions[data.dedup_key].append(env)
        elif isinstance(data, ComplaintReceived):
            if data.complaint_id not in effects["classified"]:
                problems.append(f"received complaint {data.complaint_id} was never classified: {describe(rec)}")
        elif isinstance(data, (ComplaintResolved, ComplaintReopened)):
            pass  # a closing or reopen only changes the customer's history: no output to look for
        elif isinstance(data, ComplaintClassified) and topic.stage.name == "assign":
            # routed to a team (an offer on the work topic), unless a follow-up (the lifecycle attaches it)
            if data.follow_up_of is None and data.complaint_id not in effects["offered"]:
                problems.append(f"classified complaint {data.complaint_id} was never offered to a team: {describe(rec)}")
        elif isinstance(data, TeamWork) and data.kind == "offer" and data.agent_id is None:
            # queued or given to an agent; or refused (a team not in the roster, a full queue: a dead letter)
            if data.complaint_id not in effects["assigned"] and not run.letters_of(e):
                problems.append(f"offer of {data.complaint_id} to {data.team} had no assignment: {describe(rec)}")
        elif isinstance(data, PreviousHandler) and data.kind == "ask":
            # whoever asks gets an answer (known or not), keyed by the asker
            if (data.other_id, data.complaint_id) not in effects["answered"]:
                problems.append(f"{data.other_id} asked {data.complaint_id} for its previous handler and got no"
                                f" answer: {describe(rec)}")
        elif isinstance(data, CaseUpdated) and topic.stage.name == "sla":
            # an open case has clocks (started events) unless every change of it the SLA worker read had
            # ended it, or came after one that did (an ended case first seen starts nothing)
            if data.complaint_id not in effects["clocked"] and data.complaint_id not in ended_cases:
                problems.append(f"open case {data.complaint_id} ({data.status.value}) has no SLA clock: {describe(rec)}")
        elif topic.stage.name in ("assign", "dispatch"):
            pass  # ends, moves, returns, presence, priority: effects depend on state; refusals checked above
        else:
            problems.append(f"no effect oracle for {type(data).__name__} read by {topic.worker}: add one to {__name__}")

    # intake: each channel reference becomes exactly one received complaint, whichever retry came first
    by_ref: dict[str, list[str]] = defaultdict(list)
    for _raw, r in effects["received"]:
        by_ref[f"{r.channel.value}:{r.channel_ref}"].append(r.complaint_id)
    for dedup_key, envs in submissions.items():
        ids = by_ref.get(dedup_key, [])
        candidates = {complaint_id_for(env) for env in envs}
        if len(ids) != 1 or ids[0] not in candidates:
            problems.append(f"submission {dedup_key!r} ({len(envs)} records) became received complaints {ids},"
                            f" expected one of {sorted(candidates)[:3]}")
    assert submissions or not any(ChannelSubmission in t.accepted for t in run.inputs)
    assert not problems, show(problems, run=run)


def test_every_received_and_classified_complaint_opened_a_case(hostile_run, effects):
    """A complaint the lifecycle read both received and classified (from the test or from intake and
    classify), and classified as no follow-up of another complaint, has its case opened on the lifecycle
    topic (a ``CaseUpdated`` of change ``opened``), once — unless every receipt of it is too big for a case
    record (over ``MAX_PARKED_BYTES``, which intake never lets through): then each receipt is refused
    (``complaint_too_large``) and no case opens."""
    run = hostile_run

    def too_large(e) -> bool:
        return len(e.envelope.data.model_dump_json()) > MAX_PARKED_BYTES

    received, classified = defaultdict(list), defaultdict(list)
    for e in everything(run):
        if e.error is None and opens_cases(e):
            if isinstance(e.envelope.data, ComplaintReceived):
                received[e.envelope.data.complaint_id].append(e)
            elif isinstance(e.envelope.data, ComplaintClassified):
                classified[e.envelope.data.complaint_id].append(e)
    pairs = [cid for cid in received if cid in classified
             and all(c.envelope.data.follow_up_of in (None, cid) for c in classified[cid])]
    oversized = {cid for cid in pairs if all(too_large(e) for e in received[cid])}
    problems = [f"{cid}: a receipt over {MAX_PARKED_BYTES} bytes ({describe(e.rec)}) was not refused as"
                f" complaint_too_large: {[x.letter.error.message[:120] for x in run.letters_of(e)]}"
                for cid in oversized for e in received[cid]
                if [refused_rule(x.letter.error.message) for x in run.letters_of(e)
                    if x.letter.stage == "lifecycle"] != ["complaint_too_large"]]
    problems += [f"{cid} has only receipts over {MAX_PARKED_BYTES} bytes but its case was opened"
                 for cid in oversized if effects["opened"][cid]]
    pairs = [cid for cid in pairs if cid not in oversized]
    problems += [f"{cid} received ({describe(received[cid][0].rec)}) and classified ({len(classified[cid])} records,"
                f" e.g. {describe(classified[cid][0].rec)}) but its case was opened {effects['opened'][cid]} times"
                for cid in pairs if effects["opened"][cid] != 1]
    print(f"{len(pairs)} complaints received and classified, {len(effects['opened'])} cases opened,"
          f" {len(oversized)} refused as too large")
    assert len(pairs) >= PER_TOPIC // 10, f"only {len(pairs)} complaints were both received and classified"
    assert not problems, show(problems, run=run)


def test_no_dead_letter_is_unaccounted_for(hostile_run):
    """Every dead letter written during the run belongs to a record its stage read: one that does not decode,
    or one it refused (where the stage has rules) there or after parking it."""
    run = hostile_run
    readers = defaultdict(set)
    parked = set()
    for e in everything(run):
        readers[e.rec.coords].add(e.input.stage.name)
        if e.error is None and refusal_rules(e.input.stage):
            parked.add((e.input.stage.name, str(e.input.stage.state_key(e.envelope)).encode(),
                        parked_copy_sha256(e.envelope)))
    stray = [f"{coords}: {[(x.letter.stage, str(x.letter.error.type), x.letter.error.message[:200]) for x in letters]}"
             for coords, letters in run.letters.items()
             if any(x.letter.stage not in readers.get(coords, ()) for x in letters)]
    stray += [f"parked {key!r}: {[(x.letter.stage, x.letter.source_topic, x.letter.error.message[:200]) for x in xs]}"
              for (key, digest), xs in run.parked_letters.items()
              if any((x.letter.stage, key, digest) not in parked for x in xs)]
    assert run.undecodable_letters == [], f"{len(run.undecodable_letters)} dead letters that do not decode"
    assert not stray, show(stray)


def test_the_dead_letters_of_records_near_the_size_limit_were_written(hostile_run):
    """A ~1 MiB record's dead letter keeps its first 256 KiB (base64: ~341 KiB) and says truncated."""
    run = hostile_run
    for e in run.expected:
        if e.rec.kind == "near_limit" and e.error is not None:
            [letter] = run.letters_of(e)
            assert letter.letter.truncated and letter.letter.original_size == e.rec.size


def test_the_lifecycle_applied_refused_and_parked_updates(hostile_run, effects):
    """A guard against builders that drifted: the valid updates reach the lifecycle's rules. Some are applied
    (changes of many kinds), some refused (by several rules), some about unknown complaints expire."""
    run = hostile_run
    letters = [x.letter for xs in (*run.letters.values(), *run.parked_letters.values()) for x in xs
               if x.letter.error.type == DeadLetterKind.REFUSED]
    rules = Counter(refused_rule(x.error.message) for x in letters)
    expired = sum(1 for xs in run.parked_letters.values() for x in xs
                  if refused_rule(x.letter.error.message) == "unknown_complaint")
    changes = effects["changes"]
    assert {"opened", "status", "resolved", "note", "assigned", "sla", "escalated", "cancelled"} <= set(changes), changes
    assert len(rules) >= 8 and expired > 0, (rules, expired)


# -- (c) no valid record lost ------------------------------------------------------------------------

def test_no_valid_record_is_lost(hostile_run, effects):
    """Every valid record (from the factory: valid, replayed, out of order) decodes for every reader that
    accepts its type, and comes out: each submission as one received complaint, each received complaint
    (sent or made by intake) classified (the cases the lifecycle opens: the test above)."""
    run = hostile_run
    valid = [e for e in run.expected if e.rec.kind in VALID_KINDS]
    accepts = [REGISTRY[json.loads(e.rec.value)["type"]] in e.input.accepted for e in valid]
    mine = [e for e, ok in zip(valid, accepts, strict=True) if ok]
    assert valid and all(e.error is None for e in mine), [str(e.error) for e in mine if e.error][:5]
    others = [e for e, ok in zip(valid, accepts, strict=True) if not ok]
    assert all(e.error is not None and e.error.kind == DeadLetterKind.UNEXPECTED_EVENT_TYPE for e in others)
    refs = {f"{r.channel.value}:{r.channel_ref}" for _raw, r in effects["received"]}
    lost = []
    for e in mine:
        data = e.envelope.data
        if isinstance(data, ChannelSubmission) and data.dedup_key not in refs:
            lost.append(f"submission {data.dedup_key}")
        if isinstance(data, ComplaintReceived) and data.complaint_id not in effects["classified"]:
            lost.append(f"received {data.complaint_id}")
    ours = [r for _raw, r in effects["received"] if r.channel_ref.startswith(run.world.prefix)]
    lost += [f"intake's received {r.complaint_id}" for r in ours if r.complaint_id not in effects["classified"]]
    print(f"valid records: {len(valid)}; intake made {len(ours)} received complaints of ours;"
          f" {len(effects['classified'])} complaints classified")
    assert not lost, show(lost)


# -- (b) no worker crashed --------------------------------------------------------------------------

TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*\n|\n)*.*")


def tracebacks(text: str) -> list[str]:
    return [m.group(0)[-600:] for m in TRACEBACK.finditer(text)]


def test_every_worker_survived(hostile_run):
    """Noted once every record had been processed, before the workers were stopped."""
    run = hostile_run
    assert set(run.states) == set(WORKERS)
    problems = []
    for name, state in run.states.items():
        if state.pid_now != state.pid_started:
            problems.append(f"{name}: pid {state.pid_now}, started as {state.pid_started}")
        if state.exit_code is not None:
            problems.append(f"{name} exited with {state.exit_code}:\n{state.log[-3000:]}")
        if state.healthz != 200:
            problems.append(f"{name}: /healthz answered {state.healthz}")
        problems += [f"{name} logged a traceback:\n{tb}" for tb in tracebacks(state.log)]
        critical = [ln for ln in state.log.splitlines() if "CRITICAL" in ln]
        if critical:
            problems.append(f"{name} logged CRITICAL: {critical[:3]}")
        if "dead-lettered" not in state.log:
            problems.append(f"{name} logged no dead letter (is its log where the test reads it?)")
    assert not problems, show(problems, 10)


def test_every_dead_letter_kind_the_decoder_can_give_was_exercised(hostile_run):
    """The generator reaches every decode failure (a guard against a generator that drifted)."""
    kinds = {e.error.kind for e in hostile_run.expected if e.error is not None}
    assert kinds >= {DeadLetterKind.EMPTY_RECORD, DeadLetterKind.INVALID_ENCODING, DeadLetterKind.INVALID_JSON,
                     DeadLetterKind.SCHEMA_VIOLATION, DeadLetterKind.UNEXPECTED_EVENT_TYPE}, kinds

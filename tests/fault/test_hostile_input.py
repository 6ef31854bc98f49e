"""Hostile input into every input topic of every registered worker (issue 8).

At least 10,000 hypothesis-generated records go into each input topic of each worker in
``workers.registry.WORKERS`` (its binding's ``inputs`` and its ``repartition`` topic): invalid JSON and
UTF-8, wrong types, huge and empty fields, nesting thousands deep, control characters and NULs, unknown
enum values, CloudEvent types that are objects, lists or numbers, unknown and known-but-wrong event types,
replayed and out-of-order valid records, records near and over the 1 MiB limit, with valid records mixed
in. The run itself is the package fixture ``hostile_run`` (conftest.py); these tests check that

* every record is accounted for: one that the stage's pure decoder rejects is on the dead-letter topic
  with its source topic, partition and offset and a reason of the kind the decoder gives, and its size and
  SHA-256 (truncated or not); one that decodes has its effect (re-keyed byte for byte, received,
  classified) and no dead letter;
* no worker crashed: same process, still running, ``/healthz`` answers, no traceback in its log;
* no valid record was lost.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from complaint_stream.domain.intake import complaint_id_for
from complaint_stream.schemas import (
    ChannelSubmission,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintResolved,
    DeadLetterKind,
    DecodeError,
    decode,
)
from complaint_stream.topics import CLASSIFIED, RECEIVED
from complaint_stream.workers.registry import WORKERS
from tests.fault.conftest import PER_TOPIC
from tests.fault.hostile import expected_dead_letter_fields, sha256

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.timeout(600)]

VALID_KINDS = {"valid", "replay", "out_of_order"}


def show(problems: list[str], limit: int = 25) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} problems:\n" + "\n".join(problems[:limit]) + more


def describe(rec) -> str:
    head = (rec.value or b"")[:120]
    return f"{rec.kind} record {rec.topic}[{rec.partition}]@{rec.offset} ({rec.size} bytes, key {rec.key!r:.40}): {head!r}"


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
    """Outputs of the run: intake's received complaints, classified ids, re-keyed copies."""
    run = hostile_run
    received = decoded(produced(run, RECEIVED.name), ComplaintReceived)
    classified = Counter(c.complaint_id for _raw, c in decoded(produced(run, CLASSIFIED.name), ComplaintClassified))
    rekeyed: dict[tuple[str, bytes | None, str], list] = defaultdict(list)
    for t in run.inputs:
        if t.binding.repartition is not None:
            for raw in produced(run, t.binding.repartition.name):
                rekeyed[(raw.topic, raw.key, sha256(raw.value))].append(raw)
    return {"received": received, "classified": classified, "rekeyed": rekeyed}


# -- the summary ---------------------------------------------------------------------------------

def test_summary_and_every_input_topic_of_every_registered_worker_got_its_records(hostile_run, request):
    run = hostile_run
    per_topic = Counter(r.topic for r in run.recs)
    for name, entry in WORKERS.items():
        binding = entry.load().binding(run.settings)
        wanted = [t.name for t in binding.inputs] + ([binding.repartition.name] if binding.repartition else [])
        for topic in wanted:
            assert per_topic[topic] >= PER_TOPIC, f"{name} input {topic} got only {per_topic[topic]} records"
    assert all(r.offset is not None for r in run.recs)
    kinds = Counter(str(letter.letter.error.type) for letters in run.letters.values() for letter in letters)
    valid = sum(1 for e in run.expected if e.error is None)
    line = (f"fault run: {len(run.recs)} records ({', '.join(f'{t} {n}' for t, n in sorted(per_topic.items()))});"
            f" {valid} decode, {len(run.recs) - valid} do not; dead letters by kind: {dict(sorted(kinds.items()))};"
            f" {len(run.world.phones)} phone numbers; seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in run.timings.items()))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line(line)
    print(line)


def test_records_over_the_size_limit_never_reach_the_topic(hostile_run):
    """The producer refuses a record over its max_request_size; one allowed larger requests is refused by
    the broker (message.max.bytes). Neither reaches a topic, so no worker ever sees it."""
    for topic, errors in hostile_run.over_limit.items():
        assert errors == ["MessageSizeTooLargeError", "MessageSizeTooLargeError"], (topic, errors)
    near = [r for r in hostile_run.recs if r.kind == "near_limit"]
    assert len(near) >= 6 * len(hostile_run.inputs) and all(r.offset is not None for r in near)


# -- (a) every record accounted for ----------------------------------------------------------------

def test_every_record_that_does_not_decode_is_dead_lettered_with_the_decoders_reason(hostile_run):
    run = hostile_run
    problems = []
    checked = 0
    for e in run.expected:
        if e.error is None:
            continue
        checked += 1
        letters = run.letters.get(e.rec.coords, [])
        if len(letters) != 1:
            problems.append(f"{len(letters)} dead letters for {describe(e.rec)} (expected one, {e.error.kind})")
            continue
        dl = letters[0].letter
        if dl.error.type != e.error.kind:
            problems.append(f"dead letter says {dl.error.type} ({dl.error.message[:200]}) but the decoder says"
                            f" {e.error.kind} ({e.error.message[:200]}) for {describe(e.rec)}")
        if dl.stage != e.input.stage.name:
            problems.append(f"dead letter of stage {dl.stage}, expected {e.input.stage.name}: {describe(e.rec)}")
        want = expected_dead_letter_fields(e.rec)
        got = {k: getattr(dl, k) for k in want}
        if got != want:
            diff = {k: (str(got[k])[:80], str(want[k])[:80]) for k in want if got[k] != want[k]}
            problems.append(f"dead letter of {describe(e.rec)} differs (got, want): {diff}")
        if not dl.error.message:
            problems.append(f"dead letter without a reason: {describe(e.rec)}")
    assert checked > 0
    assert not problems, show(problems)


def test_every_record_that_decodes_has_its_effect_and_no_dead_letter(hostile_run, effects):
    run = hostile_run
    problems = []
    rekeyed = {k: list(v) for k, v in effects["rekeyed"].items()}
    submissions: dict[str, list] = defaultdict(list)
    for e in run.expected:
        if e.error is not None:
            continue
        env, rec, topic = e.envelope, e.rec, e.input
        for letter in run.letters.get(rec.coords, []):
            problems.append(f"decodable {describe(rec)} was dead-lettered: {letter.letter.error.type}:"
                            f" {letter.letter.error.message[:300]}")
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
        if isinstance(data, ChannelSubmission):
            submissions[data.dedup_key].append(env)
        elif isinstance(data, ComplaintReceived):
            if data.complaint_id not in effects["classified"]:
                problems.append(f"received complaint {data.complaint_id} was never classified: {describe(rec)}")
        elif isinstance(data, ComplaintResolved):
            pass  # a closing only changes the customer's history: no output to look for
        else:
            problems.append(f"no effect oracle for {type(data).__name__}: add one to {__name__}")

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
    assert not problems, show(problems)


def test_no_dead_letter_is_unaccounted_for(hostile_run):
    """Every dead letter written during the run belongs to a record that does not decode."""
    run = hostile_run
    undecodable = {e.rec.coords for e in run.expected if e.error is not None}
    stray = [f"{coords}: {[(str(x.letter.error.type), x.letter.error.message[:200]) for x in letters]}"
             for coords, letters in run.letters.items() if coords not in undecodable]
    assert run.undecodable_letters == [], f"{len(run.undecodable_letters)} dead letters that do not decode"
    assert not stray, show(stray)


def test_the_dead_letters_of_records_near_the_size_limit_were_written(hostile_run):
    """A ~1 MiB record's dead letter keeps its first 256 KiB (base64: ~341 KiB) and says truncated."""
    run = hostile_run
    for e in run.expected:
        if e.rec.kind == "near_limit" and e.error is not None:
            [letter] = run.letters[e.rec.coords]
            assert letter.letter.truncated and letter.letter.original_size == e.rec.size


# -- (c) no valid record lost ------------------------------------------------------------------------

def test_no_valid_record_is_lost(hostile_run, effects):
    """Every valid record (from the factory: valid, replayed, out of order) decodes and comes out: each
    submission as one received complaint, each received complaint (sent or made by intake) classified."""
    run = hostile_run
    valid = [e for e in run.expected if e.rec.kind in VALID_KINDS]
    assert valid and all(e.error is None for e in valid), [str(e.error) for e in valid if e.error][:5]
    refs = {f"{r.channel.value}:{r.channel_ref}" for _raw, r in effects["received"]}
    lost = []
    for e in valid:
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

"""The worker registry agrees with the catalogue, the CLI and the README."""

from __future__ import annotations

from pathlib import Path

from complaint_stream import topics
from complaint_stream.cli.main import build_parser
from complaint_stream.topics import Worker
from complaint_stream.workers.registry import WORKERS, replace_worker_table

REPO = Path(__file__).resolve().parents[3]


def test_every_built_stage_is_registered_and_only_those():
    assert set(WORKERS) == {str(w) for w in Worker if not w.planned}


def test_each_worker_reads_and_writes_only_what_the_catalogue_declares(base_settings):
    for name, entry in WORKERS.items():
        binding = entry.load().binding(base_settings)
        reads = {t.name for t in topics.consumed_by(name)}
        writes = {t.name for t in topics.produced_by(name)}
        assert {t.name for t in binding.inputs} <= reads, name
        assert {t.name for t in binding.stage.produces} | {topics.DEAD_LETTERS.name} <= writes, name
        if binding.repartition is not None:
            assert binding.repartition.name in reads and binding.repartition.name in writes, name


def test_the_cli_offers_exactly_the_registered_workers_and_stages():
    parser = build_parser()
    for command in ("worker", "replay"):
        args = parser.parse_args([command, "intake"] + (["-"] if command == "replay" else []))
        assert args.handler.__name__ == command
        sub = next(a for a in parser._subparsers._group_actions if command in a.choices).choices[command]
        choices = next(a.choices for a in sub._actions if a.dest in ("name", "stage"))
        assert list(choices) == list(WORKERS)


def test_the_readme_worker_table_is_the_rendered_registry(base_settings):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert replace_worker_table(readme, base_settings) == readme, (
        "README.md's worker table differs from the registry; regenerate it with\n"
        "  python -c \"from pathlib import Path; from complaint_stream.settings import load_settings;"
        " from complaint_stream.workers.registry import replace_worker_table as r;"
        " p = Path('README.md'); p.write_text(r(p.read_text(), load_settings(environ={})))\"")


def test_every_agent_of_every_worker_runs_at_concurrency_1(base_settings, tmp_path):
    # Records of a partition are applied in order, one batch at a time: the stage owns its state and
    # its outputs' order; more concurrency would apply a partition's records out of order.
    from prometheus_client import CollectorRegistry

    from complaint_stream.workers.runtime import create_worker

    settings = base_settings.with_overrides(state_dir=str(tmp_path))
    for name, entry in WORKERS.items():
        built = create_worker(entry, settings, registry=CollectorRegistry())
        assert built.agents and {a.concurrency for a in built.agents.values()} == {1}, name

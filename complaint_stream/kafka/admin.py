"""Create the catalogued topics and check the cluster against the catalogue."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError

from complaint_stream.kafka.clients import admin as make_admin
from complaint_stream.kafka.clients import effective_replication
from complaint_stream.settings import Settings
from complaint_stream.topics import ALL, TopicSpec


@dataclass(frozen=True)
class Drift:
    """One difference between the catalogue and the cluster."""

    topic: str
    what: str  # "missing", "partitions", "replication", or a config name
    expected: str
    actual: str

    def __str__(self) -> str:
        if self.what == "missing":
            return f"{self.topic}: missing"
        return f"{self.topic}: {self.what} is {self.actual}, catalogue says {self.expected}"


def create_topics(settings: Settings, specs: Iterable[TopicSpec] = ALL) -> tuple[list[str], list[str]]:
    """Create missing topics; return (created, already present). Idempotent."""
    client = make_admin(settings)
    created, present = [], []
    try:
        existing = set(client.list_topics())
        for spec in specs:
            if spec.name in existing:
                present.append(spec.name)
                continue
            rf = effective_replication(spec.replication_factor, settings)
            try:
                client.create_topics(
                    {spec.name: {"num_partitions": spec.partitions, "replication_factor": rf,
                                 "configs": spec.config(rf)}},
                    wait_for_metadata=True,
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:  # created concurrently by another process
                present.append(spec.name)
    finally:
        client.close()
    return created, present


def check_topics(settings: Settings, specs: Iterable[TopicSpec] = ALL) -> list[Drift]:
    """Compare partitions, replication and topic configs with the catalogue."""
    specs = list(specs)
    client = make_admin(settings)
    drifts: list[Drift] = []
    try:
        existing = set(client.list_topics())
        present = [s for s in specs if s.name in existing]
        drifts += [Drift(s.name, "missing", "present", "absent") for s in specs if s.name not in existing]
        if not present:
            return drifts
        described = {t["name"]: t for t in client.describe_topics([s.name for s in present])}
        configs = client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in present], config_filter="all"
        )["topic"]
        for spec in present:
            meta = described[spec.name]
            partitions = meta["partitions"]
            if len(partitions) != spec.partitions:
                drifts.append(Drift(spec.name, "partitions", str(spec.partitions), str(len(partitions))))
            rf = effective_replication(spec.replication_factor, settings)
            actual_rf = min((len(p["replica_nodes"]) for p in partitions), default=0)
            if actual_rf != rf:
                drifts.append(Drift(spec.name, "replication", str(rf), str(actual_rf)))
            actual_cfg = configs.get(spec.name, {})
            for key, want in spec.config(rf).items():
                have = (actual_cfg.get(key) or {}).get("value")
                if have != want:
                    drifts.append(Drift(spec.name, key, want, str(have)))
    finally:
        client.close()
    return drifts

"""The changelog topic is created compacted, with settings that keep it near one record per case."""

from __future__ import annotations

from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from caseclock.live.faust_app import CHANGELOG_CONFIG
from tests.integration.deployment import Deployment, WorkerProcess, run


async def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(_, _, _, _, entries)] = resp.resources
        return {e[0]: e[1] for e in entries}
    finally:
        await admin.close()


def test_changelog_topic_is_created_with_compaction_settings(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, partitions=2)
    with WorkerProcess(dep, "w1") as w:
        w.wait_ready()
    config = run(topic_config(kafka_bootstrap, f"{dep.app_id}-cases-changelog"))
    for name, value in CHANGELOG_CONFIG.items():
        assert config.get(name) == value, (name, config.get(name))

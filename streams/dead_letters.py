"""Sending what an agent could not use to the dead-letter topic, with why and where from."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from models.dead_letters import KafkaPlace, kafka_dead_letter_headers
from ops.metrics import Metrics
from streams.batch import DeadLetter

log = logging.getLogger("lde.stream")


class DeadLetterSender:
    """Each refused message (or event of an envelope) goes to the dead-letter topic, its payload
    capped at `max_bytes`, and is counted in lde_dead_letters_total{topic}: the agent goes on."""

    def __init__(self, topic: Any, metrics: Metrics, max_bytes: int) -> None:
        self.topic = topic
        self.metrics = metrics
        self.max_bytes = max_bytes

    async def send(self, source_topic: str, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            place = KafkaPlace(source_topic, letter.partition, letter.offset, letter.index)
            await self.topic.send(
                value=letter.payload[: self.max_bytes],
                headers=kafka_dead_letter_headers(letter.reason, place),
            )
            log.warning(
                "dead_letter topic=%s partition=%d offset=%d reason=%r",
                source_topic,
                letter.partition,
                letter.offset,
                letter.reason,
            )
        if letters:
            self.metrics.dead_letters.labels(topic=source_topic).inc(len(letters))

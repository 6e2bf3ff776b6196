"""The sandbox's leads: seeded from a file, changed by PUTs, saved between runs."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_SPEC: Final = Path(__file__).parent / "specs" / "leads-v1.json"


@dataclass(frozen=True)
class LeadRules:
    """What HubSpot's Leads v1 refuses, from the sandbox's own spec file (never from the
    client's modules: a wrong rule in the client must fail against the sandbox)."""

    not_editable: frozenset[str]
    booleans: frozenset[str]
    timestamp_suffix: str

    @classmethod
    def load(cls, path: Path = _SPEC) -> LeadRules:
        spec = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            frozenset(spec["not_editable"]), frozenset(spec["booleans"]), spec["timestamp_suffix"]
        )

    def is_timestamp(self, name: str) -> bool:
        """Every editable ``...At`` field carries epoch milliseconds."""
        return name.endswith(self.timestamp_suffix) and name not in self.not_editable


def load_records(path: Path, key: str = "guid") -> list[dict[str, object]]:
    """Records from JSON (a list, or an object keyed by ``key``), JSONL, or CSV."""
    text = path.read_text(encoding="utf-8-sig")
    name = path.name.lower()
    if name.endswith(".csv"):
        records: list[dict[str, object]] = [
            {k.strip(): v for k, v in row.items() if k is not None}
            for row in csv.DictReader(text.splitlines())
        ]
    elif name.endswith((".jsonl", ".ndjson")):
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = json.loads(text)
        if isinstance(data, dict):
            records = [{key: k, **value} for k, value in data.items()]
        else:
            records = list(data)
    return records


def load_leads(path: Path) -> dict[str, dict[str, object]]:
    """Leads by guid from JSON (a list, or an object keyed by guid), JSONL, or CSV."""
    leads: dict[str, dict[str, object]] = {}
    for record in load_records(path):
        guid = str(record.get("guid") or record.get("GUID") or "").strip()
        if not guid:
            raise ValueError(f"{path}: a seed record has no guid: {record!r}")
        lead = {k: v for k, v in record.items() if k.lower() != "guid"}
        lead["guid"] = guid
        leads[guid] = lead
    return leads


def save_leads(path: Path, leads: dict[str, dict[str, object]]) -> None:
    """Write atomically, so a crash while saving keeps the previous state."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(leads, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)

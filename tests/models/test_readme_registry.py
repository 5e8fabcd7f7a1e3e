"""README "Use your own model": its registry example has an entry for every family, and every entry is valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from models import families, registry
from tests.helpers import ROOT


def readme_registry() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    assert blocks, "no TOML example in the README section"
    return max(blocks, key=len)


def test_the_readme_example_has_a_valid_entry_for_every_family(tmp_path: Path) -> None:
    body = readme_registry()
    file = tmp_path / "registry.toml"
    file.write_text(body, encoding="utf-8")
    reg = registry.load(file)  # validates every entry (families, samplers, single-file config, LoRAs)
    assert {entry.family for entry in reg.models.values()} == set(families.FAMILIES)
    sources = {entry.source for entry in reg.models.values()}
    assert {"local", "single_file", "hub"} <= sources
    assert any(entry.loras for entry in reg.models.values())
    assert all(entry.frames for entry in reg.models.values() if entry.kind == "clip")
    assert tomllib.loads(body)["default"] in reg.models

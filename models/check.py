"""`imagine models check`: what is wrong with each configured model, in one table, without loading any weights.

Each entry is validated on its own (a typo in one does not hide the others), then its source is looked at: a
folder's `model_index.json` and component configs, a single file's tensor names (the safetensors header only),
a hub id in the local cache (offline) or its `model_index.json` on the hub (online), each LoRA file. The family
the weights hold must be the family the entry names. A worker runs the same check at start-up and refuses to
start on errors, printing the same table; warnings (missing weights with a fallback, no safety checker) do not
stop it.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from models import families, registry
from models.families import Family
from models.registry import ModelEntry, Registry

log = logging.getLogger(__name__)

Status = Literal["ok", "warning", "error"]
#: Files that hold a component's config, by what the component is.
CONFIG_FILES = ("config.json", "scheduler_config.json", "preprocessor_config.json", "tokenizer_config.json")


@dataclass(frozen=True)
class Row:
    """One line of the table: a model (or the registry itself), and what is wrong with it, if anything."""

    model: str
    family: str
    source: str
    status: Status
    detail: str


class RegistryInvalid(Exception):
    """The registry has errors; `table` says which (the worker prints it and does not start)."""

    def __init__(self, table: str, rows: list[Row]) -> None:
        super().__init__(table)
        self.table = table
        self.rows = rows


def run(path: Path | None = None, data_dir: Path = Path(".data")) -> list[Row]:
    """Check every entry of the registry at `path` (the packaged one when None)."""
    try:
        file, raw = registry.read(path)
    except FileNotFoundError:
        return [Row("(registry)", "", "", "error", f"file not found: {path}")]
    except tomllib.TOMLDecodeError as exc:
        return [Row("(registry)", "", "", "error", f"not valid TOML: {exc}")]
    rows: list[Row] = []
    entries: dict[str, ModelEntry] = {}
    for name, fields in (raw.get("models") or {}).items():
        if not isinstance(fields, dict):
            rows.append(Row(name, "", "", "error", "not a table ([models.<name>])"))
            continue
        try:
            entries[name] = ModelEntry(**registry.entry_fields(file, name, fields))
        except ValidationError as exc:
            rows.append(Row(name, str(fields.get("family", "")), str(fields.get("source", "")), "error", _why(exc)))
        except (TypeError, ValueError) as exc:
            rows.append(Row(name, str(fields.get("family", "")), str(fields.get("source", "")), "error", str(exc)))
    default = raw.get("default", next(iter(raw.get("models") or {}), ""))
    if not raw.get("models"):
        rows.append(Row("(registry)", "", "", "error", "no [models.<name>] entries"))
    elif default not in (raw.get("models") or {}):
        rows.append(Row("(registry)", "", "", "error", f"default model {default!r} is not in the registry"))
    for entry in entries.values():
        rows.append(check_entry(entry, entries, Path(data_dir)))
    order = {name: i for i, name in enumerate(raw.get("models") or {})}
    return sorted(rows, key=lambda row: order.get(row.model, -1))


def require_valid(path: Path | None = None, data_dir: Path = Path(".data")) -> Registry:
    """The registry, or `RegistryInvalid` with the table when any row is an error."""
    rows = run(path, data_dir)
    if any(row.status == "error" for row in rows):
        raise RegistryInvalid(table(rows), rows)
    for row in rows:
        if row.status == "warning":
            log.warning("model %s: %s", row.model, row.detail)
    return registry.load(path)


def check_entry(entry: ModelEntry, entries: dict[str, ModelEntry], data_dir: Path) -> Row:
    """The row for one (valid) entry: its weights' configs, family, LoRAs and safety checker."""
    family = entry.family_info
    problems: list[str] = []
    warnings: list[str] = []
    if entry.fallback is not None and entry.fallback not in entries:
        problems.append(f"fallback {entry.fallback!r} is not in the registry")
    if entry.source == "tiny":
        found: Family | None = families.get("text-to-video-sd" if entry.kind == "clip" else "sd15")
        notes = ["tiny random pipeline, built on demand"]
    elif entry.source == "local":
        found, notes = _folder(Path(entry.location(data_dir)), problems)
    elif entry.source == "single_file":
        found, notes = _single_file(entry, problems)
    else:
        found, notes = _hub(str(entry.id), problems)
    if found is not None and family is not None and found.pipeline not in family.classes:
        problems.append(
            f"family mismatch: the weights are {found.name} ({found.pipeline}), the entry says {family.name}"
        )
    shown_family = family.name if family is not None else f"auto -> {found.name}" if found is not None else "auto"
    for lora in entry.loras.values():
        path = Path(lora.file)
        if not path.is_file():
            problems.append(f"LoRA {lora.name!r}: file not found: {path}")
        elif path.suffix != ".safetensors":
            problems.append(f"LoRA {lora.name!r}: not a .safetensors file: {path.name}")
    effective = family or found
    screened = (
        entry.source != "tiny"
        and effective is not None
        and effective.safety_checker
        and (entry.source not in ("local", "single_file") or has_safety_checker(entry, data_dir))
    )
    if entry.allow_pickle and not problems:
        warnings.append("allow_pickle = true: pickled weights run code from the file when they load; trust it")
    if entry.nsfw != "allow" and not problems and not screened:
        # Nothing would screen its images, so the bot keeps it to age-restricted channels (worker/safety.py).
        warnings.append(f'no safety checker: under nsfw = "{entry.nsfw}" it draws only in age-restricted channels')
    if problems and entry.fallback is not None and all(_missing(p) for p in problems):
        return Row(entry.name, shown_family, entry.source, "warning", f"{problems[0]}; falls back to {entry.fallback}")
    if problems:
        return Row(entry.name, shown_family, entry.source, "error", "; ".join(problems))
    if warnings:
        return Row(entry.name, shown_family, entry.source, "warning", "; ".join(warnings + notes))
    return Row(entry.name, shown_family, entry.source, "ok", "; ".join(notes))


def _missing(problem: str) -> bool:
    return "not found" in problem or "not cached" in problem or "no model_index.json" in problem


def _folder(where: Path, problems: list[str]) -> tuple[Family | None, list[str]]:
    if not where.is_dir():
        problems.append(f"folder not found: {where}")
        return None, []
    index_file = where / "model_index.json"
    if not index_file.is_file():
        problems.append(f"no model_index.json in {where} (not a diffusers folder)")
        return None, []
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        problems.append(f"model_index.json is not JSON: {exc}")
        return None, []
    found = _family_of_index(index, problems)
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        sub = where / component
        if not sub.is_dir():
            problems.append(f"component {component!r}: folder not found")
        elif not any((sub / name).is_file() for name in CONFIG_FILES) and not any(sub.glob("*.json")):
            problems.append(f"component {component!r}: no config")
    return found, [found.label] if found is not None else []


def _family_of_index(index: dict[str, Any], problems: list[str]) -> Family | None:
    class_name = str(index.get("_class_name", ""))
    try:
        return families.of_pipeline(class_name)
    except families.UnknownFamily as exc:
        problems.append(str(exc))
        return None


def _single_file(entry: ModelEntry, problems: list[str]) -> tuple[Family | None, list[str]]:
    path = Path(str(entry.path))
    family = entry.family_info
    assert family is not None
    notes: list[str] = []
    found: Family | None = None
    if not path.is_file():
        problems.append(f"file not found: {path}")
    elif path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                names = list(handle.keys())
        except Exception as exc:
            problems.append(f"not a readable .safetensors file: {exc}")
        else:
            found = families.of_checkpoint(names)
            if found is None:
                problems.append("the tensor names match no known family's checkpoint layout")
    elif not entry.allow_pickle:
        problems.append(
            f"{path.suffix} checkpoints are pickles (loading one runs code from the file): convert it to "
            ".safetensors, or set allow_pickle = true if you trust it"
        )
    if entry.config is None:
        problems.append(
            f"no `config`: offline, diffusers needs a local folder with {family.reference}'s configs "
            "(model_index.json, component configs, tokenizers; no weights)"
        )
    elif Path(entry.config).is_dir():
        config_family, _ = _folder(Path(entry.config), problems)
        if config_family is not None and config_family.pipeline not in family.classes:
            problems.append(f"config folder holds {config_family.name}, not {family.name}")
    else:
        config_family, _ = _hub(entry.config, problems, what="config")
    return found, notes


def _hub(repo_id: str, problems: list[str], what: str = "hub id") -> tuple[Family | None, list[str]]:
    """Reads only `model_index.json`: from the cache, or (online) from the hub."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "model_index.json")
    if isinstance(cached, str):
        index = json.loads(Path(cached).read_text(encoding="utf-8"))
        return _family_of_index(index, problems), ["cached"]
    if _offline(constants):
        problems.append(f"{what} {repo_id!r}: offline, not cached (download it once online, or use a local folder)")
        return None, []
    try:
        downloaded = hf_hub_download(repo_id, "model_index.json", etag_timeout=10)
    except Exception as exc:
        problems.append(f"{what} {repo_id!r}: not reachable on the hub ({type(exc).__name__}: {_first_line(exc)})")
        return None, []
    index = json.loads(Path(downloaded).read_text(encoding="utf-8"))
    return _family_of_index(index, problems), ["on the hub; weights download on first use"]


def _offline(constants: Any) -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False)) or flag.lower() in ("1", "true", "yes", "on")


def has_safety_checker(entry: ModelEntry, data_dir: Path) -> bool:
    """Weights for a safety checker: in the folder, or (single files) in the `config` folder."""
    folder = Path(entry.location(data_dir)) if entry.source == "local" else Path(str(entry.config or ""))
    checker = folder / "safety_checker"
    return checker.is_dir() and (any(checker.glob("*.safetensors")) or any(checker.glob("*.bin")))


def _why(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a known field"
        elif err["type"] == "missing":
            msg = "is required"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:160]


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table, with a last line counting errors and warnings."""
    marks = {"ok": "ok", "warning": "warning", "error": "ERROR"}
    cells = [("MODEL", "FAMILY", "SOURCE", "STATUS", "PROBLEM")]
    cells += [(r.model, r.family, r.source, marks[r.status], r.detail or "-") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)) + "  " + c[4] for c in cells]
    errors = sum(r.status == "error" for r in rows)
    warnings = sum(r.status == "warning" for r in rows)
    lines.append(f"{len(rows)} checked: {errors} error(s), {warnings} warning(s)")
    return "\n".join(line.rstrip() for line in lines)

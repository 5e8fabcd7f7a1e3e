"""models/check.py: a bad registry gives one table naming every problem, `imagine models check` prints it, and a
worker refuses to start on it with the same table."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import check

COMMON = 'width = 32\nheight = 32\nsteps = 2\nguidance = 4.0\nsampler = "euler"\n'


def bad_registry(folder: Path, families: Path) -> Path:
    """One entry per kind of problem, plus two good ones and one missing with a fallback."""
    text = f"""
default = "good"
[models.good]
source = "local"
path = "{families / "sdxl"}"
family = "sdxl"
nsfw = "allow"
{COMMON}
[models.unscreened]
source = "local"
path = "{families / "sdxl"}"
family = "sdxl"
{COMMON}
[models.missing-folder]
source = "local"
path = "nowhere/sd15"
family = "sd15"
{COMMON}
[models.mismatch]
source = "local"
path = "{families / "flux"}"
family = "sdxl"
{COMMON}
[models.offline-hub]
source = "hub"
id = "someone/not-cached-anywhere"
family = "sdxl"
{COMMON}
[models.missing-file]
source = "single_file"
path = "nowhere.safetensors"
config = "{families / "sd15-config"}"
family = "sd15"
nsfw = "allow"
{COMMON}
[models.no-config]
source = "single_file"
path = "{families / "checkpoints" / "sd15.safetensors"}"
family = "sd15"
nsfw = "allow"
{COMMON}
[models.wrong-checkpoint]
source = "single_file"
path = "{families / "checkpoints" / "sd15.safetensors"}"
config = "{families / "sd15-config"}"
family = "sdxl"
{COMMON}
[models.lost-lora]
source = "local"
path = "{families / "sd2"}"
family = "sd2"
nsfw = "allow"
{COMMON}
[models.lost-lora.loras.gone]
file = "loras/gone.safetensors"
[models.typo]
source = "local"
path = "{families / "sdxl"}"
family = "sdxl"
widht = 32
{COMMON}
[models.bad-sampler]
source = "local"
path = "{families / "flux"}"
family = "flux"
width = 32
height = 32
steps = 2
guidance = 3.5
sampler = "dpm++_2m"
[models.no-family]
source = "local"
path = "{families / "sdxl"}"
family = "sd4"
{COMMON}
[models.falls-back]
source = "local"
path = "nowhere/else"
family = "sdxl"
fallback = "good"
{COMMON}
"""
    file = folder / "registry.toml"
    file.write_text(text)
    return file


def test_a_bad_registry_gives_one_table_with_every_problem(tmp_path: Path, family_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rows = {row.model: row for row in check.run(bad_registry(tmp_path, family_dir), tmp_path)}
    assert rows["good"].status == "ok"
    expected = {
        "missing-folder": "folder not found",
        "mismatch": "family mismatch: the weights are flux (FluxPipeline), the entry says sdxl",
        "offline-hub": "offline, not cached",
        "missing-file": "file not found",
        "no-config": "no `config`: offline, diffusers needs a local folder",
        "wrong-checkpoint": "family mismatch: the weights are sd15",
        "lost-lora": "LoRA 'gone': file not found",
        "typo": "widht: is not a known field",
        "bad-sampler": "sampler 'dpm++_2m' does not apply to flux",
        "no-family": "unknown family 'sd4'",
    }
    for name, text in expected.items():
        assert rows[name].status == "error", name
        assert text in rows[name].detail, (name, rows[name].detail)
    assert rows["falls-back"].status == "warning" and "falls back to good" in rows["falls-back"].detail
    # A model nothing would screen under the default policy: honest about where it may draw.
    assert rows["unscreened"].status == "warning"
    assert (
        'no safety checker: under nsfw = "filter" it draws only in age-restricted channels' in rows["unscreened"].detail
    )
    table = check.table(list(rows.values()))
    lines = table.splitlines()
    assert lines[0].split() == ["MODEL", "FAMILY", "SOURCE", "STATUS", "PROBLEM"]
    assert lines[-1] == f"{len(rows)} checked: {len(expected)} error(s), 2 warning(s)"
    with pytest.raises(check.RegistryInvalid) as invalid:
        check.require_valid(tmp_path / "registry.toml", tmp_path)
    assert invalid.value.table == check.table(check.run(tmp_path / "registry.toml", tmp_path))


def test_the_family_registry_and_the_packaged_one_are_valid(family_registry: Path, tmp_path: Path) -> None:
    rows = check.run(family_registry, tmp_path)
    # Tiny random weights carry no safety checker: each says where it may draw, and that is all it says.
    unscreened = "no safety checker: under nsfw"
    assert [r for r in rows if r.status != "ok" and unscreened not in r.detail] == [], check.table(rows)
    assert not [r for r in check.run(None, tmp_path) if r.status == "error"]


def test_a_registry_that_is_not_toml_or_has_no_models(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[models.x\n")
    assert "not valid TOML" in check.run(broken, tmp_path)[0].detail
    empty = tmp_path / "empty.toml"
    empty.write_text('default = "x"\n')
    assert "no [models.<name>] entries" in check.table(check.run(empty, tmp_path))


def test_the_cli_prints_the_table_and_a_worker_refuses_to_start(
    tmp_path: Path, family_dir: Path, redis_url: str, monkeypatch, capsys
) -> None:
    from imagine import cli

    file = bad_registry(tmp_path, family_dir)
    monkeypatch.setenv("IMAGINE_REGISTRY_FILE", str(file))
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert cli.main(["models", "check"]) == 1
    listed = capsys.readouterr().out
    assert "mismatch" in listed and "offline, not cached" in listed
    # The real `imagine worker` command: it stops before taking any job, with the very same table.
    assert cli.main(["worker", "--burst"]) == 2
    stderr = capsys.readouterr().err
    assert "the model registry has errors; not starting" in stderr
    assert listed.strip() in stderr


def test_pickled_checkpoints_need_allow_pickle(tmp_path: Path, family_dir: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not really a pickle")
    common = 'family = "sd15"\nnsfw = "allow"\n' + COMMON
    text = f"""default = "pickled"
[models.pickled]
source = "single_file"
path = "{ckpt}"
config = "{family_dir / "sd15-config"}"
{common}
[models.trusted]
source = "single_file"
path = "{ckpt}"
config = "{family_dir / "sd15-config"}"
allow_pickle = true
{common}
"""
    (tmp_path / "registry.toml").write_text(text)
    rows = {row.model: row for row in check.run(tmp_path / "registry.toml", tmp_path)}
    assert rows["pickled"].status == "error" and "allow_pickle = true" in rows["pickled"].detail
    assert rows["trusted"].status == "warning" and "run code from the file" in rows["trusted"].detail
    from models import families, loader, registry

    entry = registry.load(tmp_path / "registry.toml").models["pickled"]
    with pytest.raises(ValueError, match="is a pickle"):  # refused before anything reads the file
        loader._single_file(entry, families.get("sd15"), str(ckpt), None, False)  # type: ignore[arg-type]

"""The command line's numbers, paths and environment: a mistake is one line and exit 2, never a
traceback and never a silent surprise (each case below was found by an independent probe)."""

from __future__ import annotations

import pytest

from tenantlake import cli


@pytest.mark.parametrize("argv", [
    ["maintain", "--retention-hours", "nan"],  # a traceback
    ["maintain", "--retention-hours", "-5"],  # expired every snapshot of time travel
    ["maintain", "--min-files", "-1"],  # compacted every partition
    ["status", "--window-hours", "1e308"],  # OverflowError
    ["status", "--window-hours", "0"],
    ["simulate", "--out", "x", "--agencies", "-1"],  # simulated 4 agencies: tenants[:-1]
    ["simulate", "--out", "x", "--consumers", "-3"],
    ["convert", "--export-dir", ".", "--tenant", "../../../outside", "--entity", "Debt", "--out", "o"],  # key path
    ["convert", "--export-dir", ".", "--tenant", "", "--entity", "Debt", "--out", "o"],  # an empty tenant on rows
    ["convert", "--export-dir", ".", "--tenant", "agency-001", "--entity", "Debt", "--out", " "],
])
def test_a_mistaken_argument_is_one_line_and_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:  # argparse's own refusal
        code = cli.main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert e.value.code == 2 and "Traceback" not in err and last.startswith(f"tenantlake {argv[0]}: "), err
    assert not (tmp_path / "o").exists() and not (tmp_path / "x").exists()


def test_migrate_from_a_folder_that_is_not_there_is_refused_not_an_empty_success(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    for source in (tmp_path / "nonexistent", tmp_path / "a-file"):
        assert cli.main(["migrate-lake", "--from", str(source)]) == 2
        assert "no such folder" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "value", "said"), [
    ("TENANTLAKE_MODE", "foo", "TENANTLAKE_MODE='foo': expected local or aws"),
    ("TENANTLAKE_SNAPSHOT_RETENTION_HOURS", "abc", "TENANTLAKE_SNAPSHOT_RETENTION_HOURS='abc': expected a number"),
    ("TENANTLAKE_SNAPSHOT_RETENTION_HOURS", "-1", "expected a number of hours from 0"),
])
def test_an_environment_variable_that_says_nothing_usable_is_named(monkeypatch, capsys, tmp_path, name, value, said):
    from tenantlake.runtime import forget

    monkeypatch.setenv("TENANTLAKE_HOME", str(tmp_path))
    monkeypatch.setenv(name, value)
    forget()
    assert cli.main(["maintain"]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_a_retention_of_zero_hours_is_zero_not_the_default(monkeypatch, tmp_path):
    """`args.retention_hours or default` read 0 as 'not given' and kept 72 hours of time travel."""
    from tenantlake.lake import upkeep
    from tenantlake.runtime import forget

    asked = {}
    monkeypatch.setenv("TENANTLAKE_HOME", str(tmp_path))
    monkeypatch.setattr(upkeep, "upkeep", lambda lake, **kw: asked.update(kw) or {})
    forget()
    assert cli.main(["maintain", "--retention-hours", "0"]) == 0
    assert asked == {"min_files": 8, "retention_hours": 0.0}


def test_status_for_an_entity_that_does_not_exist_is_refused_not_zero_tables(monkeypatch, capsys, tmp_path):
    from tenantlake.runtime import forget

    monkeypatch.setenv("TENANTLAKE_HOME", str(tmp_path))
    forget()
    assert cli.main(["status", "--entity", "Bogus"]) == 2
    assert "--entity Bogus: no such entity" in capsys.readouterr().err


def test_erase_for_a_tenant_whose_entry_is_invalid_says_what_is_wrong_with_it(monkeypatch, capsys, tmp_path):
    import yaml

    from tenantlake.registry import DEFAULT_PATH
    from tenantlake.runtime import forget

    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["tenants"][2]["export_window"] = "5m"
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("TENANTLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("TENANTLAKE_REGISTRY", str(tmp_path / "r.yaml"))
    forget()
    assert cli.main(["erase", "--tenant", doc["tenants"][2]["tenant_id"], "--consumer", "c-1"]) == 2
    assert "export_window" in capsys.readouterr().err

import os
import re
from datetime import timedelta

import pytest
import yaml

from tenantlake import registry as registry_module
from tenantlake.registry import DEFAULT_PATH, InvalidEntry, RegistryError, load_registry, parse_registry

ALL_TABLES = {"Consumer", "Counselor", "Application", "Income", "Expense", "Debt", "Plan", "Payment"}


def test_shipped_registry_has_five_agencies_with_all_tables(registry):
    assert [t.tenant_id for t in registry.tenants] == [f"agency-00{i}" for i in range(1, 6)]
    assert registry.invalid == []
    for t in registry.tenants:
        assert set(t.tables) == ALL_TABLES
        assert t.role_arn.split(":")[4] == t.aws_account_id
        assert t.external_id_ref.startswith(("ssm:/", "secretsmanager:"))


def test_table_arn_is_built_from_the_entry(registry):
    t = registry.tenant("agency-001")
    assert t.table_arn("Debt") == "arn:aws:dynamodb:us-east-1:211111111111:table/Debt-k3j2h5-prod"


def test_unknown_tenant_is_a_clear_error(registry):
    with pytest.raises(RegistryError, match="'agency-999' is not in the registry"):
        registry.tenant("agency-999")


# A registry written for these tests: three agencies, in the shipped file's shape.
FLEET = """\
version: 1
landing_bucket: tenantlake-landing
tenants:
  - tenant_id: agency-001
    display_name: Harbor Credit Counseling
    aws_account_id: "211111111111"
    region: us-east-1
    role_arn: arn:aws:iam::211111111111:role/tenantlake-export
    external_id_ref: ssm:/tenantlake/agency-001/external-id
    pseudonym_key_ref: secretsmanager:tenantlake/agency-001/pseudonym-key
    tables: {Debt: Debt-k3j2h5-prod, Plan: Plan-k3j2h5-prod}
  - tenant_id: agency-002
    display_name: Prairie Financial Wellness
    aws_account_id: "212222222222"
    region: us-east-2
    role_arn: arn:aws:iam::212222222222:role/tenantlake-export
    external_id_ref: ssm:/tenantlake/agency-002/external-id
    pseudonym_key_ref: secretsmanager:tenantlake/agency-002/pseudonym-key
    tables: {Consumer: Consumer-p9x7q1-prod, Debt: Debt-p9x7q1-prod}
  - tenant_id: agency-003
    display_name: Cascade Debt Solutions
    aws_account_id: "213333333333"
    region: us-west-2
    role_arn: arn:aws:iam::213333333333:role/tenantlake-export
    external_id_ref: ssm:/tenantlake/agency-003/external-id
    pseudonym_key_ref: secretsmanager:tenantlake/agency-003/pseudonym-key
    tables: {Debt: Debt-t4m8w2-prod}
"""


FOURTH = """\
  - tenant_id: agency-004
    display_name: Magnolia Money Coaching
    aws_account_id: "214444444444"
    region: us-east-1
    role_arn: arn:aws:iam::214444444444:role/tenantlake-export
    external_id_ref: ssm:/tenantlake/agency-004/external-id
    pseudonym_key_ref: secretsmanager:tenantlake/agency-004/pseudonym-key
    tables: {Debt: Debt-b6n3z8-prod}
"""


def _write(tmp_path, text: str, name: str = "tenants.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _doc():
    return yaml.safe_load(FLEET)


def _load_doc(tmp_path, doc):
    return load_registry(_write(tmp_path, yaml.safe_dump(doc, sort_keys=False)))


def test_one_broken_entry_keeps_the_others(tmp_path):
    """A typo in agency-002's account id (11 digits): agency-001 and agency-003 load, agency-002
    is reported with its position, id and field, and asking for it fails with that message."""
    path = _write(tmp_path, FLEET.replace('aws_account_id: "212222222222"', 'aws_account_id: "21222222222"'))
    reg = load_registry(path)
    assert [t.tenant_id for t in reg.tenants] == ["agency-001", "agency-003"]
    assert [t.tenant_id for t in reg.enabled] == ["agency-001", "agency-003"]
    [bad] = reg.invalid
    assert (bad.index, bad.tenant_id, bad.fields, bad.entities, bad.enabled) == (
        1, "agency-002", ("aws_account_id",), ("Consumer", "Debt"), True)
    assert bad.message.startswith("tenants[1] (agency-002).aws_account_id: String should match pattern")
    with pytest.raises(RegistryError) as info:
        reg.tenant("agency-002")
    assert str(info.value).startswith(f"{path}: tenant 'agency-002' has an invalid registry entry: "
                                      "tenants[1] (agency-002).aws_account_id: String should match pattern")
    assert reg.tenant("agency-003").aws_account_id == "213333333333"


@pytest.mark.parametrize(
    ("index", "mutate", "fields", "expected"),
    [
        (1, lambda e: e.update(role_arn="arn:aws:iam::role/oops"), ("role_arn",),
         r"tenants\[1\] \(agency-002\)\.role_arn: String should match pattern"),
        (0, lambda e: e["tables"].update(Loan="Loan-x-prod"), ("tables",),
         r"tenants\[0\] \(agency-001\)\.tables: 1 unknown entity \(one like no entity"),
        (0, lambda e: e["tables"].update(Debts="Loan-x-prod"), ("tables",),
         r"tenants\[0\] \(agency-001\)\.tables: 1 unknown entity \(one close to Debt"),
        (2, lambda e: e.update(role_arn="arn:aws:iam::999999999999:role/tenantlake-export"), ("role_arn",),
         r"tenants\[2\] \(agency-003\)\.role_arn: role_arn is in account 999999999999, not the tenant's 213333333333"),
        (2, lambda e: e.update(export_window="5m"), ("export_window",),
         r"tenants\[2\] \(agency-003\)\.export_window: '5m' is outside DynamoDB's incremental range"),
        (0, lambda e: e.update(external_id_ref="hunter2"), ("external_id_ref",),
         r"tenants\[0\] \(agency-001\)\.external_id_ref: String should match pattern"),
        (1, lambda e: e.update(surprise=1), ("surprise",),
         r"tenants\[1\] \(agency-002\)\.surprise: Extra inputs are not permitted"),
        (1, lambda e: e.pop("region"), ("region",),
         r"tenants\[1\] \(agency-002\)\.region: Field required"),
        (0, lambda e: e["tables"].update(Debt="x"), ("tables.Debt",),
         r"tenants\[0\] \(agency-001\)\.tables\.Debt: String should have at least 3 characters|"
         r"tenants\[0\] \(agency-001\)\.tables\.Debt: String should match pattern"),
    ],
)
def test_a_bad_entry_names_itself_and_the_field_and_spares_the_others(tmp_path, index, mutate, fields, expected):
    doc = _doc()
    mutate(doc["tenants"][index])
    reg = _load_doc(tmp_path, doc)
    others = [t["tenant_id"] for i, t in enumerate(doc["tenants"]) if i != index]
    assert [t.tenant_id for t in reg.tenants] == others
    [bad] = reg.invalid
    assert (bad.index, bad.tenant_id, bad.fields) == (index, doc["tenants"][index]["tenant_id"], fields)
    assert re.match(expected, bad.message), bad.message


def test_every_problem_of_an_entry_is_named_and_no_value_is_echoed(tmp_path):
    doc = _doc()
    doc["tenants"][1].update(region="mars-1", external_id_ref="hunter2-the-actual-secret")
    reg = _load_doc(tmp_path, doc)
    [bad] = reg.invalid
    assert bad.fields == ("region", "external_id_ref")
    assert bad.message.startswith("tenants[1] (agency-002).region: String should match pattern")
    assert "; tenants[1] (agency-002).external_id_ref: String should match pattern" in bad.message
    # a secret pasted where its reference belongs must not reach a task log
    assert "hunter2" not in bad.message and "hunter2" not in repr(reg.invalid)


def test_an_entry_that_is_not_a_mapping_or_has_no_usable_id(tmp_path):
    doc = _doc()
    doc["tenants"].insert(1, "agency-009")
    doc["tenants"][3]["tenant_id"] = "Agency_003"  # upper case and underscore: not an id
    reg = _load_doc(tmp_path, doc)
    assert [t.tenant_id for t in reg.tenants] == ["agency-001", "agency-002"]
    assert [(e.index, e.tenant_id, e.fields, e.entities) for e in reg.invalid] == [
        (1, None, ("",), ()), (3, None, ("tenant_id",), ("Debt",))]
    assert reg.invalid[0].message == "tenants[1] (?): expected a mapping of fields, got str"
    assert reg.invalid[1].message.startswith("tenants[3] (?).tenant_id: String should match pattern")


def test_a_disabled_bad_entry_says_so(tmp_path):
    doc = _doc()
    doc["tenants"][2].update(enabled=False, region="nowhere")
    reg = _load_doc(tmp_path, doc)
    assert [(e.tenant_id, e.enabled) for e in reg.invalid] == [("agency-003", False)]


def test_a_duplicate_tenant_id_invalidates_every_entry_claiming_it(tmp_path):
    """Which of the two is agency-001 is not in the file: both fail, each naming the other."""
    doc = _doc()
    doc["tenants"][2]["tenant_id"] = "agency-001"
    reg = _load_doc(tmp_path, doc)
    assert [t.tenant_id for t in reg.tenants] == ["agency-002"]
    assert [(e.index, e.tenant_id, e.fields) for e in reg.invalid] == [
        (0, "agency-001", ("tenant_id",)), (2, "agency-001", ("tenant_id",))]
    assert reg.invalid[0].message == "tenants[0] (agency-001).tenant_id: duplicate tenant_id 'agency-001', also at tenants[2]"
    assert reg.invalid[1].message == "tenants[2] (agency-001).tenant_id: duplicate tenant_id 'agency-001', also at tenants[0]"
    with pytest.raises(RegistryError, match=r"also at tenants\[2\]; tenants\[2\] \(agency-001\)\.tenant_id: "):
        reg.tenant("agency-001")


def test_a_duplicate_account_invalidates_every_tenant_pointing_at_it(tmp_path):
    """One account loaded under two tenant ids would show one agency's data to another."""
    doc = _doc()
    doc["tenants"][2].update(aws_account_id="211111111111", role_arn="arn:aws:iam::211111111111:role/tenantlake-export")
    doc["tenants"].append({**doc["tenants"][0], "tenant_id": "agency-004"})
    reg = _load_doc(tmp_path, doc)
    assert [t.tenant_id for t in reg.tenants] == ["agency-002"]
    assert [(e.index, e.tenant_id, e.fields) for e in reg.invalid] == [
        (0, "agency-001", ("aws_account_id",)), (2, "agency-003", ("aws_account_id",)),
        (3, "agency-004", ("aws_account_id",))]
    assert reg.invalid[1].message == ("tenants[2] (agency-003).aws_account_id: duplicate aws_account_id "
                                      "'211111111111', also at tenants[0], tenants[3]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenants: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping with version, landing_bucket and tenants"),
        ("", "expected a mapping with version, landing_bucket and tenants"),
        ("version: 1\nlanding_bucket: tenantlake-landing\n", "tenants: Field required"),
        ("version: 1\nlanding_bucket: tenantlake-landing\ntenants: agency-001\n", "tenants: Input should be a valid list"),
        (FLEET.replace("version: 1", "version: 2"), "version: Input should be less than or equal to 1"),
        (FLEET.replace("landing_bucket: tenantlake-landing", "landing_bucket: Tenantlake_Landing"),
         "landing_bucket: String should match pattern"),
        (FLEET.replace("version: 1", "version: 1\nlanding_account_id: '12'"), "landing_account_id: String should match"),
        (FLEET.replace("version: 1", "version: 1\nowner: data-team"), "owner: Extra inputs are not permitted"),
    ],
)
def test_a_file_level_problem_fails_the_whole_file_naming_it(tmp_path, text, expected):
    path = _write(tmp_path, text, "bad.yaml")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_an_unreadable_file(tmp_path):
    with pytest.raises(RegistryError, match=r"missing\.yaml: cannot read the registry"):
        load_registry(tmp_path / "missing.yaml")


def test_the_parsed_registry_is_kept_until_the_file_changes(tmp_path):
    path = _write(tmp_path, FLEET)
    first = load_registry(path)
    assert load_registry(path) is first  # no second parse
    stat = path.stat()
    # one more agency (a different size), and a modification time past the first's
    path.write_text(FLEET + FOURTH)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = load_registry(path)
    assert again is not first
    assert [t.tenant_id for t in again.tenants] == ["agency-001", "agency-002", "agency-003", "agency-004"]
    # an atomic replace (new inode) with the same size and time is read again too
    other = _write(tmp_path, (FLEET + FOURTH).replace("Harbor", "Hxrbor"), "next.yaml")
    os.utime(other, ns=(stat.st_atime_ns, path.stat().st_mtime_ns))
    os.replace(other, path)
    assert load_registry(path).tenant("agency-001").display_name == "Hxrbor Credit Counseling"


def test_a_file_level_error_is_not_kept(tmp_path):
    path = _write(tmp_path, "tenants: [\n")
    with pytest.raises(RegistryError):
        load_registry(path)
    path.write_text(FLEET)
    os.utime(path, ns=(0, 10**18))
    assert len(load_registry(path).tenants) == 3


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML built without libyaml")
def test_the_c_loader_reads_the_same_registry_as_the_python_one(monkeypatch, registry):
    assert issubclass(registry_module._LOADER, yaml.CSafeLoader)
    text = registry_module.DEFAULT_PATH.read_text()
    c = parse_registry(text)
    monkeypatch.setattr(registry_module, "_LOADER", yaml.SafeLoader)
    assert parse_registry(text).model_dump() == c.model_dump()


def test_a_constructed_registry_validates_as_before():
    """parse_registry skips a second validation; building a Registry by hand still validates."""
    from pydantic import ValidationError

    from tenantlake.registry import Registry

    with pytest.raises(ValidationError):
        Registry.model_validate({"version": 1, "landing_bucket": "b!", "tenants": []})
    entry = InvalidEntry(index=0, tenant_id=None, fields=("",), message="m")
    assert entry.entities == () and entry.enabled is True


def test_env_var_points_at_another_registry(tmp_path, monkeypatch):
    doc = _doc()
    doc["tenants"] = doc["tenants"][:1]
    path = _write(tmp_path, yaml.safe_dump(doc), "one.yaml")
    monkeypatch.setenv("TENANTLAKE_REGISTRY", str(path))
    assert [t.tenant_id for t in load_registry().tenants] == ["agency-001"]


# ---- freshness objectives ---------------------------------------------------------------------


def test_a_freshness_override_is_read_as_a_duration(tmp_path):
    doc = _doc()
    doc["tenants"][0]["freshness"] = {"Debt": "26h", "Plan": "1d 6h"}
    reg = _load_doc(tmp_path, doc)
    tenant = reg.tenant("agency-001")
    assert tenant.freshness_objective("Debt") == timedelta(hours=26)
    assert tenant.freshness_objective("Plan") == timedelta(hours=30)
    assert reg.tenant("agency-002").freshness_objective("Debt") is None  # no override: the default applies


@pytest.mark.parametrize(
    ("freshness", "expected"),
    [
        ({"Payment": "26h"}, r"freshness: Payment: not one of this tenant's tables \(Debt, Plan\)"),
        ({"Debt": "26 hours"}, r"freshness: Debt: not a duration"),
        ({"Debt": "10m"}, r"freshness: Debt: '10m' is outside 0:15:00 \.\. 30 days"),
        ({"Debt": "31d"}, r"freshness: Debt: '31d' is outside"),
        ({"Debt": "1h"}, r"freshness: Debt: '1h' is not longer than the export window 1h"),
        ({"Debt": 26}, r"freshness\.Debt: Input should be a valid string"),
    ],
)
def test_a_bad_freshness_override_invalidates_only_its_tenant(tmp_path, freshness, expected):
    doc = _doc()
    doc["tenants"][0]["freshness"] = freshness
    reg = _load_doc(tmp_path, doc)
    assert [t.tenant_id for t in reg.tenants] == ["agency-002", "agency-003"]
    [bad] = reg.invalid
    assert bad.tenant_id == "agency-001" and bad.fields[0].startswith("freshness")
    assert re.search(expected, bad.message), bad.message


def test_a_freshness_override_is_checked_against_the_entrys_own_window(tmp_path):
    """26h passes with a 1h window and fails with a 24h one only when not longer than it."""
    doc = _doc()
    doc["tenants"][1].update(export_window="24h", freshness={"Debt": "24h"})
    doc["tenants"][2].update(export_window="24h", freshness={"Debt": "25h"})
    reg = _load_doc(tmp_path, doc)
    assert [e.tenant_id for e in reg.invalid] == ["agency-002"]
    assert reg.tenant("agency-003").freshness_objective("Debt") == timedelta(hours=25)


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("mutate", [
    lambda e: e.update(export_window=SECRET),
    lambda e: e.update(freshness={"Debt": SECRET}),
    lambda e: e["tables"].update({SECRET: "Debt-x-prod"}),
    lambda e: e.update(freshness={SECRET: "26h"}),
    lambda e: e.update(tenant_id=SECRET),
], ids=["export_window", "freshness value", "a table key", "a freshness key", "tenant_id"])
def test_a_secret_pasted_into_a_field_never_reaches_the_message(tmp_path, mutate):
    """The reference fields were already safe; these four echoed what was pasted (independent probe),
    into the plan task's log, its XCom and the alert."""
    doc = _doc()
    mutate(doc["tenants"][0])
    [bad] = _load_doc(tmp_path, doc).invalid
    assert bad.message.startswith("tenants[0]") and SECRET not in bad.message and "EXAMPLEKEY" not in bad.message


def test_a_key_written_twice_invalidates_its_entry_or_the_file_never_silently_wins(tmp_path):
    """YAML keeps a repeated key's last value: a merge conflict's second `tenants:` dropped every
    tenant above it without a word, a second tenant_id renamed an entry (independent probe)."""
    text = DEFAULT_PATH.read_text()
    first = text.index("  - tenant_id: agency-003")
    twice = text[:first] + "  - tenant_id: agency-003\n    tenant_id: agency-009" + text[first + 25:]
    path = tmp_path / "twice.yaml"
    path.write_text(twice)
    reg = load_registry(path)
    assert [e.tenant_id for e in reg.invalid] == ["agency-003", "agency-009"]  # both named: neither vanishes
    bad = reg.invalid[0]
    assert bad.index == 2 and "duplicate key tenant_id at line" in bad.message
    assert [t.tenant_id for t in reg.tenants] == ["agency-001", "agency-002", "agency-004", "agency-005"]
    path.write_text(text + "\ntenants: []\n")
    with pytest.raises(RegistryError, match=r"duplicate key tenants at line \d+"):
        load_registry(path)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_a_registry_not_saved_as_utf8_is_one_clear_error(tmp_path, encoding):
    path = tmp_path / "r.yaml"
    path.write_bytes(DEFAULT_PATH.read_text().replace("display_name:", "display_name: Crédit", 1).encode(encoding))
    with pytest.raises(RegistryError, match=r"r.yaml: not UTF-8 text .*save it as UTF-8"):
        load_registry(path)


@pytest.mark.parametrize(("field", "value"), [("display_name", "   "), ("tenant_id", "agency-"),
                                               ("tenant_id", "-agency")])
def test_a_blank_name_or_an_id_with_a_dangling_dash_is_an_invalid_entry(tmp_path, field, value):
    doc = _doc()
    doc["tenants"][1][field] = value
    [bad] = _load_doc(tmp_path, doc).invalid
    assert bad.index == 1 and bad.fields == (field,)


@pytest.mark.parametrize("off", ["false", "no", 0, "False"])
def test_an_invalid_entry_switched_off_in_any_of_yamls_spellings_fails_nothing(tmp_path, off):
    """Pydantic reads "false" or 0 as False for a valid entry; an invalid one marked so still
    failed the run (only the YAML boolean counted)."""
    doc = _doc()
    doc["tenants"][1].update(enabled=off, aws_account_id="1")
    [bad] = _load_doc(tmp_path, doc).invalid
    assert bad.enabled is False


AGENCY_2 = "  - tenant_id: agency-002\n"


@pytest.mark.parametrize(("old", "new", "where"), [
    ("    region: us-east-2\n", "     region: us-east-2\n", True),  # one space too many
    ("    region: us-east-2\n", "\tregion: us-east-2\n", True),  # a tab
    # an unclosed quote: closed by the next line's first quote, which breaks that line
    ('    display_name: Prairie Financial Wellness\n', '    display_name: "Prairie Financial Wellness\n', True),
    # an unclosed quote never closed: the whole file's error is at its end, the entry's where it opens
    ('    display_name: Prairie Financial Wellness\n', "    display_name: 'Prairie Financial Wellness\n", False),
])
def test_an_entry_that_is_not_yaml_fails_alone_and_the_others_are_read(tmp_path, old, new, where):
    """The commonest edit mistake breaks the file's YAML, and with it every tenant's run: each
    entry of `tenants` is read on its own then, and only the broken one is invalid, with the
    problem and the line PyYAML gives for the whole file."""
    assert FLEET.count(old) == 1 and "'" not in FLEET
    path = _write(tmp_path, FLEET.replace(old, new))
    with pytest.raises(yaml.MarkedYAMLError) as whole:
        yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # the registry's loader
    problem, mark = whole.value.problem, whole.value.problem_mark
    reg = load_registry(path)
    assert [t.tenant_id for t in reg.tenants] == ["agency-001", "agency-003"]
    [bad] = reg.invalid
    assert (bad.index, bad.tenant_id, bad.fields, bad.entities, bad.enabled) == (
        1, "agency-002", ("",), ("Consumer", "Debt"), True)
    assert bad.message.startswith(f"tenants[1] (agency-002): not valid YAML: {problem if where else ''}")
    if where:
        assert bad.message.endswith(f"at line {mark.line + 1}, column {mark.column + 1}")
    else:  # where the quote opens (FLEET's line 13), not the end of the text it swallowed
        assert bad.message.endswith("while scanning a quoted scalar, found unexpected end of stream at line 13, column 19")
    with pytest.raises(RegistryError, match=r"tenant 'agency-002' has an invalid registry entry: .*not valid YAML"):
        reg.tenant("agency-002")


@pytest.mark.parametrize("first_line", [" " + AGENCY_2, AGENCY_2[1:], "\t" + AGENCY_2.lstrip(" ")])
def test_a_misindented_entry_start_fails_that_entry_alone(tmp_path, first_line):
    """`   - tenant_id: agency-002` (one space too many, too few, or a tab) was read as part of
    agency-001's text, failing both (independent probe): it starts an entry of its own."""
    reg = load_registry(_write(tmp_path, FLEET.replace(AGENCY_2, first_line)))
    assert [t.tenant_id for t in reg.tenants] == ["agency-001", "agency-003"]
    assert [(e.index, e.tenant_id, e.entities) for e in reg.invalid] == [(1, "agency-002", ("Consumer", "Debt"))]


def test_the_first_entry_misindented_fails_alone(tmp_path):
    first = "  - tenant_id: agency-001\n"
    reg = load_registry(_write(tmp_path, FLEET.replace(first, " " + first)))
    assert [t.tenant_id for t in reg.tenants] == ["agency-002", "agency-003"]
    assert [e.tenant_id for e in reg.invalid] == ["agency-001"]


@pytest.mark.parametrize("broken", ["", "\tnote: x\n"])  # the file still YAML, or not
def test_entries_that_run_together_fail_both_tenants_and_switch_off_neither(tmp_path, broken):
    """agency-002's `-` lost: its fields join agency-001's mapping, its tenant_id replacing the
    first. Both tenants fail by name (agency-001 vanished); the `enabled: false` may be either's,
    so neither is switched off without a word (independent probe)."""
    merged = FLEET.replace(AGENCY_2, "    enabled: false\n    tenant_id: agency-002\n" + broken)
    reg = load_registry(_write(tmp_path, merged))
    assert [t.tenant_id for t in reg.tenants] == ["agency-003"]
    assert [(e.index, e.tenant_id, e.enabled) for e in reg.invalid] == [(0, "agency-001", True), (0, "agency-002", True)]


@pytest.mark.parametrize("spelling", ["tenant_id : agency-002", '"tenant_id": agency-002', "{tenant_id: agency-002,"])
def test_an_unreadable_entry_is_named_however_its_id_is_spelled(tmp_path, spelling):
    reg = load_registry(_write(tmp_path, FLEET.replace(AGENCY_2, f"  - {spelling}\n\tnote: x\n")))
    assert [e.tenant_id for e in reg.invalid] == ["agency-002"]


def test_aliases_between_entries_and_merge_keys_are_still_yaml(tmp_path):
    """Each entry read alone lost the anchors of the entries above it; and a merge key's overrides
    were taken for repeated keys even in a valid file (independent probe)."""
    shared = FLEET.replace("    region: us-east-1\n", "    region: &home us-east-1\n", 1).replace(
        "    region: us-west-2\n", "    region: *home\n", 1)
    assert [t.region for t in load_registry(_write(tmp_path, shared)).tenants] == ["us-east-1", "us-east-2", "us-east-1"]
    broken = load_registry(_write(tmp_path, shared.replace(AGENCY_2, AGENCY_2 + "\tnote: x\n"), "broken.yaml"))
    assert [(t.tenant_id, t.region) for t in broken.tenants] == [("agency-001", "us-east-1"), ("agency-003", "us-east-1")]
    merged = yaml.safe_load(FLEET)
    text = FLEET.replace("  - tenant_id: agency-001\n", "  - &base\n    tenant_id: agency-001\n").replace(
        AGENCY_2, "  - <<: *base\n    tenant_id: agency-002\n")
    assert [t.tenant_id for t in load_registry(_write(tmp_path, text, "merge.yaml")).tenants] == [
        t["tenant_id"] for t in merged["tenants"]]


def test_an_unreadable_entry_still_counts_in_the_duplicate_checks_and_can_be_switched_off(tmp_path):
    broken = FLEET.replace(AGENCY_2, AGENCY_2 + "\tnote: x\n")
    reg = load_registry(_write(tmp_path, broken.replace('"213333333333"', '"212222222222"').replace(
        "arn:aws:iam::213333333333", "arn:aws:iam::212222222222")))
    # agency-003 now claims the account the unreadable agency-002 names: both fail, as for any duplicate
    assert [t.tenant_id for t in reg.tenants] == ["agency-001"]
    assert [(e.index, e.tenant_id) for e in reg.invalid] == [(1, "agency-002"), (2, "agency-003")]
    assert "duplicate aws_account_id '212222222222', also at tenants[1]" in reg.invalid[1].message
    assert "duplicate aws_account_id '212222222222', also at tenants[2]" in reg.invalid[0].message
    off = load_registry(_write(tmp_path, broken.replace(AGENCY_2, AGENCY_2 + "    enabled: false\n"), "off.yaml"))
    [bad] = off.invalid
    assert bad.enabled is False and [t.tenant_id for t in off.enabled] == ["agency-001", "agency-003"]


@pytest.mark.parametrize("text", [
    FLEET.replace("landing_bucket: tenantlake-landing", "landing_bucket: [tenantlake-landing"),  # outside the list
    FLEET.replace(AGENCY_2, AGENCY_2 + "\tnote: x\n") + "---\nlanding_account_id: '200000000009'\n",  # 2 documents
    FLEET.replace("tenants:\n", "tenants:\n  oops: 1\n"),  # not a list of entries
    FLEET.replace("tenants:\n", "tenants: # the fleet\n").replace("version: 1\n", "version: 1\n\tx: 1\n"),
])
def test_a_syntax_error_outside_the_entries_still_fails_the_whole_file(tmp_path, text):
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry(_write(tmp_path, text))


def test_a_yaml_error_never_quotes_the_line_even_from_the_pure_python_loader(tmp_path, monkeypatch):
    """PyYAML's pure-Python loader quotes the offending line in its message (the C one does not):
    a secret pasted one line off would reach the log (independent probe)."""
    monkeypatch.setattr(registry_module, "_LOADER", yaml.SafeLoader)
    text = FLEET.replace("landing_bucket: tenantlake-landing", "landing_bucket: tenantlake-landing\n\tZx9s3cr3t: v")
    with pytest.raises(yaml.YAMLError, match="Zx9s3cr3t"):
        yaml.safe_load(text)  # the text PyYAML would print
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "r.yaml")
    assert "not valid YAML" in str(info.value) and "Zx9s3cr3t" not in str(info.value)
    broken_entry = parse_registry(FLEET.replace(AGENCY_2, AGENCY_2 + "\tZx9s3cr3t: v\n"), "r.yaml")
    assert "not valid YAML" in broken_entry.invalid[0].message and "Zx9s3cr3t" not in broken_entry.invalid[0].message


def test_both_ids_of_entries_run_together_count_in_the_duplicate_checks(tmp_path):
    """agency-002's `-` lost (valid YAML) and agency-003 renamed agency-001: the merged entry's first
    id was not claimed, so agency-003's copy stayed valid and took agency-001's name (review)."""
    text = FLEET.replace(AGENCY_2, "    tenant_id: agency-002\n").replace("tenant_id: agency-003", "tenant_id: agency-001")
    reg = load_registry(_write(tmp_path, text))
    assert reg.tenants == []
    assert "duplicate tenant_id 'agency-001', also at tenants[0]" in reg.invalid[-1].message


@pytest.mark.parametrize("character", ["\x00", "\x0c"])
def test_a_control_character_in_an_entry_is_told_at_its_line(tmp_path, character):
    """A form feed also split the file's lines where YAML does not (str.splitlines), so the rest of
    the entry read as a top-level key and the whole file was refused (review)."""
    reg = load_registry(_write(tmp_path, FLEET.replace("Prairie Financial", f"Prairie{character}Financial")))
    assert [t.tenant_id for t in reg.tenants] == ["agency-001", "agency-003"]
    [bad] = reg.invalid
    assert bad.message.endswith(f"control characters are not allowed (U+{ord(character):04X}) at line 13, column 26")

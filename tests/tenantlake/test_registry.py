import copy

import pytest
import yaml

from tenantlake.registry import DEFAULT_PATH, RegistryError, load_registry


def test_shipped_registry_has_five_agencies_with_all_tables(registry):
    assert [t.tenant_id for t in registry.tenants] == [f"agency-00{i}" for i in range(1, 6)]
    for t in registry.tenants:
        assert set(t.tables) == {"Consumer", "Counselor", "Application", "Income", "Expense",
                                 "Debt", "Plan", "Payment"}
        assert t.role_arn.split(":")[4] == t.aws_account_id
        assert t.external_id_ref.startswith(("ssm:/", "secretsmanager:"))


def test_table_arn_is_built_from_the_entry(registry):
    t = registry.tenant("agency-001")
    assert t.table_arn("Debt") == "arn:aws:dynamodb:us-east-1:211111111111:table/Debt-k3j2h5-prod"


def test_unknown_tenant_is_a_clear_error(registry):
    with pytest.raises(RegistryError, match="'agency-999' is not in the registry"):
        registry.tenant("agency-999")


@pytest.fixture
def raw():
    return yaml.safe_load(DEFAULT_PATH.read_text())


def _load(tmp_path, doc):
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_registry(path)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["tenants"][2].update(aws_account_id="12345"),
         r"tenants\[2\] \(agency-003\)\.aws_account_id: String should match pattern"),
        (lambda d: d["tenants"][1].update(role_arn="arn:aws:iam::role/oops"),
         r"tenants\[1\] \(agency-002\)\.role_arn: String should match pattern"),
        (lambda d: d["tenants"][0]["tables"].update(Loan="Loan-x-prod"),
         r"tenants\[0\] \(agency-001\)\.tables: unknown entity Loan"),
        (lambda d: d["tenants"][3].update(role_arn="arn:aws:iam::999999999999:role/tenantlake-export"),
         r"tenants\[3\] \(agency-004\): role_arn is in account 999999999999, not the tenant's"),
        (lambda d: d["tenants"][4].update(export_window="5m"),
         r"tenants\[4\] \(agency-005\)\.export_window: '5m' is outside DynamoDB's incremental range"),
        (lambda d: d["tenants"][0].update(external_id_ref="hunter2"),
         r"tenants\[0\] \(agency-001\)\.external_id_ref: String should match pattern"),
        (lambda d: d["tenants"][1].update(surprise=1),
         r"tenants\[1\] \(agency-002\)\.surprise: Extra inputs are not permitted"),
        (lambda d: d["tenants"][1].pop("region"),
         r"tenants\[1\] \(agency-002\)\.region: Field required"),
    ],
)
def test_bad_entries_name_the_entry_and_the_field(tmp_path, raw, mutate, expected):
    doc = copy.deepcopy(raw)
    mutate(doc)
    with pytest.raises(RegistryError, match=expected) as info:
        _load(tmp_path, doc)
    assert str(tmp_path / "tenants.yaml") in str(info.value)


def test_duplicate_tenant_ids_are_rejected(tmp_path, raw):
    raw["tenants"][3]["tenant_id"] = "agency-001"
    with pytest.raises(RegistryError, match=r"tenants\[3\]\.tenant_id: duplicate tenant_id 'agency-001' "
                                            r"\(first at tenants\[0\]\)"):
        _load(tmp_path, raw)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(RegistryError, match="cannot read the registry"):
        load_registry(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants: [\n")
    with pytest.raises(RegistryError, match="bad.yaml: not valid YAML"):
        load_registry(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(RegistryError, match="expected a mapping"):
        load_registry(bad)


def test_env_var_points_at_another_registry(tmp_path, raw, monkeypatch):
    raw["tenants"] = raw["tenants"][:1]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("TENANTLAKE_REGISTRY", str(path))
    assert [t.tenant_id for t in load_registry().tenants] == ["agency-001"]

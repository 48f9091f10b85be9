import pytest

from tenantlake.formats import dynamodb_json


@pytest.fixture(autouse=True)
def bulk_path_on_small_texts(monkeypatch):
    """These tests hold the bulk path to the line-by-line one on texts a few lines long, which the
    decoder would otherwise read line by line (dynamodb_json.SMALL_TEXT); its own test resets it."""
    monkeypatch.setattr(dynamodb_json, "SMALL_TEXT", 0)

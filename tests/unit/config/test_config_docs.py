"""docs/config.md stays in step with the keyword tables it documents."""

from pathlib import Path

import pytest

from vigil.config import extension, hacf, ldirectord
from vigil.config.base import KeywordStatus

DOC = (Path(__file__).resolve().parents[3] / "docs" / "config.md").read_text()


@pytest.mark.parametrize("kw", [k for k in hacf.KEYWORDS.values()
                                if k.status is not KeywordStatus.USED], ids=lambda k: k.name)
def test_every_ha_cf_directive_vigil_does_not_use_is_explained(kw):
    assert f"`{kw.name}`" in DOC


@pytest.mark.parametrize("kw", list(extension.KEYWORDS.values()), ids=lambda k: k.name)
def test_every_vigil_cf_setting_is_documented(kw):
    assert f"`{kw.name}`" in DOC


@pytest.mark.parametrize("service", sorted(ldirectord.SERVICES))
def test_every_ldirectord_service_is_listed(service):
    assert service in DOC

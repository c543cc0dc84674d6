"""The pathway page of a definition with episode lines: a section per body region, the patient's red flags once."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from pathways.definition import SHIPPED_1_1, SHIPPED_2_0, load_definition_file
from pathways.lines.views import line_view
from service.app import create_app
from service.settings import Settings
from service.store import migrate
from service.store.database import make_engine
from service.ui import pathway_regions
from tests.access import token_for

V2 = load_definition_file(SHIPPED_2_0)
V1_1 = load_definition_file(SHIPPED_1_1)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_each_region_has_its_first_checkpoint_measures_with_mcids_and_steps_in_the_order_they_are_tried() -> None:
    sections = {r.id: r for r in pathway_regions.regions(V2)}
    assert list(sections) == ["spine", "knee", "hip", "shoulder"]
    knee = sections["knee"]
    assert (knee.label, knee.first_checkpoint_weeks, knee.min_age_years) == ("Knee", 6, 18)
    assert [(m.label, m.mcid, m.scale) for m in knee.measures][:2] == [
        ("KOOS JR", "rise ≥ 15", "0–100"),
        ("LEFS", "rise ≥ 9", "0–80"),
    ]
    rows = line_view(V2, V2.regions.episode_lines.line("knee")).checkpoint_rows  # type: ignore[union-attr]
    assert [s.step_id for s in knee.checkpoint_steps] == list(rows) and rows[:3] == (
        "progress-check",
        "imaging",
        "advanced-imaging",
    )
    assert [s.step_id for s in knee.other_steps] == ["relapse", "post-op-pt"]
    advanced = next(s for s in knee.checkpoint_steps if s.step_id == "advanced-imaging")
    assert advanced.also_when == "a radiograph report is recorded"
    assert (sections["hip"].first_checkpoint_weeks, sections["shoulder"].first_checkpoint_weeks) == (8, 12)
    spine = sections["spine"]
    assert (spine.covers, spine.min_age_years) == ("lumbar or cervical", None)
    assert [s.step_id for s in spine.checkpoint_steps][-2:] == ["surgical-consult", "medication"]  # 1.1's order


def test_the_red_flags_are_the_patients_once_with_the_urgent_alone_findings() -> None:
    red_flags = pathway_regions.red_flags(V2)
    assert red_flags is not None
    assert [s.priority for s in red_flags.severities] == ["stat", "urgent", "routine"]
    assert "locked knee (urgent orthopaedic review: locked knee)" in red_flags.severities[1].findings
    assert "night pain with knee osteoarthritis" in red_flags.expected_signs


def test_a_definition_without_lines_has_no_region_sections() -> None:
    assert pathway_regions.regions(V1_1) == []
    assert pathway_regions.red_flags(V1_1) is None


class Markup(HTMLParser):
    """What the page must not have under its CSP, and the regions it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.styled: list[str] = []
        self.regions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.scripts += tag == "script"
        if "style" in found or any(name.startswith("on") for name in found):
            self.styled.append(tag)
        if found.get("data-region"):
            self.regions.append(str(found["data-region"]))


@pytest.fixture()
def admin(tmp_path: Path) -> FlaskClient:
    """The UI on the embedded defaults, migrated as `carepath migrate` would, signed in as an administrator."""
    settings = Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path), "SECRET_KEY": "pathway-regions-test-key"})
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    client = create_app(settings).test_client()
    page = client.get("/ui/sign-in").get_data(as_text=True)
    signed = client.post("/ui/sign-in", data={"token": token_for(engine, "admin"), "csrf_token": csrf(page)})
    assert signed.status_code == 303
    return client


def csrf(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF field"
    return found.group(1)


def test_the_pathway_page_of_2_0_shows_a_section_per_region_and_the_red_flags_without_script_or_inline_style(
    admin: FlaskClient,
) -> None:
    response = admin.get("/ui/pathway")  # 2.0.0 is the active version
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    parsed = Markup()
    parsed.feed(page)
    assert parsed.regions == ["spine", "knee", "hip", "shoulder"]
    assert (parsed.scripts, parsed.styled) == (0, [])
    assert 'id="region-shoulder"' in page and "<strong>12 weeks</strong>" in page
    assert '<td data-label="Responded when">rise ≥ 18</td>' in page  # HOOS JR
    assert "Radiographs of the knee first" in page
    assert 'id="red-flags-heading"' in page and "urgent-alone" in page
    assert 'id="diagram-heading"' not in page


def test_the_pathway_page_of_1_1_keeps_its_diagram(admin: FlaskClient) -> None:
    page = admin.get("/ui/pathway", query_string={"version": V1_1.reference}).get_data(as_text=True)
    assert 'id="diagram-heading"' in page and 'class="chart pathway-diagram"' in page
    assert 'id="regions-heading"' not in page

"""The report's engine plot: coolant temperature and oil pressure from the generator's controller
beside load, voltage and frequency, still on one page (pdftotext, pdfinfo); samples of older
records (4 or 7 values) read back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_server.gentest.record import End, GenTestRecord, Outcome, Sample
from edge_server.gentest.report import render_pdf
from edge_server.gentest.settings import GenTestSettings
from tests.conftest import need_tool
from tests.pdf import read_pdf

START = datetime(2026, 1, 13, 9, 0, tzinfo=UTC)


def _record(engine: bool) -> GenTestRecord:
    rec = GenTestRecord("nsp-linde", "power", "anna", START, 1800.0, id=3,
                        outcome=Outcome.PASSED, end=End.COMPLETED,
                        ended_at=START + timedelta(minutes=32), ran_s=1860.0)
    for k in range(0, 32 * 6):
        t = k * 10.0
        rec.samples.append(Sample(t, 13.6, True, "running", 45.0, 230.0, 50.0,
                                  min(40 + t / 20, 85.0) if engine else None,
                                  410.0 if engine else None))
    return rec


def test_engine_plot_on_one_page(tmp_path: Path) -> None:
    need_tool("pdftotext", "apt-get install -y poppler-utils")
    text, pages = read_pdf(tmp_path / "r.pdf", render_pdf(_record(True), "De Linde",
                                                          GenTestSettings()))
    assert pages == 1
    assert "Koelvloeistof / coolant" in text and "oliedruk / oil pressure" in text
    assert "Belasting / load" in text
    text, pages = read_pdf(tmp_path / "r2.pdf", render_pdf(_record(False), "De Linde",
                                                           GenTestSettings()))
    assert pages == 1 and "Koelvloeistof" not in text  # nothing measured: no empty chart


def test_samples_of_every_age_read_back() -> None:
    new = Sample(10.0, 13.5, True, "running", 45.0, 230.0, 50.0, 80.0, 400.0)
    assert Sample.from_json(new.to_json()) == new
    assert len(new.to_json()) == 9
    old = Sample.from_json([10.0, 13.5, True, "running"])
    assert old.to_json() == [10.0, 13.5, True, "running"] and old.coolant_c is None
    seven = Sample.from_json([10.0, 13.5, True, "running", 45.0, 230.0, 50.0])
    assert seven.frequency_hz == 50.0 and seven.oil_kpa is None and len(seven.to_json()) == 7
    only_engine = Sample(5.0, None, None, None, None, None, None, 70.0, None)
    assert Sample.from_json(only_engine.to_json()) == only_engine

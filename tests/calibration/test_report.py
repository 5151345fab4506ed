"""write_report: files written and parseable; the HTML renders in headless Chromium."""
import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from pluralrm.calibration import analyze, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def written(society, tmp_path_factory):
    report = analyze(society.dataset, predictions=society.true_predictions(), by="country", bootstrap=100,
                     permutations=49)
    out = tmp_path_factory.mktemp("report")
    return report, write_report(report, out)


def test_files_are_written_and_parseable(written):
    report, paths = written
    data = json.loads(paths["json"].read_text())
    assert data == json.loads(report.to_json())
    md = paths["markdown"].read_text()
    for heading in ("## Agreement", "## Divergence", "## Calibration", "## Fidelity", "## Representativeness"):
        assert heading in md
    for png in re.findall(r"\]\((figures/[^)]+\.png)\)", md):
        assert (paths["markdown"].parent / png).read_bytes().startswith(PNG_MAGIC)
    names = sorted(p.name for p in paths["figures"].iterdir())
    assert names == ["agreement.png", "calibration.png", "contested.png", "preference_gap.png",
                     "reliability.png", "retention.png"]


def test_html_is_self_contained_and_every_image_is_a_png(written):
    from matplotlib import image

    _, paths = written
    html = paths["html"].read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(sources) == 6
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw.startswith(PNG_MAGIC)
        import io

        pixels = image.imread(io.BytesIO(raw), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.05
    assert "http://" not in html and "https://" not in html     # nothing to fetch


def test_html_renders_in_headless_chromium(written, tmp_path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium) — rendering not checked")
    from matplotlib import image

    _, paths = written
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--window-size=1200,2400",
                    f"--screenshot={shot}", paths["html"].as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1200)
    non_white = (pixels < 0.95).any(axis=-1).mean()
    assert non_white > 0.05                                    # text, tables and figures drawn
    colourful = (np.ptp(pixels, axis=-1) > 0.2).mean()
    assert colourful > 0.01                                    # the embedded figures decoded and painted

"""Open report.html in headless Chromium: every figure decodes, the page renders."""

from __future__ import annotations

import shutil
import subprocess

import pytest

CHROMIUM = next(
    (
        c
        for c in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
        if c and shutil.which(c)
    ),
    None,
)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


def _chromium(tmp_path, *args):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def test_every_figure_loads_in_chromium(built, tmp_path):
    _, result = built
    url = result["html"].as_uri()
    dom = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for fig in result["figures"]:
        assert f'id="fig-{fig["name"]}"' in html
    # The inline script marks each decoded, non-empty image.
    assert html.count('data-loaded="1"') == len(result["figures"]), html[:500]
    shot = tmp_path / "shot.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", url)
    assert done.returncode == 0 and shot.stat().st_size > 20_000


SORT_CHECK = """<script>
const table = [...document.querySelectorAll("table.sortable")].find(
  t => [...t.tHead.rows[0].cells].some(c => c.textContent === "estimate"));
const col = [...table.tHead.rows[0].cells].findIndex(c => c.textContent === "estimate");
const values = () => [...table.tBodies[0].rows].map(r => Number(r.cells[col].textContent));
const ascending = v => v.every((x, i) => i === 0 || v[i - 1] <= x);
const before = ascending(values());
table.tHead.rows[0].cells[col].click();
const up = ascending(values());
table.tHead.rows[0].cells[col].click();
const down = ascending(values().reverse());
document.body.dataset.sortcheck = [before, up, down].join(",");
</script></body>"""


def test_clicking_a_header_sorts_the_table(built, tmp_path):
    _, result = built
    page = tmp_path / "sort.html"
    page.write_text(result["html"].read_text().replace("</body>", SORT_CHECK))
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    # Not sorted at first; ascending after one click, descending after two.
    assert 'data-sortcheck="false,true,true"' in dom

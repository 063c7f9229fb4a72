"""The exported page in a real headless browser (Debian's Chromium, driven by Playwright): it opens
from a file with the network off, fetches nothing, generates names, blends styles, shares a link
that gives the same names, and shows a hostile name as text."""

import shutil

import pytest

from namegen.checkpoint import load_model
from namegen.data import bundled_path, parse_names
from namegen.export import ExportConfig, export
from namegen.state import TrainConfig, new_state

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

# As the machine's notes advise: without the background-networking flags Chromium tries its own hosts.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def open_page(browser, path, hash_="", width=800):
    """The page at `path` with every request but the file itself refused; (page, requests, errors)."""
    context = browser.new_context(viewport={"width": width, "height": 800}, offline=True)
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append("a dialog opened: " + d.message))
    page.goto(path.as_uri() + hash_)
    page.wait_for_selector("#names li")
    return page, requests, errors


def names_on(page):
    return page.locator("#names li").all_inner_texts()


def test_the_shipped_models_page_opens_offline_fetches_nothing_and_generates_names(browser, tmp_path):
    path = tmp_path / "dinos.html"
    export(load_model(bundled_path("checkpoints", "dinos.npz")), ExportConfig(to="html"), path)
    page, requests, errors = open_page(browser, path)
    assert len(names_on(page)) == 10 and not errors
    assert requests == [path.as_uri()]
    page.fill("#prefix", "ste")
    page.fill("#count", "5")
    page.fill("#seed", "42")
    page.press("#seed", "Enter")  # the keyboard submits, as the button does
    shown = names_on(page)
    assert len(shown) == 5 and all(name.startswith("Ste") for name in shown)
    link = page.locator("#share").get_attribute("href")
    again, _, errors = open_page(browser, path, link)
    assert names_on(again) == shown and not errors  # the link reproduces them


def test_a_page_fits_a_phone_and_labels_every_control(browser, tmp_path):
    path = tmp_path / "dinos.html"
    export(load_model(bundled_path("checkpoints", "dinos.npz")), ExportConfig(to="html"), path)
    page, _, _ = open_page(browser, path, width=360)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, select')]
        .filter((e) => !e.closest('label') && !e.closest('[hidden]')).length""")
    assert unlabelled == 0


def test_a_two_style_page_blends_its_styles(browser, two_letter_styles, tmp_path):
    path = tmp_path / "two.html"
    export(two_letter_styles, ExportConfig(to="html"), path)
    page, _, errors = open_page(browser, path)
    assert page.locator("#styles label").count() == 2 and not errors
    page.fill("#count", "100")
    page.fill("#seed", "1")
    page.locator("#style0").fill("0")
    page.locator("#style1").fill("1")
    page.click("#generate")
    letters = "".join(names_on(page))
    assert letters and sum(c in "cd" for c in letters) / len(letters) > 0.8


def test_a_hostile_name_is_shown_as_text_and_runs_nothing(browser, tmp_path):
    names = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "Tom & Jerry"] * 10
    state = new_state(TrainConfig(hidden_size=16, epochs=30, batch_size=4, optimizer="adam", learning_rate=0.03),
                      parse_names("\n".join(names), "hostile.txt", "keep"))
    from namegen.training import train

    train(state, engine="numpy")
    path = tmp_path / "hostile.html"
    export(state.model, ExportConfig(to="html"), path)
    page, requests, errors = open_page(browser, path)
    page.fill("#count", "200")
    page.click("#generate")
    shown = names_on(page)
    assert not errors and requests == [path.as_uri()]  # no alert, no image fetched
    assert any("<" in name for name in shown)  # markup-like names are there, as text
    assert page.locator("#names img").count() == 0 and page.locator("#names script").count() == 0

"""Regenerate the README's screenshots of every page from a running app.

    make run                                   # the demo; wait a minute for the first batches
    .venv/bin/python docs/screenshots.py       # → docs/screenshots/<page>.<lang>.png

Options: --base-url (default http://localhost:8501), --lang ko|en|both
(default both), --chromium (default /usr/bin/chromium; Playwright, from
requirements-dev.txt, drives it). Each page is opened fresh with the view the
README describes, waited on until Streamlit has finished drawing, and cut to
the part worth showing. Nothing here is needed to run the app.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"
WIDTH = 1280
# page → (path and query, text that shows when it is ready (ko, en), height to keep in pixels, what to open first)
VIEWS = {
    "overview": ("/", ("최근 30일 일별 금액", "Daily amounts, last 30 days"), 1450, None),
    "explore": ("/explore?table=topups&period.created_at=last_30_days&chart=stacked_bar&x=created_at&bucket=day"
                "&agg=sum&y=amount_krw&color=channel", ("조건에 맞는 행", "Matching rows"), 1500, None),
    "reports": ("/reports?report=daily_topups&period=last_30_days", ("행 수", "Rows"), 1450, None),
    "pipeline": ("/pipeline", ("배치 기록", "Batches over time"), 1800, None),
    "dictionary": ("/dictionary", ("데이터 사전", "Dictionary"), 1000, ("topups —", "topups —")),
}


def wait_idle(page) -> None:
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=120_000)
    page.wait_for_timeout(1500)  # plotly's first paint


def shoot(browser, base: str, lang: str) -> list[Path]:
    saved = []
    for name, (path, ready, height, open_first) in VIEWS.items():
        context = browser.new_context(viewport={"width": WIDTH, "height": height}, device_scale_factor=1)
        try:
            page = context.new_page()
            sep = "&" if "?" in path else "?"
            page.goto(base + path + (f"{sep}lang=en" if lang == "en" else ""))
            page.get_by_text(ready[lang == "en"]).first.wait_for(timeout=120_000)
            wait_idle(page)
            if open_first:
                page.get_by_text(open_first[lang == "en"]).first.click()
                wait_idle(page)
            target = OUT / f"{name}.{lang}.png"
            page.screenshot(path=str(target))
            saved.append(target)
        finally:
            context.close()
    return saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default="http://localhost:8501")
    ap.add_argument("--lang", choices=("ko", "en", "both"), default="both")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("docs/screenshots.py needs Playwright: .venv/bin/pip install -r requirements-dev.txt", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"no browser at {args.chromium} — apt-get install -y chromium, or pass --chromium PATH", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    langs = ("ko", "en") if args.lang == "both" else (args.lang,)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium,
                                     args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for lang in langs:
                for path in shoot(browser, args.base_url.rstrip("/"), lang):
                    print(path.relative_to(OUT.parent.parent))
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback: usually the app is not running
            print(f"could not take the screenshots from {args.base_url}: {str(exc).splitlines()[0]} — "
                  "is the app running (make run) and has the first batch landed?", file=sys.stderr)
            return 1
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

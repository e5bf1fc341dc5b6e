#!/usr/bin/env python3
"""Signs in to the office web page in a real headless Chromium and approves one document.

Usage: approve_in_browser.py BASE_URL TOKEN DOCUMENT_ID REASON [SCREENSHOT.png]
Exits 0 when the page confirms the approval, 1 with a message saying which step failed.
Driven by Tests/EndToEndTests/OfficeWebTests.swift; chromium and chromium-driver come from
Debian, selenium from PyPI (.ci/run installs all three)."""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# A click on a form's button returns before the browser has the next page: every step waits
# (up to this many seconds) for what the next page must show, instead of reading the old one.
STEP_SECONDS = 30


def main() -> int:
    base, token, document, reason = sys.argv[1:5]
    screenshot = sys.argv[5] if len(sys.argv) > 5 else None
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,700",
                 "--no-proxy-server"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    try:
        driver.get(base + "/office")
        if "/office/sign-in" not in driver.current_url:
            print(f"step 1: /office without signing in should lead to the sign-in page, got {driver.current_url}")
            return 1
        wait = WebDriverWait(driver, STEP_SECONDS)
        driver.find_element(By.ID, "token").send_keys("sto_" + "0" * 64)
        driver.find_element(By.ID, "sign-in").click()
        try:
            wait.until(lambda d: "not valid" in d.page_source)
        except Exception:
            print("step 2: a wrong token was not refused on the page")
            return 1
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "sign-in").click()
        try:
            wait.until(lambda d: d.find_elements(By.ID, "approvals") or d.find_elements(By.ID, "empty"))
        except Exception:
            print(f"step 3: signing in with the right token did not reach the approval queue:\n{driver.page_source[:2000]}")
            return 1
        rows = [row for row in driver.find_elements(By.CSS_SELECTOR, "#approvals tr") if document in row.text]
        if len(rows) != 1:
            print(f"step 3: the approval queue should show {document} once, page was:\n{driver.page_source[:2000]}")
            return 1
        rows[0].find_element(By.NAME, "reason").send_keys(reason)
        if screenshot:
            driver.save_screenshot(screenshot)
        rows[0].find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        try:
            wait.until(lambda d: d.find_elements(By.ID, "notice"))
        except Exception:
            print(f"step 4: no confirmation after Approve:\n{driver.page_source[:2000]}")
            return 1
        notice = driver.find_element(By.ID, "notice").text
        if document not in notice or "approved" not in notice:
            print(f"step 4: after Approve the page should confirm it, notice was {notice!r}")
            return 1
        if any(document in row.text for row in driver.find_elements(By.CSS_SELECTOR, "#approvals tr")):
            print("step 5: the approved document is still in the queue")
            return 1
        print(f"approved {document} in Chromium {driver.capabilities.get('browserVersion', '?')}")
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())

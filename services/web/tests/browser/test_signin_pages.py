"""W1 and W2 in Chromium: every sign-in step of the demo users, with JavaScript on and
off, the keyboard alone, "remember this computer" on a shared browser, the authenticator
read from the QR image and the manual key, the countdown and the resend wait, axe-core."""

import io
import re
import time

import pyotp
import zxingcpp
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from conftest import ADMIN, COMPANY, DOCTOR, NURSE, check_axe, screenshot


def password_step(page, gatehouse, who, company=COMPANY):
    page.goto(f"{gatehouse.url}/signin")
    page.get_by_label("Company").fill(company)
    page.get_by_label("User ID").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def test_sms_code_with_countdown_resend_wait_and_axe(gatehouse, context, browser):
    page = context.new_page()
    page.goto(f"{gatehouse.url}/signin")
    check_axe(browser, page)
    screenshot(gatehouse, page, "signin")
    mark = gatehouse.mark()
    password_step(page, gatehouse, NURSE)
    expect(page.get_by_text("We sent a code by text message to")).to_be_visible()
    expect(page.get_by_text("•••-•••-0147")).to_be_visible()
    code_field = page.get_by_label("Code", exact=True)
    assert code_field.get_attribute("autocomplete") == "one-time-code"
    assert code_field.get_attribute("inputmode") == "numeric"
    # "Time Left" counts down (our script; the page's CSP allows nothing else).
    clock = page.locator("#time-left .clock")
    first = clock.text_content()
    assert re.fullmatch(r"[0-5]:\d\d", first), first
    expect(clock).not_to_have_text(first)
    # Asking again at once is throttled: the button waits, its wait counts down.
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("alert")).to_contain_text("Wait")
    resend = page.get_by_role("button", name="Send a new code")
    expect(resend).to_be_disabled()
    # The code already sent still counts down, and the page still says where it went.
    expect(page.get_by_text("Time Left")).to_be_visible()
    expect(page.get_by_text("•••-•••-0147")).to_be_visible()
    hint = page.locator("#resend-wait")
    before = hint.text_content()
    expect(hint).not_to_have_text(before)
    check_axe(browser, page)
    screenshot(gatehouse, page, "code")
    code = gatehouse.code_after(mark, "sms")
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    check_axe(browser, page)
    screenshot(gatehouse, page, "account")
    sign_out(page)
    check_axe(browser, page)
    # The company is remembered on this computer; the user ID and password are not.
    page.goto(f"{gatehouse.url}/signin")
    expect(page.get_by_label("Company")).to_have_value(COMPANY)
    expect(page.get_by_label("User ID")).to_have_value("")
    expect(page.get_by_label("Password")).to_have_value("")


def test_email_code_with_javascript_off_and_a_wrong_code(gatehouse, no_js):
    page = no_js.new_page()
    mark = gatehouse.mark()
    password_step(page, gatehouse, ADMIN)
    expect(page.get_by_text("We sent a code by email to")).to_be_visible()
    expect(page.get_by_text("Time Left")).to_be_visible()
    code = gatehouse.code_after(mark, "email")
    wrong = "111111" if code == "000000" else "000000"
    page.get_by_label("Code", exact=True).fill(wrong)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text("That code is not right. 4 tries left.")
    # Without a script the throttled button is drawn disabled, with its wait in words.
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("button", name="Send a new code")).to_be_disabled()
    expect(page.get_by_text(re.compile(r"You can ask for a new code in \d+ seconds"))).to_be_visible()
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    sign_out(page)


def test_refusals_are_explained(gatehouse, no_js):
    page = no_js.new_page()
    seen = []
    for who, company in [((ADMIN[0], "Not-The-Password-1!"), COMPANY), (ADMIN, "no-such-clinic"), (("nobody", ADMIN[1]), COMPANY)]:
        password_step(page, gatehouse, who, company)
        seen.append(page.get_by_role("alert").text_content())
    assert seen == [seen[0]] * 3, seen
    assert seen[0] == "The company, user ID or password is not right. Check them and try again."
    # A refused company is not remembered (a typo would greet the next person).
    page.goto(f"{gatehouse.url}/signin")
    expect(page.get_by_label("Company")).to_have_value("")


def test_authenticator_enrollment_from_the_qr_image_and_the_manual_key(gatehouse, context, browser):
    page = context.new_page()
    password_step(page, gatehouse, DOCTOR)
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    check_axe(browser, page)
    page.get_by_role("button", name="Authenticator app").click()
    expect(page.get_by_label("Title for authenticator")).to_have_value(DOCTOR[0])
    page.get_by_role("button", name="Continue").click()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    check_axe(browser, page)
    screenshot(gatehouse, page, "authenticator")
    # The QR image, read by a barcode reader: an otpauth URI with the secret.
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert found, "the QR code could not be read"
    uri = pyotp.parse_uri(found[0].text)
    key = page.get_by_label("Manual entry key").text_content().strip()
    assert uri.secret == key.replace(" ", "")
    assert uri.issuer and uri.name
    page.get_by_label("Code from your app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm").click()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(5)
    shown = [c.strip() for c in codes.all_text_contents()]
    assert len(set(shown)) == 5
    expect(page.get_by_role("link", name="Download")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    check_axe(browser, page)
    screenshot(gatehouse, page, "recovery-codes")
    page.get_by_label("I have saved these codes").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    expect(page.get_by_text("Authenticator app", exact=True)).to_be_visible()
    # Shown once: the page was never stored (no-store), so Back cannot show it again.
    try:
        page.go_back()
    except PlaywrightError as e:
        assert "ERR_CACHE_MISS" in str(e), e
    expect(page.get_by_role("list", name="Recovery codes")).to_have_count(0)
    page.goto(f"{gatehouse.url}/account")
    sign_out(page)
    # The next sign-in asks the app's code; a recovery code works instead, once.
    password_step(page, gatehouse, DOCTOR)
    expect(page.get_by_label("Authenticator code")).to_be_visible()
    page.get_by_role("button", name="Recovery code").click()
    page.get_by_label("Recovery code").fill(shown[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    sign_out(page)


def test_remember_this_computer_is_for_one_user_on_a_shared_browser(gatehouse, no_js):
    page = no_js.new_page()

    def sign_in(who, channel, remember):
        mark = gatehouse.mark()
        password_step(page, gatehouse, who)
        if page.get_by_role("heading", name="My account").count():
            sign_out(page)
            return False
        code = gatehouse.code_after(mark, channel)
        page.get_by_label("Code", exact=True).fill(code)
        if remember:
            page.get_by_label("Remember this computer").check()
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("heading", name="My account")).to_be_visible()
        sign_out(page)
        return True

    assert sign_in(NURSE, "sms", remember=True)
    assert sign_in(ADMIN, "email", remember=False), "the admin is asked on the same browser"
    assert not sign_in(NURSE, "sms", remember=False), "the nurse is remembered"


def test_keyboard_only_sign_in(gatehouse, context):
    page = context.new_page()
    page.goto(f"{gatehouse.url}/signin")
    # A fresh profile remembers no company: the focus starts on "Company".
    expect(page.get_by_label("Company")).to_be_focused()
    mark = gatehouse.mark()
    page.keyboard.type(COMPANY)
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN[0])
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN[1])
    page.keyboard.press("Enter")
    expect(page.get_by_text("We sent a code by email to")).to_be_visible()
    # The code field has the focus.
    expect(page.get_by_label("Code", exact=True)).to_be_focused()
    page.keyboard.type(gatehouse.code_after(mark, "email"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    # Tab reaches "Sign out"; Enter presses it.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Sign out":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_text("You are signed out.")).to_be_visible()

"""Helpers of the screen and console tests (kept out of conftest.py: several test folders have a
conftest module, so `from conftest import ...` would find whichever was imported first)."""
from __future__ import annotations


from rostest_support import REPO, free_port, wait_for  # noqa: F401  (free_port: re-exported)


DEMO_STORE = REPO / 'config' / 'stores' / 'demo'


STAFF_PASSWORD = 'staff-pass-1234'



def viewport(driver, width: int, height: int) -> None:
    """The page area as the robot's screen has it (landscape 1280x800 or portrait 800x1280)."""
    from retail_demo.screens import set_viewport
    set_viewport(driver, width, height)


def text_in(driver, css: str) -> str:
    """The visible text of the elements matching `css`, joined (empty if none)."""
    return driver.execute_script('return Array.from(document.querySelectorAll(arguments[0]))'
                                 '.map(e => e.innerText).join(" ")', css)


def dom_text(driver) -> str:
    """Everything in the DOM as text, as `chromium --dump-dom` would see it."""
    return driver.execute_script('return document.documentElement.outerHTML')


def wait_text(driver, css: str, needle: str, timeout: float = 10.0, what: str = '') -> str:
    return wait_for(lambda: needle in text_in(driver, css) and text_in(driver, css), timeout,
                    what or f'{needle!r} in {css}')


def data_of(driver, element_id: str) -> dict:
    """The data-* attributes of an element (read in one go: live pages redraw it often)."""
    return driver.execute_script('const e = document.getElementById(arguments[0]);'
                                 'return e ? Object.assign({}, e.dataset) : null;', element_id) or {}

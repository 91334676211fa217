"""What the HQ pages say in words a store manager reads right (newcomer's findings): the time of
the figures is the chain's and the page names its zone (UTC+8), and an empty trend says its peak is 0, not 1."""
from __future__ import annotations

from retail_platform.pages import _trend_svg, _when


def test_a_time_on_the_pages_is_the_chains():      # the page says so (test_hq_paging)
    assert _when(1_790_000_000) == '2026-09-21 22:13'          # 14:13 UTC
    assert _when(None) == '–'


def test_an_empty_trend_says_peak_0_and_a_busy_one_its_peak():
    days = ['2026-11-01', '2026-11-02']
    assert 'peak 0)' in _trend_svg([], days)
    rows = [{'day': '2026-11-01', 'engaged': 3, 'purchased': 1},
            {'day': '2026-11-02', 'engaged': 7, 'purchased': 2},
            {'day': '2026-11-02', 'engaged': 2, 'purchased': 0}]
    assert 'peak 9)' in _trend_svg(rows, days)

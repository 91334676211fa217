"""Shared stores for the recommendation tests: a tiny hand-written one and a planted synthetic one."""
from __future__ import annotations

from pathlib import Path

import pytest

from retail_common.catalog import load_catalog
from retail_recommendation.history import History, load_history, write_history
from retail_recommendation.training import train
from retail_recommendation.synthetic import make_catalog, simulate_purchases, write_catalog

DATA = Path(__file__).resolve().parent.parent / 'data' / 'recommendation'


@pytest.fixture(scope='session')
def tiny():
    """(catalog, history, model) of tests/data/recommendation (bad rows included on purpose)."""
    catalog = load_catalog(DATA / 'catalog.csv')
    history = load_history(DATA / 'history.csv', catalog.by_sku)
    return catalog, history, train(catalog, history)


@pytest.fixture(scope='session')
def planted():
    """(catalog, history, model): 300 products, 1500 members with planted habits."""
    catalog = make_catalog(300, seed=11)
    history = History.from_purchases(simulate_purchases(catalog, 1500, seed=12))
    return catalog, history, train(catalog, history)


@pytest.fixture(scope='session')
def planted_files(tmp_path_factory, planted):
    """The planted store written as catalog.csv and history.csv in a folder."""
    catalog, history, _ = planted
    folder = tmp_path_factory.mktemp('planted')
    write_catalog(folder / 'catalog.csv', catalog)
    write_history(folder / 'history.csv', history)
    return folder

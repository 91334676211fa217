"""docs/architecture.md is checked against the code: every topic, service and action name it
writes (in the diagram or in `backquotes`) is a name of retail_common.names, and the diagram's
nodes are nodes the packages ship."""
from __future__ import annotations

import re
from pathlib import Path

from retail_common import names

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'architecture.md'
NAME = re.compile(r'(?<![\w.~])/(?:[a-z_]+/)*[a-z_]+(?![\w/.])')


def _diagram(text: str) -> str:
    return text.split('```mermaid', 1)[1].split('```', 1)[0]


def test_every_name_the_diagram_and_text_use_exists():
    text = DOC.read_text(encoding='utf-8')
    known = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    diagram = _diagram(text)
    in_diagram = set(NAME.findall(re.sub(r'\[[^\]]*\]', '', diagram)))   # node labels are not names
    in_text = {n for quoted in re.findall(r'`([^`]+)`', text) for n in NAME.findall(quoted) if quoted == n}
    assert len(in_diagram) >= 20, in_diagram
    assert in_diagram <= known, f'not in retail_common.names: {sorted(in_diagram - known)}'
    assert in_text <= known, f'not in retail_common.names: {sorted(in_text - known)}'


def test_the_diagram_names_the_nodes_the_packages_ship():
    import importlib.metadata as md
    scripts = {ep.name for dist in md.distributions() for ep in dist.entry_points
               if ep.group == 'console_scripts' and ep.name.startswith('retail_')}
    labels = re.findall(r'\w+\[([a-z]+)/([a-z_]+)', _diagram(DOC.read_text(encoding='utf-8')))
    for area, node in labels:
        assert f'retail_{area}_{node}' in scripts, f'{area}/{node}: no console script retail_{area}_{node}'

"""Every Python example in docs/clients/python.md runs, against a real server."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, Server

DOC = ROOT / "docs" / "clients" / "python.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_example_runs(i: int, plain_server: Server) -> None:
    code = BLOCKS[i].replace("http://127.0.0.1:8080", plain_server.url)
    exec(compile(code, f"{DOC.name} example {i}", "exec"), {"__name__": "__doc_example__"})

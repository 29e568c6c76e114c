"""`make test`'s worker processes keep together what must be made once: the tests of one `xdist_group` run on one
worker, so the session's smoke report and each module-scoped fixture are made once, not once a worker."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("test_parallel")


def test_an_xdist_group_reaches_the_scheduler(request):
    """pytest-xdist's loadgroup carries the group to the scheduler in the node id (`...@group`); under pytest 9.2
    that suffix no longer takes (pytest-xdist#1386) and the groups are spread over the workers without a word."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not a worker of `pytest -n N --dist loadgroup` (make test)")
    assert request.node.nodeid.endswith("@test_parallel"), (
        f"{request.node.nodeid}: the xdist_group did not reach the scheduler, so grouped tests run on any worker "
        "and shared fixtures are made on each (pytest-xdist#1386; pyproject.toml pins a pytest that groups)"
    )


def test_the_notebooks_cells_are_one_group(request):
    """`make test` runs the notebooks under nbval beside the tests: notebook 03 reads the run 02 trains, so every cell
    must reach one worker, in order (tests/nbval_fresh.py marks them)."""
    cells = [item for item in request.session.items if str(item.path).endswith(".ipynb")]
    if not cells or not getattr(request.config.option, "loadgroup", False):
        pytest.skip("the notebooks are not in this session, or it is not `--dist loadgroup` (make test)")
    assert all(item.nodeid.endswith("@notebooks") for item in cells), [i.nodeid for i in cells[:3]]
    assert [item.path.name for item in cells] == sorted(item.path.name for item in cells)


def test_heavy_tests_are_collected_first_and_outside_any_group(request):
    """xdist hands out work in collection order: the tests marked `heavy` (conftest) come before every other, so the
    longest start early and the two workers finish together; in a group they would wait for the group's turn."""
    items = request.session.items
    heavy = [i for i, item in enumerate(items) if item.get_closest_marker("heavy")]
    if not heavy:
        pytest.skip("no test marked heavy in this session")
    assert heavy == list(range(len(heavy))), [items[i].nodeid for i in heavy]
    assert not [items[i].nodeid for i in heavy if items[i].get_closest_marker("xdist_group")]

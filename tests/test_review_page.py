"""The reviewers' page on its own, in headless Chromium with canned API answers (no server):
what a long backlog looks like. The whole loop on a real `rag serve` is in test_serve_ray.py."""

import json
import subprocess

from tests.conftest import BROWSER_DIR, browser_node


def test_a_list_at_its_limit_says_so_and_shows_more_keeping_what_was_typed():
    result = subprocess.run([browser_node(), "more_flow.mjs"], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # 250 answers wait; the page asks for 200: it says more may wait, and offers them
    assert seen["before"] == {"count": "(200+)", "more": True, "queueMore": False, "items": 200}
    assert seen["after"] == {"count": "(250)", "more": False, "draft": "draft kept"}
    assert seen["seen"] == ["/v1/feedback/open?limit=200", "/v1/feedback/open?limit=400"]
    assert seen["console"] == []

"""The reviewers' page on its own, in headless Chromium with canned API answers (no server):
what a long backlog looks like. The whole loop on a real `rag serve` is in test_serve_ray.py."""

import json
import subprocess

from tests.conftest import BROWSER_DIR, browser_node


def test_a_list_at_its_limit_says_so_and_shows_more_of_itself_keeping_what_was_typed():
    result = subprocess.run([browser_node(), "more_flow.mjs"], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # 250 answers wait and 70 questions are queued; the page asks for 200 and 50: both say more may wait
    assert seen["before"] == {"wrong": "(200+)", "wrongMore": True, "queue": "(50+)", "queueMore": True, "items": 200}
    assert seen["first"] == ["/v1/feedback/open?limit=200", "/v1/corrections/suggestions?limit=50&scan=1000",
                             "/v1/corrections"]
    # "Show more", clicked twice while it loads: one request, of that list only; the typed draft stays
    more = seen["wrongMore"]
    assert more["requests"] == ["/v1/feedback/open?limit=400"] and more["draft"] == "draft kept"
    assert more["loading"] == {"label": "Loading…", "busy": "true"}  # while it loads, it says so
    assert (more["label"], more["busy"]) == ("Show more: the oldest are not shown", "false")
    assert (more["wrong"], more["wrongMore"], more["queue"], more["queueMore"]) == ("(250)", False, "(50+)", True)
    more = seen["queueMore"]
    assert more["requests"] == ["/v1/corrections/suggestions?limit=100&scan=2000"]  # and further back
    assert (more["wrong"], more["wrongMore"], more["queue"], more["queueMore"]) == ("(250)", False, "(70)", False)
    # a list that fails to load says so, without the count or the offer of the last load
    failed = seen["failed"]
    assert failed["text"] == "Could not load this list: boom" and (failed["wrong"], failed["wrongMore"]) == ("", False)
    assert [m for m in seen["console"] if "500" not in m] == []

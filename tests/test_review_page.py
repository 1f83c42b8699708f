"""The reviewers' page and the chat page on their own, in headless Chromium with canned API
answers (no server): what a long backlog looks like, and an asker confirming a correction. The whole loop on a real `rag serve` is in test_serve_ray.py."""

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


def test_the_chat_page_offers_a_correction_of_a_similar_question_and_shows_it_on_yes():
    result = subprocess.run([browser_node(), "confirm_flow.mjs"], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["offered"] == {"questions": ['How do I resume a failed backup? <img src=x onerror="window.hacked=1">',
                                             "How do I delete a backup?"], "images": 0}
    # a proxy's error page (not JSON) says so and lets the asker try again
    assert seen["refused"] == {"status": "Could not load it: Bad Gateway", "enabled": True}
    assert seen["posted"] == [{"answer_id": "a1", "correction_id": "c1"}] * 2
    shown = seen["shown"]
    assert shown["question"] == "backup died halfway, continue?" and shown["text"] == "Run wombat backup --resume."
    assert shown["mark"].startswith("✔ Answer from a human correction by ana") and not shown["offersAgain"]
    assert shown["status"] == "Thanks: the corrected answer is below." and shown["enabled"] == 0 and not shown["hacked"]
    assert [m for m in seen["console"] if "502" not in m] == []

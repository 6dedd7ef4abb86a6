"""A summary as a background job through the real server: started (202), polled for its progress,
finished with the summary; unknown jobs are 404 in OpenAI's error shape."""

from __future__ import annotations

import time

import httpx

from tests.api.conftest import Running


def test_a_summary_job_reports_progress_and_its_result(api: Running) -> None:
    hit = httpx.post(api.url + "/v1/search", json={"query": "exponential backoff", "top_k": 1}, timeout=60).json()["data"][0]
    assert hit["kind"] == "transcript"
    r = httpx.post(api.url + "/v1/summaries/jobs", json={"source_ids": [hit["source_id"]]}, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["object"] == "summary.job" and job["status"] == "running" and job["title"] == hit["title"]
    seen = []
    deadline = time.monotonic() + 120
    while job["status"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = httpx.get(f"{api.url}/v1/summaries/jobs/{job['id']}", timeout=30).json()
        seen.append(job["progress"]["done"])
    assert job["status"] == "succeeded", job
    assert job["progress"]["stage"] == "done" and job["progress"]["done"] == job["progress"]["total"] >= 1
    assert seen == sorted(seen)
    result = job["result"]  # the random tiny model may well write nothing but blanks
    assert isinstance(result["summary"], str) and result["sources"][0]["kind"] == "transcript" and result["input_chars"] > 0

    missing = httpx.get(api.url + "/v1/summaries/jobs/sumjob_0_0", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = httpx.post(api.url + "/v1/summaries/jobs", json={"lecture": "no such lecture"}, timeout=30)
    assert bad.status_code == 404  # refused at once, no job made

"""The test HTTP server's request counter, which the benchmarks rely on to count a reader's requests."""

from __future__ import annotations

import urllib.request


def test_the_http_server_counts_requests_and_body_bytes(http_server) -> None:
    http_server.put(__file__, "stats/me.py")
    http_server.stats(reset=True)
    req = urllib.request.Request(http_server.url("stats/me.py"), headers={"Range": "bytes=10-109"})
    with urllib.request.urlopen(req) as resp:
        assert len(resp.read()) == 100
    with urllib.request.urlopen(http_server.url("stats/me.py")) as resp:
        whole = len(resp.read())
    assert http_server.stats() == {"requests": 2, "bytes": 100 + whole}
    assert http_server.stats(reset=True)["requests"] == 2  # asking for the counts is not counted
    assert http_server.stats() == {"requests": 0, "bytes": 0}

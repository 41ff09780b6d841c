"""The hot path: gzip bytes made once, conditional GETs, and the cache of verified tokens."""

from __future__ import annotations

import gzip
import json
import time

from app.auth import VerifiedTokenCache
from tests.support.secrets import JWT_SECRET, make_token
from tests.support.snapshots import llm_snapshot

PATH = "/api/models/openrouter"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_gzip_bytes_decompress_to_the_same_json(client, auth_headers):
    plain = client.get(PATH, headers=auth_headers)
    packed = client.get(PATH, headers={**auth_headers, "Accept-Encoding": "br, gzip;q=0.8"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert json.loads(gzip.decompress(packed.get_data()))["data"]["source"] == "curated"
    assert len(packed.get_data()) < len(plain.get_data()) / 3
    assert packed.headers["ETag"] != plain.headers["ETag"]


def test_gzip_is_not_sent_when_refused(client, auth_headers):
    for header in ("identity", "gzip;q=0", ""):
        response = client.get(PATH, headers={**auth_headers, "Accept-Encoding": header})
        assert "Content-Encoding" not in response.headers
        assert json.loads(response.get_data())["success"] is True


def test_gzip_bytes_are_made_once_per_snapshot():
    snapshot = llm_snapshot([{"id": "a/b", "name": "B", "provider": "A", "context": 1}], "api", 1.0)
    assert gzip.decompress(snapshot.gzip_body) == snapshot.body
    # Same catalog, same compressed bytes (no timestamp in the gzip header).
    again = llm_snapshot([{"id": "a/b", "name": "B", "provider": "A", "context": 1}], "api", 2.0)
    assert again.gzip_body == snapshot.gzip_body


def test_conditional_get_for_either_representation(client, auth_headers):
    plain = client.get(PATH, headers=auth_headers).headers["ETag"]
    packed = client.get(PATH, headers={**auth_headers, "Accept-Encoding": "gzip"}).headers["ETag"]
    for etag in (plain, packed, f"W/{plain}", f'"other", {packed}', "*"):
        response = client.get(PATH, headers={**auth_headers, "If-None-Match": etag})
        assert response.status_code == 304, etag
        assert response.get_data() == b""
    assert client.get(PATH, headers={**auth_headers, "If-None-Match": '"nope"'}).status_code == 200


def test_conditional_get_still_needs_a_token(client, auth_headers):
    etag = client.get(PATH, headers=auth_headers).headers["ETag"]
    assert client.get(PATH, headers={"If-None-Match": etag}).status_code == 401


def test_cache_serves_a_verified_token_until_its_exp():
    cache = VerifiedTokenCache()
    cache.put("t", {"sub": "u", "exp": 1000})
    assert cache.get("t", now=999.0) == {"sub": "u", "exp": 1000}
    assert cache.get("t", now=1000.0) is None
    assert cache.get("t", now=999.0) is None  # dropped once expired
    cache.put("no-exp", {"sub": "u"})
    assert cache.get("no-exp", now=0.0) is None


def test_cache_is_bounded():
    cache = VerifiedTokenCache(max_entries=3)
    for i in range(10):
        cache.put(f"t{i}", {"exp": 10**10})
    assert len(cache) == 3
    assert cache.get("t9", now=0.0) and cache.get("t0", now=0.0) is None


def test_a_cached_token_is_refused_once_expired(app, client):
    token = make_token(exp=int(time.time()) + 1)
    assert client.get(PATH, headers=bearer(token)).status_code == 200
    assert token in app.extensions["verified_tokens"]._entries
    time.sleep(max(0.0, app.extensions["verified_tokens"]._entries[token][0] - time.time()) + 0.05)
    response = client.get(PATH, headers=bearer(token))
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "token_expired"


def test_the_cache_does_not_let_tampered_or_foreign_tokens_in(app, client):
    good = make_token()
    assert client.get(PATH, headers=bearer(good)).status_code == 200
    header, payload, signature = good.split(".")
    tampered_signature = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    foreign = make_token(secret=JWT_SECRET[::-1])
    for bad in (tampered_signature, foreign, good[:-1], good + "x"):
        response = client.get(PATH, headers=bearer(bad))
        assert response.status_code == 401, bad
    assert list(app.extensions["verified_tokens"]._entries) == [good]


def _answer(client, path, headers):
    response = client.get(path, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def test_fast_path_and_flask_path_answer_alike_on_every_catalog(app, client):
    tokens = app.extensions["verified_tokens"]
    paths = list(app.extensions["catalog_service"].registry.by_path)
    assert PATH in paths and len(paths) >= 4
    for path in paths:
        etag = client.get(path, headers=bearer(make_token())).headers["ETag"]
        cases = [("", {}), ("", {"Accept-Encoding": "gzip"}), ("", {"If-None-Match": etag}),
                 ("?q=e&free=false&unknown=1", {}), ("?min_context=lots", {})]  # fmt: skip
        for number, (query, extra) in enumerate(cases):
            token = make_token(sub=f"fast-path-{path}-{number}")
            headers = {**bearer(token), **extra}
            assert token not in tokens._entries
            through_flask = _answer(client, path + query, headers)  # a new token: verified in full by the view
            assert token in tokens._entries
            fast = _answer(client, path + query, headers)  # now answered before Flask routes it
            assert fast == through_flask, (path, query, extra)


def test_fast_path_answers_valid_filters_and_leaves_invalid_ones_to_flask(app, client, auth_headers):
    through_flask = []
    app.before_request(lambda: through_flask.append(1))  # runs only for what Flask dispatches
    client.get(PATH, headers=auth_headers)  # the token is now cached
    assert len(through_flask) == 1
    assert client.get(PATH + "?q=gpt&x=1", headers=auth_headers).status_code == 200
    assert len(through_flask) == 1  # answered before Flask
    response = client.get(PATH + "?min_context=lots", headers=auth_headers)
    assert response.status_code == 400 and response.get_json()["error"]["parameter"] == "min_context"
    assert len(through_flask) == 2


def test_fast_path_leaves_heads_and_other_paths_to_flask(app, client, auth_headers):
    client.get(PATH, headers=auth_headers)  # the token is now cached
    assert client.get(PATH + "?x=1", headers=auth_headers).status_code == 200
    assert client.head(PATH, headers=auth_headers).get_data() == b""
    assert client.post(PATH, headers=auth_headers).status_code == 405
    assert client.get(PATH + "/", headers=auth_headers).status_code == 404


def test_metrics_count_fast_path_requests_too(app, client, auth_headers):
    for _ in range(5):
        client.get(PATH, headers=auth_headers)
    text = client.get("/metrics").get_data(as_text=True)
    assert f'catalog_http_requests_total{{endpoint="{PATH}",status="200"}} 5.0' in text

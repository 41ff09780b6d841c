"""GET /api/models (the configured sources) and GET /api/models/embeddings (every embedding model)."""

from __future__ import annotations

import json

from harness.fake_upstream import fixture_bytes
from tests.support.secrets import OLLAMA_BASE, OR_BASE


def test_sources_lists_every_source_with_its_catalogs(client, auth_headers):
    response = client.get("/api/models", headers=auth_headers)
    assert response.status_code == 200
    sources = {source["name"]: source for source in response.get_json()["data"]["sources"]}
    assert list(sources) == ["openrouter", "embeddings", "ollama"]
    assert sources["openrouter"]["enabled"] is False and sources["ollama"]["enabled"] is True
    assert [c["path"] for c in sources["ollama"]["catalogs"]] == ["/api/models/ollama", "/api/models/ollama/embeddings"]
    llms = sources["openrouter"]["catalogs"][0]
    assert (llms["kind"], llms["source"], llms["total"]) == ("chat", "curated", 23)
    assert sources["embeddings"]["catalogs"][0]["kind"] == "embedding"


def test_sources_says_the_last_error(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", status_code=503)
    keyed_app.extensions["catalog_service"].refresher.run("ollama")
    sources = keyed_app.test_client().get("/api/models", headers=auth_headers).get_json()["data"]["sources"]
    ollama = next(source for source in sources if source["name"] == "ollama")
    assert ollama["last_error"] == "Ollama at ollama.test:11434 answered HTTP 503"
    assert ollama["catalogs"][0]["source"] == "ollama_unreachable"


def test_all_embeddings_names_each_rows_source(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_2.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)  # names and families decide
    refresher = keyed_app.extensions["catalog_service"].refresher
    assert refresher.run("embeddings").outcome == "published"
    assert refresher.run("ollama").outcome == "published"
    client = keyed_app.test_client()
    response = client.get("/api/models/embeddings", headers=auth_headers)
    assert response.status_code == 200
    data = response.get_json()["data"]
    openrouter_rows = client.get("/api/models/openrouter/embeddings", headers=auth_headers).get_json()["data"]["models"]
    ollama_rows = client.get("/api/models/ollama/embeddings", headers=auth_headers).get_json()["data"]["models"]
    assert len(openrouter_rows) == 34 and len(ollama_rows) == 2
    assert data["total"] == len(data["models"]) == len(openrouter_rows) + len(ollama_rows)
    assert [row for row in data["models"] if row["source"] == "openrouter"] == [
        {**row, "source": "openrouter"} for row in openrouter_rows
    ]
    assert {row["id"] for row in data["models"] if row["source"] == "ollama"} == {row["id"] for row in ollama_rows}
    assert data["sources"] == {
        "openrouter": {"source": "api", "total": 34},
        "ollama": {"source": "ollama", "total": len(ollama_rows)},
    }
    again = client.get("/api/models/embeddings", headers={**auth_headers, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    wanted = ollama_rows[0]["id"].split(":")[0]
    filtered = client.get(f"/api/models/embeddings?q={wanted}", headers=auth_headers).get_json()["data"]
    assert filtered["models"] and all(wanted in (row["id"] + row["name"]).lower() for row in filtered["models"])
    assert filtered["total"] == len(filtered["models"]) < data["total"]


def test_all_embeddings_follows_a_new_snapshot(requests_mock, keyed_app, auth_headers):
    client = keyed_app.test_client()
    before = client.get("/api/models/embeddings", headers=auth_headers).get_json()["data"]
    assert before["sources"]["openrouter"] == {"source": "curated_fallback"}
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    keyed_app.extensions["catalog_service"].refresher.run("embeddings")
    after = client.get("/api/models/embeddings", headers=auth_headers).get_json()["data"]
    assert after["sources"]["openrouter"] == {"source": "api", "total": 34}


def test_aggregates_need_a_token(client):
    assert client.get("/api/models").status_code == 401
    assert client.get("/api/models/embeddings").status_code == 401


def test_all_embeddings_lists_removed_models_under_include_removed(requests_mock, keyed_app, auth_headers):
    tags = json.loads(fixture_bytes("ollama/tags_2.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", text=json.dumps(tags))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)  # names and families decide
    refresher = keyed_app.extensions["catalog_service"].refresher
    assert refresher.run("ollama").outcome == "published"
    client = keyed_app.test_client()
    before = client.get("/api/models/ollama/embeddings", headers=auth_headers).get_json()["data"]["models"]
    gone = before[0]["id"]
    tags["models"] = [entry for entry in tags["models"] if entry["name"] != gone]
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", text=json.dumps(tags))
    assert refresher.run("ollama", force=True).outcome == "published"
    own = client.get("/api/models/ollama/embeddings?include_removed=true", headers=auth_headers).get_json()["data"]
    combined = client.get("/api/models/embeddings?include_removed=true", headers=auth_headers).get_json()["data"]
    removed = [row for row in combined["models"] if row.get("removed_at")]
    assert [row["id"] for row in removed] == [gone] == [row["id"] for row in own["models"] if row.get("removed_at")]
    assert removed[0]["source"] == "ollama"
    plain = client.get("/api/models/embeddings", headers=auth_headers).get_json()["data"]
    assert gone not in {row["id"] for row in plain["models"] if row["source"] == "ollama"}

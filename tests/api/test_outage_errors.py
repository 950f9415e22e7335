"""API errors are JSON, never Django's HTML error page; an outage of the panel's own database is a 503
with a sentence. The database is a private PostgreSQL (tests/testbed/services.py) that the test stops."""

import pytest

pytestmark = pytest.mark.slow


def test_the_database_down_answers_a_json_503_with_a_sentence(private_panel, operator, api):
    client = api(operator)
    private_panel.postgres.stop()
    try:
        listing = client.get("/api/v1/instances/")
        request = client.post("/api/v1/instances/nope/backups/", {}, format="json")
    finally:
        private_panel.postgres.start()

    for response in (listing, request):
        assert response.status_code == 503
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "detail": "The panel's database is not answering; nothing was changed. Try again in a minute."
        }
    assert client.get("/api/v1/instances/").status_code == 200  # and back once it is

"""Contact imports end to end (#5): a generated file uploaded through the command API,
landed, parsed and merged by a real import worker, read back through PostgREST; bad
input of every kind; a re-parse; enrichment; and kill -9 of the import worker
mid-merge.

The identity graph is checked against the generator's truth file (who each row really
is), not against the parser under test.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.contacts import Dirt, Generator
from hermes.services import import_worker_spec
from tests.conftest import Cluster
from tests.system.conftest import Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def istack(
    cluster: Cluster,
    make_db: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    s = start_stack(
        cluster, make_db, tmp_path_factory.mktemp("imports"), workers=0, import_workers=1
    )
    yield s
    stop_stack(s, request)


def _token(tenant: dict[str, Any]) -> str:
    return str(tenant["api_key"]["token"])


def _generate(rows: int, seed: int, dirt: Dirt | None = None, **kw: Any) -> tuple[bytes, list[Any]]:
    out, truth = io.StringIO(), io.StringIO()
    Generator(rows=rows, columns=40, seed=seed, dirt=dirt or Dirt()).write(out, truth, **kw)
    return out.getvalue().encode(), [json.loads(line) for line in truth.getvalue().splitlines()]


def _upload(stack: Stack, token: str, data: bytes, **fields: str) -> tuple[int, dict[str, Any]]:
    with stack.api(token) as c:
        r = c.post(
            "/v1/imports",
            files={"file": ("contacts.csv", data, "text/csv")},
            data=fields,
            timeout=60,
        )
    assert r.status_code < 500, r.text
    return r.status_code, r.json()


def _wait_done(stack: Stack, token: str, import_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    with stack.api(token) as c:
        while time.monotonic() < deadline:
            r = c.get(f"/v1/imports/{import_id}")
            assert r.status_code == 200, r.text
            body = r.json()
            if body["status"] in ("completed", "failed"):
                return body
            time.sleep(0.2)
    raise AssertionError(f"import {import_id} not done after {timeout}s: {body}")


def _graph(stack: Stack, tenant_id: str) -> list[tuple[Any, ...]]:
    """The tenant's identity graph, canonical: one tuple per identity."""
    rows = stack.sql(
        """
        SELECT i.first_name, i.last_name,
               (SELECT array_agg(p.e164 ORDER BY p.e164) FROM app.identity_phones ip
                  JOIN app.phone_numbers p ON p.id = ip.phone_id WHERE ip.identity_id = i.id) AS phones,
               (SELECT array_agg(e.address ORDER BY e.address) FROM app.identity_emails ie
                  JOIN app.email_addresses e ON e.id = ie.email_id WHERE ie.identity_id = i.id) AS emails,
               (SELECT array_agg(pr.line1 || '|' || pr.postal_code ORDER BY pr.line1, pr.postal_code)
                  FROM app.identity_properties ipr JOIN app.properties pr ON pr.id = ipr.property_id
                 WHERE ipr.identity_id = i.id) AS properties,
               (SELECT array_agg(x.external_id ORDER BY x.external_id) FROM app.external_refs x
                 WHERE x.identity_id = i.id) AS refs
          FROM app.identities i WHERE i.tenant_id = %s
        """,
        (tenant_id,),
    )
    return sorted(
        (tuple(tuple(v) if isinstance(v, list) else v for v in r.values()) for r in rows), key=repr
    )


def test_a_generated_file_becomes_the_identity_graph_its_truth_describes(istack: Stack) -> None:
    tenant = istack.new_tenant("Imports Co")
    token, tenant_id = _token(tenant), tenant["tenant"]["id"]
    # No households: two people of one name at one address are one identity by the
    # key's definition (name + property), and the truth would count them as two.
    data, truth = _generate(3000, seed=7, dirt=Dirt(household=0), bom=True)
    status, body = _upload(istack, token, data)
    assert status == 202, body
    assert body["status"] == "parsing" and body["rows_total"] == 3000
    done = _wait_done(istack, token, body["id"])
    assert done["status"] == "completed", done

    blank_or_ragged = {t["row"] for t in truth if {"blank_row", "ragged_row"} & set(t["dirt"])}
    people = {t["person"] for t in truth if t["row"] not in blank_or_ragged}
    assert done["rows_total"] == 3000
    assert done["rows_rejected"] == len(blank_or_ragged)
    assert done["rows_accepted"] + done["rows_rejected"] == done["rows_total"]
    # Every real person is one identity: movers are tied by their external id,
    # namesakes at other addresses stay apart, repeated rows add nothing.
    assert done["identities_created"] == len(people)
    assert set(done["stage_seconds"]) >= {"land", "parse", "merge", "total"}

    # The read API shows the same, and each rejected row with its reason.
    with istack.rest(token) as c:
        imports = c.get("/imports", params={"id": f"eq.{body['id']}"}).json()
        errors = c.get("/import_errors", params={"import_id": f"eq.{body['id']}"}).json()
    assert imports[0]["status"] == "completed"
    assert imports[0]["identities_created"] == len(people)
    assert {e["row_number"] for e in errors} == blank_or_ragged
    reasons = {t["row"]: ("blank_row" if "blank_row" in t["dirt"] else "ragged_row")
               for t in truth if t["row"] in blank_or_ragged}  # fmt: skip
    assert {e["row_number"]: e["reason"] for e in errors} == reasons

    # Phones fan out (E.164), each a row of its own, linked with provenance.
    phones = istack.sql(
        "SELECT p.e164, ip.import_id, ip.row_number, ip.source FROM app.identity_phones ip "
        "JOIN app.phone_numbers p ON p.id = ip.phone_id WHERE ip.tenant_id = %s",
        (tenant_id,),
    )
    assert phones and all(p["e164"].startswith("+1") for p in phones)
    assert {p["import_id"] for p in phones} == {body["id"]}
    assert all(p["source"] == "import:universe" for p in phones)

    # The same file again changes nothing.
    graph = _graph(istack, tenant_id)
    status, again = _upload(istack, token, data)
    assert status == 202
    redone = _wait_done(istack, token, again["id"])
    assert redone["identities_created"] == 0
    assert redone["identities_matched"] == len(people)
    assert _graph(istack, tenant_id) == graph


def test_bad_input_is_per_row_errors_never_a_5xx(istack: Stack) -> None:
    tenant = istack.new_tenant("Dirty Files Inc")
    token = _token(tenant)
    header = b"first_name,last_name,phone,email,address,city,state,zip\r\n"
    good = b"Ann,Lee,(415) 626-0101,ann@example.com,1 Main St,San Francisco,CA,94107\r\n"
    rows = [
        good,
        b"Bob,Lee,415-626-0102,bob@example.com,2 Main St,San Francisco,CA,94107,extra\r\n",  # ragged
        b"Cy,Lee\r\n",  # ragged (short)
        b"Jos\xe9,Lee,415-626-0103,,3 Main St,San Francisco,CA,94107\r\n",  # latin-1 byte
        b"Dee,Lee,415-626-0104,,4 Main St," + b"x" * (10 * 1024 * 1024) + b",CA,94107\r\n",
        b"Eve,Lee,415-626-0105,,5 Ma\x00in St,San Francisco,CA,94107\r\n",  # NUL byte
        b",,,,,,,\r\n",  # blank
        b"Fay,Lee,415-626-0106,,6 Main St,San Francisco,CA,94107\r\n",
        b'Gus,"Lee,415-626-0107,,7 Main St,San Francisco,CA,94107\r\n',  # unterminated quote...
    ]
    status, body = _upload(istack, token, header + b"".join(rows))
    assert status == 202, body
    done = _wait_done(istack, token, body["id"])
    assert done["status"] == "completed"
    assert done["rows_total"] == len(rows)
    with istack.rest(token) as c:
        errors = c.get("/import_errors", params={"import_id": f"eq.{body['id']}"}).json()
    reasons = {e["row_number"]: e["reason"] for e in errors}
    assert reasons == {
        2: "ragged_row",
        3: "ragged_row",
        4: "invalid_encoding",
        5: "field_too_large",
        6: "nul_byte",
        7: "blank_row",
        # ... which swallows the rest of the file into one field: one bad row.
        9: "ragged_row",
    }
    assert done["rows_total"] - done["rows_rejected"] == 2
    assert done["identities_created"] == 2

    # Declaring the encoding reads the same bytes.
    latin = header + b"Jos\xe9,Lee,415-626-0103,,3 Main St,San Francisco,CA,94107\r\n"
    status, body = _upload(istack, token, latin, encoding="latin-1")
    done = _wait_done(istack, token, body["id"])
    assert (done["rows_rejected"], done["identities_created"]) == (0, 1)
    names = istack.sql(
        "SELECT first_name FROM app.identities WHERE tenant_id = %s AND first_name LIKE 'Jos%%'",
        (tenant["tenant"]["id"],),
    )
    assert {n["first_name"] for n in names} == {"José"}

    # What cannot be an import at all is a 4xx problem with a code, and leaves nothing.
    before = istack.sql("SELECT count(*) AS n FROM app.imports")[0]["n"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"files": {"upload": ("a.csv", b"x", "text/csv")}, "data": {"kind": "universe"}}, 422,
         "missing_file"),
        ({"files": {"file": ("e.csv", b"", "text/csv")}}, 422, "missing_header"),
        ({"files": {"file": ("h.csv", b"notes,misc\r\nx,y\r\n", "text/csv")}}, 422,
         "no_recognised_columns"),
        ({"files": {"file": ("k.csv", header, "text/csv")}, "data": {"kind": "everything"}}, 422,
         "invalid_kind"),
        ({"files": {"file": ("m.csv", header, "text/csv")}, "data": {"mapping": "{nope"}}, 422,
         "invalid_mapping"),
        ({"files": {"file": ("m.csv", header, "text/csv")},
          "data": {"mapping": '{"phones": ["Cell"]}'}}, 422, "unknown_column"),
        ({"files": {"file": ("m.csv", header, "text/csv")},
          "data": {"mapping": '{"shoe_size": "zip"}'}}, 422, "unknown_field"),
        ({"files": {"file": ("v.csv", header, "text/csv")}, "data": {"parser_version": "v9"}},
         422, "unknown_parser_version"),
        ({"files": {"file": ("x.csv", header, "text/csv")}, "data": {"encoding": "ebcdic"}}, 422,
         "invalid_encoding"),
        ({"content": b"a,b", "headers": {"content-type": "text/csv"}}, 415,
         "unsupported_media_type"),
        ({"content": b'{"rows": 5}', "headers": {"content-type": "application/json"}}, 422,
         "invalid_request"),
        # JSON is held in memory: the batch limit (16 MiB), not the upload limit, applies.
        ({"content": b'{"rows": [' + b'["x"],' * (3 * 1024 * 1024) + b'["x"]]}',
          "headers": {"content-type": "application/json"}}, 413, "payload_too_large"),
    ]  # fmt: skip
    with istack.api(token) as c:
        for kwargs, code, problem in cases:
            r = c.post("/v1/imports", **kwargs)
            assert (r.status_code, r.json()["code"]) == (code, problem), (kwargs, r.text)
        r = c.get("/v1/imports/999999999")
        assert (r.status_code, r.json()["code"]) == (404, "import_not_found")
    with istack.api("hm_live_nope") as c:
        r = c.post("/v1/imports", files={"file": ("a.csv", header + good, "text/csv")})
        assert r.status_code == 401
    assert istack.sql("SELECT count(*) AS n FROM app.imports")[0]["n"] == before


def test_json_rows_with_a_mapping_and_an_enrichment_that_creates_nobody(istack: Stack) -> None:
    tenant = istack.new_tenant("Mapped Co")
    token, tenant_id = _token(tenant), tenant["tenant"]["id"]
    rows = [
        {"Given": "Ann", "Family": "Ng", "Cell": "+1 415 626 0111", "Street": "9 Oak Ave",
         "Town": "Boston", "Province": "Mass.", "Code": "2116", "CRM": "A-1"},
        {"Given": "Bo", "Family": "Ng", "Cell": "415.626.0112", "Street": "9 Oak Avenue",
         "Town": "boston", "Province": "MA", "Code": "02116-1234", "CRM": "A-2"},
    ]  # fmt: skip
    mapping = {"first_name": "Given", "last_name": "Family", "phones": ["Cell"],
               "line1": "Street", "city": "Town", "region": "Province", "postal_code": "Code",
               "external_id": "CRM", "external_system": "crm"}  # fmt: skip
    with istack.api(token) as c:
        r = c.post("/v1/imports", json={"rows": rows, "mapping": mapping})
    assert r.status_code == 202, r.text
    done = _wait_done(istack, token, r.json()["id"])
    assert (done["identities_created"], done["rows_rejected"]) == (2, 0)
    # Both at one property: suffix, state and ZIP spellings normalized to one address.
    props = istack.sql(
        "SELECT line1, city, region, postal_code FROM app.properties WHERE tenant_id = %s",
        (tenant_id,),
    )
    assert props == [
        {"line1": "9 OAK AVE", "city": "BOSTON", "region": "MA", "postal_code": "02116"}
    ]

    # Enrichment: a new email for Ann (matched by her CRM id), and a stranger who is not
    # created.
    enrich = [
        {"CRM": "A-1", "Mail": "ANN@Example.com"},
        {"CRM": "Z-9", "Mail": "who@example.com", "Given": "Zed", "Family": "Q"},
    ]
    with istack.api(token) as c:
        r = c.post(
            "/v1/imports",
            json={"kind": "enrichment", "rows": enrich,
                  "mapping": {"external_id": "CRM", "emails": "Mail", "external_system": "crm",
                              "first_name": "Given", "last_name": "Family"}},
        )  # fmt: skip
    assert r.status_code == 202, r.text
    done = _wait_done(istack, token, r.json()["id"])
    assert done["identities_created"] == 0
    assert (done["identities_matched"], done["rows_unmatched"]) == (1, 1)
    emails = istack.sql(
        "SELECT i.first_name, e.address FROM app.identity_emails ie "
        "JOIN app.identities i ON i.id = ie.identity_id "
        "JOIN app.email_addresses e ON e.id = ie.email_id WHERE ie.tenant_id = %s",
        (tenant_id,),
    )
    assert emails == [{"first_name": "Ann", "address": "ann@example.com"}]


def test_a_reparse_with_a_newer_parser_needs_no_upload(istack: Stack) -> None:
    tenant = istack.new_tenant("Reparse Co")
    token, tenant_id = _token(tenant), tenant["tenant"]["id"]
    data = (
        b"first_name,last_name,phone1,phone2,address,city,state,zip\r\n"
        b"Ann,Lee,415-626-0121 x12,415-626-0122,1 Elm St,Austin,TX,78701\r\n"
    )
    _, body = _upload(istack, token, data)
    first = _wait_done(istack, token, body["id"])
    assert first["parser_version"] == "hermes-1"
    phones = "SELECT p.e164 FROM app.phone_numbers p WHERE p.tenant_id = %s ORDER BY 1"
    assert [p["e164"] for p in istack.sql(phones, (tenant_id,))] == ["+14156260122"]

    with istack.api(token) as c:
        r = c.post(f"/v1/imports/{body['id']}/reparse", json={"parser_version": "hermes-2"})
        assert r.status_code == 202, r.text
        bad = c.post(f"/v1/imports/{body['id']}/reparse", json={"parser_version": "v0"})
        assert (bad.status_code, bad.json()["code"]) == (422, "unknown_parser_version")
    again = _wait_done(istack, token, r.json()["id"])
    assert again["source_import_id"] == body["id"] and again["rows_total"] == 1
    assert (again["identities_created"], again["identities_matched"]) == (0, 1)
    # The office line's main number joins the same person.
    assert [p["e164"] for p in istack.sql(phones, (tenant_id,))] == [
        "+14156260121", "+14156260122"]  # fmt: skip
    versions = istack.sql(
        "SELECT parser_version FROM app.import_extractions WHERE tenant_id = %s ORDER BY import_id",
        (tenant_id,),
    )
    assert [v["parser_version"] for v in versions] == ["hermes-1", "hermes-2"]


def test_kill_the_import_worker_mid_merge_and_the_graph_is_the_same(
    istack: Stack, tmp_path: Path
) -> None:
    data, _ = _generate(1500, seed=11)
    calm, doomed = istack.new_tenant("Calm Co"), istack.new_tenant("Doomed Co")

    # Uninterrupted, by the stack's own import worker.
    status, body = _upload(istack, _token(calm), data)
    expected = _wait_done(istack, _token(calm), body["id"])
    assert expected["status"] == "completed"

    # The same file for the other tenant, with only a doomed worker that pauses before
    # the merge commits, killed there.
    istack.sup.stop_one("import-worker1")
    spec = import_worker_spec(istack.cfg, 9)
    spec.env = spec.env | {"HERMES_FAILPOINTS": "import_before_merge_commit=sleep:60"}
    istack.sup.start(spec)
    status, body = _upload(istack, _token(doomed), data)
    assert status == 202
    deadline = time.monotonic() + 30
    while "failpoint import_before_merge_commit" not in istack.log_path.read_text():
        assert time.monotonic() < deadline, "the doomed worker never reached the merge"
        time.sleep(0.1)
    istack.sup.kill("import-worker9")
    doomed_id = doomed["tenant"]["id"]
    assert istack.sql("SELECT count(*) AS n FROM app.identities WHERE tenant_id = %s",
                      (doomed_id,))[0]["n"] == 0  # fmt: skip
    assert istack.sql("SELECT status FROM app.imports WHERE id = %s", (body["id"],))[0] == {
        "status": "merging"}  # fmt: skip

    # A new worker re-picks the stale merge job (heartbeat timeout) and completes it.
    istack.sup.start(import_worker_spec(istack.cfg, 1))
    done = _wait_done(istack, _token(doomed), body["id"])
    assert done["status"] == "completed"
    for key in ("rows_total", "rows_rejected", "identities_created", "identities_matched"):
        assert done[key] == expected[key], key
    assert _graph(istack, doomed_id) == _graph(istack, calm["tenant"]["id"])
    errors = "SELECT row_number, reason FROM app.import_errors WHERE import_id = %s ORDER BY 1"
    assert istack.sql(errors, (body["id"],)) == istack.sql(errors, (expected["id"],))


def test_compliance_data_goes_through_the_same_pipeline(istack: Stack) -> None:
    tenant = istack.new_tenant("Legacy Co")
    token, tenant_id = _token(tenant), tenant["tenant"]["id"]
    # A do-not-contact list: numbers as people type them, an email, a bad row.
    dnc = (
        b"number,notes\r\n"
        b"(415) 626-0131,asked twice\r\n"
        b"+1 415 626 0132,\r\n"
        b"Someone@Example.com,\r\n"
        b"n/a,unknown\r\n"
    )
    status, body = _upload(istack, token, dnc, kind="suppression",
                           mapping='{"list": "do_not_contact"}')  # fmt: skip
    assert status == 202, body
    done = _wait_done(istack, token, body["id"])
    assert (done["status"], done["rows_total"], done["rows_rejected"]) == ("completed", 4, 1)
    with istack.rest(token) as c:
        listed = c.get("/suppressions", params={"list": "eq.do_not_contact"}).json()
        errors = c.get("/import_errors", params={"import_id": f"eq.{body['id']}"}).json()
    assert sorted(s["address"] for s in listed) == [
        "+14156260131", "+14156260132", "someone@example.com"]  # fmt: skip
    assert [(e["row_number"], e["reason"]) for e in errors] == [(4, "no_address")]
    with istack.api(token) as c:
        r = c.post("/v1/messages", json={"to": "415-626-0131", "body": "hi"})
    assert r.status_code == 201 and r.json()["status"] == "rejected", r.text

    # A legacy contact history seeds the cooldown store.
    history = (
        b"from,to,last_contact,vertical\r\n"
        b"+15005550006,415-626-0141,2026-11-30T10:00:00Z,solar\r\n"
        b"+15005550006,415-626-0142,,solar\r\n"
    )
    status, body = _upload(istack, token, history, kind="contact_history")
    assert status == 202, body
    done = _wait_done(istack, token, body["id"])
    assert (done["rows_total"], done["rows_rejected"]) == (2, 1)
    seeded = istack.sql(
        "SELECT vertical, last_contact_at::text AS at, from_address, source FROM app.contact_history "
        "WHERE tenant_id = %s",
        (tenant_id,),
    )
    assert seeded == [{"vertical": "solar", "at": "2026-11-30 10:00:00+00",
                       "from_address": "+15005550006", "source": "import"}]  # fmt: skip
    verdict = istack.sql(
        "SELECT reasons FROM private.check_send_eligibility(%s, 'sms', '+14156260141', "
        "'+15005550006', 'solar', 'marketing', '2026-12-01T18:00:00Z')",
        (tenant_id,),
    )[0]
    assert "cooldown" in [r["code"] for r in verdict["reasons"]], verdict

    # Compliance data needs the compliance scope; a suppression import names its list.
    with istack.api(token) as c:
        r = c.post("/v1/imports", files={"file": ("d.csv", dnc, "text/csv")},
                   data={"kind": "suppression"})  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (422, "invalid_list")
        key = c.post("/v1/api-keys", json={"name": "importer", "scopes": ["imports:write"]})
        assert key.status_code == 201, key.text
    with istack.api(key.json()["token"]) as c:
        r = c.post("/v1/imports", files={"file": ("d.csv", dnc, "text/csv")},
                   data={"kind": "suppression", "mapping": '{"list": "do_not_contact"}'})  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope")

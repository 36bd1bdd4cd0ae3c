"""A client generated from the gateway's own OpenAPI document, used as a new user would use it.

Every data endpoint answers JSON that parses into the generated models, and CSV whose rows are
the same points, states, merchants or changes; the review flow (queue -> assign -> undo) runs
with an admin key; documented refusals parse as the error model. Run by scripts/contract.sh
(`make contract`) with ALTDATA_BASE_URL, ALTDATA_ANALYST_KEY and ALTDATA_ADMIN_KEY set, and the
generated package `altdata_client` on PYTHONPATH.
"""

import csv
import datetime
import io
import os

from altdata_client import AuthenticatedClient
from altdata_client.api.admin import (
    assign,
    audit_log,
    list_queue,
    list_rules,
    mapped_share,
    undo,
)
from altdata_client.api.data import changes, growth, growth_by_state, timeseries, top
from altdata_client.api.reference import categories, freshness, merchants
from altdata_client.models import (
    AssignAnswer,
    AssignToNewMerchant,
    AuditLog,
    CategoriesAnswer,
    Category,
    ChangesAnswer,
    ErrorBody,
    FreshnessAnswer,
    Granularity,
    GrowthAnswer,
    GrowthByStateAnswer,
    GrowthPeriod,
    MappedShare,
    MerchantsAnswer,
    Metric,
    NewMerchant,
    OutputFormat,
    RankBy,
    ReviewQueue,
    RuleList,
    TimeseriesAnswer,
    TopAnswer,
    UndoAnswer,
    UndoRequest,
)

BASE_URL = os.environ["ALTDATA_BASE_URL"]
YESTERDAY = datetime.date.today() - datetime.timedelta(days=1)
TWO_WEEKS_AGO = YESTERDAY - datetime.timedelta(days=13)


def client(key_variable, prefix="Bearer"):
    return AuthenticatedClient(
        base_url=BASE_URL,
        token=os.environ[key_variable],
        prefix=prefix,
        raise_on_unexpected_status=True,
    )


ANALYST = client("ALTDATA_ANALYST_KEY")
ADMIN = client("ALTDATA_ADMIN_KEY")


def json_answer(operation, model, caller=ANALYST, **parameters):
    """The answer of an operation, parsed by the generated client into `model`."""
    response = operation.sync_detailed(client=caller, **parameters)
    assert response.status_code == 200, response.content
    assert isinstance(response.parsed, model), response.parsed
    return response


def csv_rows(operation, caller=ANALYST, **parameters):
    """The same request as CSV (`format=csv`), as rows. The generated functions read a 200 as
    JSON, so the request is built by the generated module and sent by the generated client."""
    request = operation._get_kwargs(**parameters, format_=OutputFormat.CSV)
    response = caller.get_httpx_client().request(**request)
    assert response.status_code == 200, response.content
    assert response.headers["content-type"].startswith("text/csv")
    assert_data_headers(response.headers)
    return list(csv.DictReader(io.StringIO(response.text)))


def assert_data_headers(headers):
    assert headers["x-cache"] in {"hit", "miss", "bypass", "unavailable"}
    assert int(headers["age"]) >= 0
    datetime.datetime.fromisoformat(headers["x-data-as-of"].replace("Z", "+00:00"))


def test_timeseries():
    parameters = dict(
        metric=Metric.SPEND,
        category=Category.COFFEE_SHOP,
        state="CA,ny",
        granularity=Granularity.DAY,
        from_=TWO_WEEKS_AGO,
        to=YESTERDAY,
    )
    response = json_answer(timeseries, TimeseriesAnswer, **parameters)
    assert_data_headers(response.headers)
    answer = response.parsed
    assert answer.query.states == ["CA", "NY"]
    assert [p.period_start for p in answer.points] == [
        TWO_WEEKS_AGO + datetime.timedelta(days=d) for d in range(14)
    ]
    assert any(p.value is not None for p in answer.points), "every value withheld"
    rows = csv_rows(timeseries, **parameters)
    assert [r["period_start"] for r in rows] == [p.period_start.isoformat() for p in answer.points]
    assert {r["metric"] for r in rows} == {"spend"}


def test_growth():
    parameters = dict(category=Category.COFFEE_SHOP, period=GrowthPeriod.WOW, as_of=YESTERDAY)
    answer = json_answer(growth, GrowthAnswer, **parameters).parsed
    assert answer.current_period.to == YESTERDAY
    assert answer.current is not None
    rows = csv_rows(growth, **parameters)
    assert len(rows) == 1 and rows[0]["period"] == "wow"


def test_growth_by_state():
    parameters = dict(metric=Metric.TRANSACTIONS, as_of=YESTERDAY)
    answer = json_answer(growth_by_state, GrowthByStateAnswer, **parameters).parsed
    assert answer.states, "no state has activity"
    rows = csv_rows(growth_by_state, **parameters)
    assert [r["state"] for r in rows] == [s.state for s in answer.states]


def test_top():
    parameters = dict(by=RankBy.SPEND, period=GrowthPeriod.WOW, as_of=YESTERDAY, limit=5)
    answer = json_answer(top, TopAnswer, **parameters).parsed
    assert 0 < len(answer.merchants) <= 5
    rows = csv_rows(top, **parameters)
    assert [int(r["merchant_id"]) for r in rows] == [m.merchant_id for m in answer.merchants]


def test_changes():
    parameters = dict(since=TWO_WEEKS_AGO, limit=50)
    answer = json_answer(changes, ChangesAnswer, **parameters).parsed
    assert answer.total > 0, "the restated days made no change"
    rows = csv_rows(changes, **parameters)
    assert [r["cause"] for r in rows] == [c.cause for c in answer.changes]


def test_merchants():
    parameters = dict(q="a", category=Category.COFFEE_SHOP, limit=5, offset=0)
    answer = json_answer(merchants, MerchantsAnswer, **parameters).parsed
    assert answer.merchants and answer.limit == 5
    rows = csv_rows(merchants, **parameters)
    assert [int(r["id"]) for r in rows] == [m.id for m in answer.merchants]


def test_categories():
    answer = json_answer(categories, CategoriesAnswer).parsed
    assert {c.category for c in answer.categories} == {c.value for c in Category}
    rows = csv_rows(categories)
    assert [r["category"] for r in rows] == [c.category for c in answer.categories]


def test_freshness():
    answer = json_answer(freshness, FreshnessAnswer).parsed
    assert answer.shards and answer.as_of is not None
    rows = csv_rows(freshness)
    assert [int(r["shard"]) for r in rows] == [s.shard for s in answer.shards]


def test_the_review_flow_runs_queue_assign_undo():
    queue = json_answer(list_queue, ReviewQueue, caller=ADMIN, limit=5).parsed
    assert queue.groups, "nothing to review"
    group = queue.groups[0]
    assert all(c.merchant_id > 0 for c in group.candidates)
    body = AssignToNewMerchant(
        normalized_descriptors=[group.normalized_descriptor],
        new_merchant=NewMerchant(name="Contract Test Cafe", category=Category.COFFEE_SHOP),
    )
    assigned = json_answer(assign, AssignAnswer, caller=ADMIN, body=body).parsed
    assert assigned.merchant_created and assigned.transactions == group.transactions
    audit_id = assigned.descriptors[0].audit_id
    undone = json_answer(undo, UndoAnswer, caller=ADMIN, body=UndoRequest(audit_id=audit_id))
    assert undone.parsed.transactions == group.transactions
    again = undo.sync_detailed(client=ADMIN, body=UndoRequest(audit_id=audit_id))
    assert again.status_code == 409 and isinstance(again.parsed, ErrorBody)
    entries = json_answer(audit_log, AuditLog, caller=ADMIN, limit=2).parsed.entries
    assert [e.action for e in entries] == ["undo", "assign"]
    json_answer(list_rules, RuleList, caller=ADMIN)
    json_answer(mapped_share, MappedShare, caller=ADMIN, from_=TWO_WEEKS_AGO, to=YESTERDAY)


def test_the_bearer_scheme_is_accepted_in_any_case():
    for prefix in ("bearer", "BEARER"):
        json_answer(categories, CategoriesAnswer, caller=client("ALTDATA_ANALYST_KEY", prefix))


def test_documented_refusals_parse_as_the_error_model():
    refusals = [
        (timeseries.sync_detailed(client=ANALYST, from_=YESTERDAY, to=TWO_WEEKS_AGO), 400,
         "conflicting_parameters"),
        (list_queue.sync_detailed(client=ANALYST), 403, "forbidden"),
        (timeseries.sync_detailed(client=ANALYST, merchant=987654321), 404, "not_found"),
    ]
    for response, status, code in refusals:
        assert response.status_code == status, response.content
        assert isinstance(response.parsed, ErrorBody) and response.parsed.error.code == code

"""Schemathesis hooks of `make contract`: the rules a schema cannot state.

JSON Schema describes each parameter alone. Two rules of the API relate parameters to each
other, and the gateway refuses a request that breaks one with a 400 whose error code names
the rule (services/gateway/src/error.rs):

- `conflicting_parameters`: at most one of category, merchant and brand; `from` not after `to`;
- `range_too_long`: `from`..`to` spans at most `x-max-range-days` days.

And the pattern of a rule (`POST /v1/admin/rules` and `/v1/admin/rules/preview`) is checked by
the resolver's own validator (a regex must compile, a prefix must keep two characters once
normalised): its refusal is a 422 with code `unprocessable`.

A schema-valid request refused for one of these reasons, and only these, is not a contract
violation: `filter_failure` drops exactly those failures (Schemathesis counts them in its
summary). Every other check, and every other refusal of a schema-valid request, stands.
"""

import json

import schemathesis

CROSS_PARAMETER_CODES = {"conflicting_parameters", "range_too_long"}
RULE_PATHS = {"/v1/admin/rules", "/v1/admin/rules/preview"}


def error_code(response):
    try:
        return json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def refuses_for_an_unstated_rule(case, response):
    code = error_code(response)
    if response.status_code == 400 and code in CROSS_PARAMETER_CODES:
        return True
    return (
        case.method.upper() == "POST"
        and case.path in RULE_PATHS
        and response.status_code == 422
        and code == "unprocessable"
    )


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but a schema-valid request refused for a rule the schema cannot state."""
    rejected_valid_data = type(failure).__name__ == "RejectedPositiveData"
    return not (rejected_valid_data and refuses_for_an_unstated_rule(case, response))


@schemathesis.deserializer("text/csv")
def csv_as_text(ctx, response):
    """The document declares CSV answers as text (`type: string`): read them as text, so the
    stateful phase reads them as it reads JSON instead of noting a media type it cannot read."""
    return response.content.decode("utf-8")

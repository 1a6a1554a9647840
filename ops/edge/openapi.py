"""The collector's OpenAPI 3.1 document (`GET /v1/openapi.json`), built from the endpoint table."""

from __future__ import annotations

from typing import Any

from ops.edge.endpoints import ENDPOINTS, XAPI_ABOUT_PATH, XAPI_STATEMENTS_PATH

#: Where the service serves the document.
OPENAPI_PATH = "/v1/openapi.json"


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_CANONICAL_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "The canonical activity event; any other field (a title, a URL) is dropped at the edge.",
    "required": ["event_id", "student_id", "source", "occurred_at"],
    "properties": {
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "unique at the source",
        },
        "student_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "source": {
            "type": "string",
            "enum": ["vle", "library", "eresource", "print", "pc_logon", "remote", "attendance"],
        },
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with a UTC offset (a time without one is invalid)",
        },
        "attributes": {
            "type": ["object", "null"],
            "properties": {
                "status": {"type": "string", "enum": ["present", "late", "absent", "authorised_absence"]},
                "pages": {"type": "integer", "minimum": 0, "maximum": 100000},
            },
        },
    },
    "examples": [
        {
            "event_id": "urn:uuid:6f1c2a0e-3b7d-4a8e-9d51-0c2f4b7e9a11",
            "student_id": "900412771",
            "source": "vle",
            "occurred_at": "2026-10-24T23:30:41Z",
        }
    ],
}

_CALIPER_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": (
        "An IMS Caliper 1.1 envelope as Canvas live events send it. Each event's student is "
        "actor.extensions['com.instructure.canvas'].user_sis_id; events without one (staff, integrations) "
        "are skipped as 'no user', and LoggedOut / TimedOut as 'logoff'. Positions are data[i]."
    ),
    "required": ["data"],
    "properties": {
        "sensor": {"type": "string"},
        "sendTime": {"type": "string", "format": "date-time"},
        "dataVersion": {"type": "string"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "actor", "eventTime"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "action": {"type": "string"},
                    "eventTime": {"type": "string", "format": "date-time"},
                    "actor": {
                        "type": "object",
                        "properties": {
                            "extensions": {
                                "type": "object",
                                "properties": {
                                    "com.instructure.canvas": {
                                        "type": "object",
                                        "properties": {"user_sis_id": {"type": "string"}},
                                    }
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}

_XAPI_STATEMENT: dict[str, Any] = {
    "type": "object",
    "description": (
        "An xAPI statement. The student is actor.account.name; mapped by the verb's last path segment: "
        "attended -> attendance, borrowed -> library, viewed -> vle or eresource, logged in -> vle, "
        "pc_logon or remote; other verbs are skipped ('unmapped verb'). Positions are 'statement N'."
    ),
    "required": ["id", "actor", "verb"],
    "properties": {
        "id": {"type": "string"},
        "actor": {
            "type": "object",
            "properties": {"account": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
        "verb": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "object": {"type": "object"},
        "result": {"type": "object"},
        "context": {"type": "object"},
        "timestamp": {"type": "string", "format": "date-time"},
        "stored": {"type": "string", "format": "date-time"},
    },
}


_CANVAS_LIVE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": (
        "One Canvas live event in Canvas's format (Data Services, format 'Canvas'). The student is "
        "metadata.user_sis_id. logged_in, asset_accessed, submission_created, submission_comment_created, "
        "discussion_topic_created, discussion_entry_created, quiz_submitted, wiki_page_created and "
        "wiki_page_updated are vle engagement; logged_out is skipped as 'logoff', other events as 'not "
        "engagement', events without a SIS id as 'no user', masquerading (real_user_id) as 'masquerade'. "
        "Titles, URLs, texts, user agents and IPs are never read."
    ),
    "required": ["metadata"],
    "properties": {
        "metadata": {
            "type": "object",
            "required": ["event_name", "event_time"],
            "properties": {
                "event_name": {"type": "string"},
                "event_time": {"type": "string", "format": "date-time"},
                "user_id": {"type": "string"},
                "user_sis_id": {"type": ["string", "null"]},
                "real_user_id": {"type": ["string", "null"]},
                "request_id": {"type": "string"},
                "context_type": {"type": "string"},
                "context_id": {"type": "string"},
            },
        },
        "body": {"type": "object"},
    },
}


def _xapi_paths() -> dict[str, Any]:
    """The xAPI statements resource (xAPI 1.0.3 / IEEE 9274.1.1, statement consumer side)."""
    version = {
        "name": "X-Experience-API-Version",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "examples": ["1.0.3", "2.0.0"]},
    }
    answer_headers = {"X-Experience-API-Version": {"schema": {"type": "string"}}}

    def error(text: str) -> dict[str, Any]:
        return {"description": text, "headers": answer_headers, "content": _json_body(_ref("Error"))}

    errors = {
        "400": error(
            "Malformed (not JSON, an id not a UUID, a statement without actor, verb or object, ...)"
        ),
        "401": error('Missing or wrong credentials (WWW-Authenticate: Basic realm="lde-xapi")'),
        "409": error("A statement id already used by a different statement: nothing stored"),
        "413": error("Body over LDE_COLLECTOR_MAX_BYTES: nothing stored"),
        "503": error("Kafka or Redis unavailable: send the same request again"),
    }
    security: list[dict[str, list[str]]] = [{"xapiBasic": []}, {"xapiToken": []}]
    statements = {"oneOf": [_ref("XapiStatement"), {"type": "array", "items": _ref("XapiStatement")}]}
    return {
        XAPI_STATEMENTS_PATH: {
            "post": {
                "operationId": "xapi_post_statements",
                "summary": "Store one statement or an array; ids are assigned where missing; voids honoured",
                "security": security,
                "parameters": [version],
                "requestBody": {"required": True, "content": _json_body(statements)},
                "responses": {
                    "200": {
                        "description": "The statement ids, in order (in Kafka when answered)",
                        "headers": answer_headers,
                        "content": _json_body(
                            {"type": "array", "items": {"type": "string", "format": "uuid"}}
                        ),
                    },
                    **errors,
                },
            },
            "put": {
                "operationId": "xapi_put_statement",
                "summary": "Store one statement under the given id",
                "security": security,
                "parameters": [
                    version,
                    {"name": "statementId", "in": "query", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": _json_body(_ref("XapiStatement"))},
                "responses": {"204": {"description": "Stored", "headers": answer_headers}, **errors},
            },
        },
        XAPI_ABOUT_PATH: {
            "get": {
                "operationId": "xapi_about",
                "summary": "The xAPI versions spoken",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Versions",
                        "headers": answer_headers,
                        "content": _json_body(
                            {
                                "type": "object",
                                "properties": {"version": {"type": "array", "items": {"type": "string"}}},
                            }
                        ),
                    }
                },
            }
        },
    }


def openapi_document(max_bytes: int) -> dict[str, Any]:
    """The collector's OpenAPI 3.1 description (served at GET /v1/openapi.json)."""
    note = {
        "type": "object",
        "required": ["position", "reason"],
        "properties": {
            "position": {
                "type": "string",
                "examples": ["data[3]", "statement 6", "line 2", "item 1", "document"],
            },
            "reason": {"type": "string", "description": "a fixed phrase or field name, never an input value"},
        },
    }
    summary = {
        "type": "object",
        "required": [
            "request_id",
            "accepted",
            "duplicates",
            "too_late",
            "refused",
            "skipped",
            "invalid",
            "late",
        ],
        "properties": {
            "request_id": {"type": "string", "description": "also the request_id header of its dead letters"},
            "accepted": {"type": "integer", "description": "events published to the activity topic"},
            "duplicates": {"type": "integer", "description": "events whose id appeared earlier in the body"},
            "too_late": {
                "type": "integer",
                "description": "events older than the stream's lateness limit (LDE_LATENESS_HOURS): not "
                "published, dead-lettered; listed in `late`",
            },
            "refused": {
                "type": "integer",
                "description": "records that failed validation, an event time outside the accepted window "
                "included (before LDE_EVENT_TIME_FLOOR, more than LDE_EVENT_MAX_FUTURE_SECONDS ahead of the "
                "service's clock, or outside 1970-01-02..2149-01-01); listed in `invalid`",
            },
            "skipped": {
                "type": "array",
                "items": _ref("RecordNote"),
                "description": "well-formed, not engagement",
            },
            "invalid": {"type": "array", "items": _ref("RecordNote"), "description": "the refused records"},
            "late": {"type": "array", "items": _ref("RecordNote"), "description": "the too-late events"},
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "max_bytes": {"type": "integer"},
            "request_id": {"type": "string"},
        },
    }
    bodies = {
        "caliper": _json_body(_ref("CaliperEnvelope")),
        "xapi": _json_body(
            {
                "oneOf": [
                    _ref("XapiStatement"),
                    {"type": "array", "items": _ref("XapiStatement")},
                    {
                        "type": "object",
                        "required": ["statements"],
                        "properties": {"statements": {"type": "array", "items": _ref("XapiStatement")}},
                    },
                ]
            }
        ),
        "canvas": {
            **_json_body(_ref("CanvasLiveEvent")),
            "application/jwt": {
                "schema": {
                    "type": "string",
                    "description": "Sign Payload on: a JWT (RS256) whose claims are the CanvasLiveEvent",
                }
            },
        },
        "events": {
            **_json_body(
                {"oneOf": [_ref("CanonicalEvent"), {"type": "array", "items": _ref("CanonicalEvent")}]}
            ),
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "JSONL: one CanonicalEvent object a line"}
            },
        },
    }
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        paths[endpoint.path] = {
            "post": {
                "operationId": f"collect_{endpoint.source}",
                "summary": endpoint.summary,
                "description": (
                    f"Uses the bearer token of the '{endpoint.source}' source. The response is sent once "
                    "Kafka has confirmed every accepted event; invalid records of a partly valid body go to "
                    f"the dead-letter topic (source 'http:{endpoint.source}') as a digest, too-late events "
                    "whole. Content-Type is not checked; the body must be UTF-8."
                ),
                "security": [{f"{endpoint.source}Token": []}]
                + ([{f"{endpoint.source}QueryToken": []}] if endpoint.query_token else []),
                "requestBody": {"required": True, "content": bodies[endpoint.source]},
                "responses": {
                    str(endpoint.success_status): _ref("Accepted", "responses"),
                    "400": _ref("Rejected", "responses"),
                    "401": _ref("Unauthorized", "responses"),
                    "413": _ref("TooLarge", "responses"),
                    "503": _ref("Unavailable", "responses"),
                },
            }
        }
    paths.update(_xapi_paths())
    paths["/v1/openapi.json"] = {
        "get": {
            "operationId": "collector_openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1 document", "content": _json_body({"type": "object"})}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LDE HTTP collector",
            "version": "1",
            "description": (
                "Upstream systems send activity straight to LDE. Titles, URLs and document names are dropped "
                "at the edge; responses name records by position only."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                f"{e.source}Token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        f"The '{e.source}' token from LDE_COLLECTOR_TOKENS; with none configured the "
                        "endpoint answers 401 to everyone."
                    ),
                }
                for e in ENDPOINTS
            }
            | {
                f"{e.source}QueryToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "access_token",
                    "description": (
                        f"The same '{e.source}' token as the RFC 6750 access_token query parameter, for "
                        "senders configured with a URL only (Canvas Data Services' HTTPS subscription)."
                    ),
                }
                for e in ENDPOINTS
                if e.query_token
            }
            | {
                "xapiBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A key and secret from LDE_COLLECTOR_BASIC_CREDENTIALS (stored hashed)",
                }
            },
            "schemas": {
                "RecordNote": note,
                "Summary": summary,
                "Rejected": {"allOf": [summary, error]},
                "Error": error,
                "CanonicalEvent": _CANONICAL_EVENT,
                "CaliperEnvelope": _CALIPER_ENVELOPE,
                "XapiStatement": _XAPI_STATEMENT,
                "CanvasLiveEvent": _CANVAS_LIVE_EVENT,
            },
            "responses": {
                "Accepted": {
                    "description": "In Kafka: valid events published; skipped and invalid records listed",
                    "content": _json_body(_ref("Summary")),
                },
                "Rejected": {
                    "description": "No record could be read (not JSON, empty, all invalid): none published",
                    "content": _json_body(_ref("Rejected")),
                },
                "Unauthorized": {
                    "description": (
                        "Missing or wrong bearer token, or no token configured; on a signed endpoint, also "
                        "a refused signature (bad, expired, unknown key id, another algorithm): nothing "
                        "published"
                    ),
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    "content": _json_body(_ref("Error")),
                },
                "TooLarge": {
                    "description": f"Body over {max_bytes} bytes (declared or sent): nothing published",
                    "content": _json_body(_ref("Error")),
                },
                "Unavailable": {
                    "description": "Kafka did not confirm in time: retry the same body (ids de-duplicate)",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": _json_body(_ref("Error")),
                },
            },
        },
    }

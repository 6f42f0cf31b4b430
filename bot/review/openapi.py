"""The review API described as OpenAPI 3.1 (served at /api/openapi.json). The record schemas come from the
pydantic models themselves, so the document can't drift from what the API returns."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic.json_schema import models_json_schema

from bot.models import CaseState, MessageState, Priority, ReviewCase
from bot.policy.incident import Incident

_refs, _schemas = models_json_schema(
    [(ReviewCase, "serialization"), (MessageState, "serialization"), (Incident, "serialization")],
    ref_template="#/components/schemas/{model}",
)
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}} if schema else {}
    return {"description": description, **({"content": content} if content else {})}


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "401": _answer("No or wrong bearer token, or an ended session (answered after a delay).", _ERROR_REF),
    "403": _answer("Signed in with the desk's cookie but without its CSRF token (X-CSRF-Token).", _ERROR_REF),
    "404": _answer("No such case or message.", _ERROR_REF),
}
_CASE = {"$ref": "#/components/schemas/ReviewCase"}
_RESOLVED = {"200": _answer("The resolved case.", _CASE)}
_CONFLICT = {"409": _answer("Already resolved, or claimed by someone else.", _ERROR_REF)}
_INCIDENT = {"$ref": "#/components/schemas/Incident"}
_CASE_ID = [{"name": "case_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _body(properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "additionalProperties": True}
    return {"required": False, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Auto-responder review API", "version": "1"},
    "security": [{"bearer": []}, {"desk": []}],
    "paths": {
        "/api/reviews": {
            "get": {
                "summary": "The queue: pending cases by priority then deadline, each with seconds_left, overdue and"
                " claimed_by; or, with state, the most recently closed cases.",
                "parameters": [
                    {"name": "channel", "in": "query", "schema": {"type": "string"}},
                    {"name": "priority", "in": "query", "schema": {"type": "string", "enum": [*Priority, ""]}},
                    {"name": "intent", "in": "query", "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [*CaseState, ""]}},
                ],
                "responses": {
                    "200": _answer(
                        "The queue.", {"type": "object", "properties": {"cases": {"type": "array", "items": _CASE}}}
                    ),
                    "400": _answer("An unknown priority or state.", _ERROR_REF),
                    "401": _ERRORS["401"],
                },
            }
        },
        "/api/reviews/{case_id}/approve": {
            "post": {
                "summary": "Send the draft, the reviewer's edit of it, or their own reply.",
                "parameters": _CASE_ID,
                "requestBody": _body({"text": {"type": "string"}}),
                "responses": {**_RESOLVED, "400": _answer("No text to send.", _ERROR_REF), **_CONFLICT, **_ERRORS},
            }
        },
        "/api/reviews/{case_id}/reject": {
            "post": {
                "summary": "Close the case; nothing is sent.",
                "parameters": _CASE_ID,
                "requestBody": _body({"reason": {"type": "string"}}),
                "responses": {**_RESOLVED, **_CONFLICT, **_ERRORS},
            }
        },
        "/api/reviews/{case_id}/handover": {
            "post": {
                "summary": "Close the case and hand its conversation to people: the bot stays out of it"
                " for BOT_HANDOVER_HOURS.",
                "parameters": _CASE_ID,
                "requestBody": _body({"reason": {"type": "string", "maxLength": 500}}),
                "responses": {**_RESOLVED, **_CONFLICT, **_ERRORS},
            }
        },
        "/api/conversations/{channel}/{conversation_id}/release": {
            "post": {
                "summary": "Give a handed-over conversation back to the bot.",
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in ("channel", "conversation_id")
                ],
                "responses": {"200": _answer("Released.", {"type": "object"}), **_ERRORS},
            }
        },
        "/api/learning": {
            "get": {
                "summary": "Per intent, how many reviewed drafts were approved unedited, edited, rejected or handed"
                " over, and shadow-mode agreement (shadow_agreed, shadow_differed).",
                "responses": {
                    "200": _answer(
                        "The figures.",
                        {
                            "type": "object",
                            "properties": {
                                "intents": {
                                    "type": "object",
                                    "additionalProperties": {
                                        "type": "object",
                                        "additionalProperties": {"type": "integer"},
                                    },
                                }
                            },
                        },
                    ),
                    "401": _ERRORS["401"],
                },
            }
        },
        "/api/reviews/{case_id}/claim": {
            "post": {
                "summary": "Take the case for 10 minutes (again, to keep it); approve and reject by others get 409.",
                "parameters": _CASE_ID,
                "responses": {
                    "200": _answer("Yours.", {"type": "object"}),
                    "409": _answer("Someone else has it.", _ERROR_REF),
                    **_ERRORS,
                },
            }
        },
        "/api/messages/{channel}/{message_id}": {
            "get": {
                "summary": "Where a message is now.",
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in ("channel", "message_id")
                ],
                "responses": {"200": _answer("Its state.", {"$ref": "#/components/schemas/MessageState"}), **_ERRORS},
            }
        },
        "/api/audit": {
            "get": {
                "summary": "Every reviewer action, newest first (admins only; never editable).",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                ],
                "responses": {
                    "200": _answer("The actions: case_id, reviewer, action, at, before, after.", {"type": "object"}),
                    "403": _answer("Not an admin.", _ERROR_REF),
                    "401": _ERRORS["401"],
                },
            }
        },
        "/api/incidents": {
            "get": {
                "summary": "The topics the incident brake holds now (an intent, unknown, or all), with since, by"
                " (auto or an admin), reason, action (review or holding), holding text and count.",
                "responses": {
                    "200": _answer(
                        "The incidents.",
                        {"type": "object", "properties": {"incidents": {"type": "array", "items": _INCIDENT}}},
                    ),
                    "401": _ERRORS["401"],
                },
            },
            "post": {
                "summary": "Pull the brake on a topic (admins only): its messages go to review and, with action"
                " holding, customers get the holding text at once (null: the policy's). Again on a held topic:"
                " changes how it is held.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "topic": {"type": "string", "description": "all, unknown, or an intent"},
                                    "action": {"type": "string", "enum": ["review", "holding"], "default": "review"},
                                    "holding": {"type": ["string", "null"], "maxLength": 280},
                                    "reason": {"type": ["string", "null"], "maxLength": 500},
                                },
                                "required": ["topic"],
                            }
                        }
                    },
                },
                "responses": {
                    "201": _answer("Raised.", _INCIDENT),
                    "200": _answer("Changed (the topic was held already).", _INCIDENT),
                    "400": _answer("An unknown topic or action, or an empty or too long holding text.", _ERROR_REF),
                    "401": _ERRORS["401"],
                    "403": _answer("Not an admin, or a cookie without its CSRF token.", _ERROR_REF),
                },
            },
        },
        "/api/incidents/{topic}": {
            "delete": {
                "summary": "Clear the incident on a topic (admins only); the service won't raise it again on its own"
                " for one window.",
                "parameters": [{"name": "topic", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _answer("Cleared: {topic, cleared: the incident}.", {"type": "object"}),
                    "401": _ERRORS["401"],
                    "403": _answer("Not an admin, or a cookie without its CSRF token.", _ERROR_REF),
                    "404": _answer("No incident holds that topic.", _ERROR_REF),
                },
            }
        },
        "/api/openapi.json": {"get": {"summary": "This document.", "security": [], "responses": {"200": _answer("")}}},
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "desk": {"type": "apiKey", "in": "cookie", "name": "desk_session"},
        },
        "schemas": {**_schemas["$defs"], "Error": _ERROR},
    },
}


def document(topics: Iterable[str]) -> dict[str, Any]:
    """OPENAPI with the incident topics the loaded policy knows (its intents, unknown and all) as an enum."""
    served = copy.deepcopy(OPENAPI)
    body = served["paths"]["/api/incidents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body["properties"]["topic"]["enum"] = sorted(topics)
    return served

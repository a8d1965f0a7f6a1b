"""Putting the dialects' routes on the app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put a router's routes on the app itself, in order; the router must carry its own
    prefix, dependencies and responses, as its routes then already do.

    Not `include_router`: since FastAPI 0.137 that keeps the router as a node which every
    request resolves again (it recounts the router's routes and matches twice), ~50 µs of a
    ~300 µs document read in-process (bench/api_breakdown.py). Routes on the app itself are
    matched once, as a bare FastAPI app's are.
    """
    app.router.routes.extend(router.routes)

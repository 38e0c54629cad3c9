"""Cached, read-only results shared between sessions (keyed by the spec's JSON, never by object identity)."""

from __future__ import annotations

import streamlit as st

from ..device import device_description
from ..models.diagram import to_dot
from ..models.summary import ModelSummary, summarize
from ..spec import ModelSpec


@st.cache_data(max_entries=256, show_spinner=False)
def _summary(spec_json: str, input_size: int, batch_size: int) -> ModelSummary:
    return summarize(ModelSpec.from_json(spec_json), input_size=input_size, batch_size=batch_size)


def cached_summary(spec: ModelSpec, input_size: int, batch_size: int = 1) -> ModelSummary:
    return _summary(spec.to_json(indent=None), input_size, batch_size)


@st.cache_data(max_entries=256, show_spinner=False)
def _dot(spec_json: str, input_size: int, title: str | None) -> str:
    return to_dot(_summary(spec_json, input_size, 1), title=title)


def cached_dot(spec: ModelSpec, input_size: int, title: str | None = None) -> str:
    return _dot(spec.to_json(indent=None), input_size, title)


@st.cache_resource(show_spinner=False)
def cached_device_description() -> str:
    return device_description()

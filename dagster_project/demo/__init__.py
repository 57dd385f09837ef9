"""Demo campaign: deterministic departmental workbooks for 2023-2025 that
reproduce the figures of the 2025 report."""

from .generator import DEFAULT_YEARS, DETAILED_SOURCES, OWNED_SOURCE_IDS, generate_demo

__all__ = ["DEFAULT_YEARS", "DETAILED_SOURCES", "OWNED_SOURCE_IDS", "generate_demo"]

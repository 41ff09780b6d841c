"""The upstreams: one module each, declaring its sources with `sources(settings, context)`.

To add a source, add a module here and name it in SOURCE_MODULES (docs/architecture.md,
"How to add a source").
"""

from __future__ import annotations

from config import Settings

from . import anthropic, gemini, llamacpp, lmstudio, mistral, ollama, openai, openai_compatible, openrouter, vllm
from .base import Source, SourceContext

# In the order /api/models lists them: the contract's, the hosted providers, then the local
# servers of SOURCES_FILE, by kind.
SOURCE_MODULES = (openrouter, ollama, openai, anthropic, gemini, mistral, lmstudio, vllm, llamacpp, openai_compatible)


def configured_sources(settings: Settings, context: SourceContext) -> list[Source]:
    """Every source the settings configure, from every module."""
    return [source for module in SOURCE_MODULES for source in module.sources(settings, context)]
